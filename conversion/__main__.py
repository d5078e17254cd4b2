"""`python -m conversion checkpoint_dir=<dir> out_dir=<dir> [dtype=float16|float32] [verify=true|false]`."""
from adventure.cli import stage_main
from conversion.config import ConversionConfig
from conversion.convert import convert

main = stage_main("conversion", ConversionConfig, convert)

if __name__ == "__main__":
    main()
