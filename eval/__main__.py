"""python -m eval [models=...] [report_name=<name>] [paths.artifacts=<dir>]"""
from adventure.cli import stage_main
from eval.config import EvalConfig
from eval.stage import run

main = stage_main("eval", EvalConfig, run)

if __name__ == "__main__":
    main()
