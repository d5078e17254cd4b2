"""Experiment tracking through the Trainer's own integrations (`report_to`), local and offline by default.

    tracking=tensorboard  (default) event files in <run_dir>/runs/<time>_<host>/: `tensorboard --logdir <run_dir>`
    tracking=mlflow       a local file store <run_dir>/mlruns unless MLFLOW_TRACKING_URI says otherwise
                          (`mlflow ui --backend-store-uri <run_dir>/mlruns`); `pip install mlflow`
    tracking=wandb        offline runs in <run_dir>/wandb unless WANDB_MODE says otherwise
                          (`wandb sync <run_dir>/wandb/offline-run-*` uploads them later); `pip install wandb`
    tracking=none         nothing beyond training_metrics.json (which every run writes anyway)

The curves the eval report draws come from training_metrics.json, whatever the tracker.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from adventure.errors import GamioError

_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def report_to(tracking: str, run_dir: Path) -> str:
    """The Trainer's `report_to` for `tracking`, with the tracker pointed at the run dir (offline)."""
    if tracking == "none":
        return "none"
    package = _PACKAGES[tracking]
    if importlib.util.find_spec(package) is None:
        raise GamioError(f"tracking={tracking}: the {package} package is not installed; `pip install {package}` "
                         f"(or pass tracking=tensorboard|none)")
    if tracking == "mlflow":
        os.environ.setdefault("MLFLOW_TRACKING_URI", (Path(run_dir) / "mlruns").resolve().as_uri())
    elif tracking == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(run_dir))
    return tracking
