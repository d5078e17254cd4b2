"""python -m eval [models=...] [report_name=<name>] [paths.artifacts=<dir>]"""
import hydra

from adventure.cli import run_stage
from adventure.paths import CONFIGS_DIR
from eval.stage import run


@hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name="eval")
def main(cfg):
    run_stage(run, cfg)


if __name__ == "__main__":
    main()
