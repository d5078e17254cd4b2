"""The thin glue between `python -m <stage>` (Hydra) and each stage's plain, testable function.

Every bad input ends the same way, whoever finds it: one `error: ...` line on stderr and exit status 2 —
Hydra (unknown option, unknown key, wrong type), the schema's rules (`check_config`), or the stage itself
(a GamioError: missing file, model not available...). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from adventure.config import check_config, describe_config_error, register_schemas
from adventure.errors import GamioError

log = logging.getLogger("gamio")


def fail(message: str) -> None:
    if logging.getLogger().handlers:  # under Hydra's logging: keep the reason in the run's log file too
        log.error("%s", message)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_stage(fn: Callable[[DictConfig], Any], cfg: DictConfig, schema: type | None = None) -> Any:
    """Check `cfg` against the schema's rules, then run the stage; a GamioError becomes `error:` + exit 2."""
    try:
        check_config(cfg, schema)
        return fn(cfg)
    except GamioError as exc:
        fail(str(exc))


def stage_main(config_name: str, schema: type, fn: Callable[[DictConfig], Any]) -> Callable[[], None]:
    """The `python -m <stage>` entry point: `configs/<config_name>.yaml` on `schema`, running `fn`."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from adventure.paths import CONFIGS_DIR

    register_schemas(config_name, schema)

    @hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name=config_name)
    def task(cfg: DictConfig) -> Any:
        return run_stage(fn, cfg, schema)  # the value: a sweeper's objective (training)

    def main() -> None:
        # Hydra prints a multi-line report and exits 1 on a composition error unless HYDRA_FULL_ERROR is set;
        # then it raises, and the error becomes one line here.
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            task()
        except (HydraException, OmegaConfBaseException) as exc:
            fail(describe_config_error(exc))

    return main


def resolved_config(cfg: DictConfig) -> dict:
    """The config with every interpolation resolved, as plain data (for provenance files)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
