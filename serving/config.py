"""The serving config: Hydra overrides as the issue's CLI contract writes them, and composition outside
`python -m serving` (the WSGI entry point, tests, the benchmark).

The contract says `python -m serving model=<tiny|best|dir|hub id>`, but `configs/model/` is a config group
(training's model recipes), and Hydra reads any `model=...` override as a choice in that group ("Could not
override 'model'"). So the spec lives in the plain key `model_spec`, and a bare `model=X` argument is rewritten
to `model_spec=X` before Hydra parses the command line.
"""
from __future__ import annotations

from typing import Sequence

from omegaconf import DictConfig

from adventure.paths import CONFIGS_DIR

MODEL_KEY = "model_spec"


def contract_overrides(args: Sequence[str]) -> list[str]:
    """`model=X` -> `model_spec=X`; every other argument unchanged."""
    return [f"{MODEL_KEY}={arg[len('model='):]}" if arg.startswith("model=") else arg for arg in args]


def compose_serving_config(overrides: Sequence[str] = ()) -> DictConfig:
    """configs/serving.yaml with command-line style overrides (e.g. ["model=tiny", "port=8000"])."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS_DIR), version_base="1.3"):
        return compose(config_name="serving", overrides=contract_overrides(overrides))
