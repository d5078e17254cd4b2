"""python -m serving model=<tiny|best|dir|hub id> host=127.0.0.1 port=5000 [paths.artifacts=<dir>]"""
import sys

import hydra

from adventure.cli import run_stage
from adventure.paths import CONFIGS_DIR
from serving.config import contract_overrides
from serving.server import serve


@hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name="serving")
def main(cfg):
    run_stage(serve, cfg)


if __name__ == "__main__":
    sys.argv[1:] = contract_overrides(sys.argv[1:])  # `model=` is also a config group name: see serving/config.py
    main()
