"""The thin glue between `python -m <stage>` (Hydra) and each stage's plain, testable function."""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("gamio")


def run_stage(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run a stage; a GamioError becomes one log line and exit status 2 instead of a traceback."""
    from adventure.errors import GamioError

    try:
        return fn(cfg)
    except GamioError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def resolved_config(cfg: DictConfig) -> dict:
    """The config with every interpolation resolved, as plain data (for provenance files)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
