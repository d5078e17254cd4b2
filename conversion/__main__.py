"""`python -m conversion checkpoint_dir=<dir> out_dir=<dir> [dtype=float16|float32] [verify=true|false]`."""
import hydra

from adventure.cli import run_stage
from adventure.paths import CONFIGS_DIR
from conversion.convert import convert


@hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name="conversion")
def main(cfg) -> None:
    run_stage(convert, cfg)


if __name__ == "__main__":
    main()
