"""`python -m scraping [source=sample|cys|snapshot|trees] [translator=none|opus_mt] [out_dir=<dir>]`."""
import hydra

from adventure.cli import run_stage
from adventure.paths import CONFIGS_DIR
from scraping.stage import run


@hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name="scraping")
def main(cfg) -> None:
    run_stage(run, cfg)


if __name__ == "__main__":
    main()
