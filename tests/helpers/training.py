"""Helpers for the training tests: the dataset `python -m scraping` writes, built here from the corpus.

The only assumption about scraping's output is its documented shape: a datasets.DatasetDict saved with
save_to_disk in <artifacts>/data/dataset, splits train/validation/test, columns = Sample.to_dict()'s keys.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

from adventure.paths import REPO_ROOT, SAMPLE_STORIES_DIR
from adventure.story_format import samples_from_trees
from adventure.trees import load_trees


def split_of(sample) -> str:
    """A stable ~80/10/10 split by sample (crc32 is the same in every process, unlike hash())."""
    bucket = zlib.crc32(f"{sample.tree_id}/{sample.node_id}".encode()) % 10
    return {0: "validation", 1: "test"}.get(bucket, "train")


def build_story_dataset(artifacts: Path, stories_dir: Path = SAMPLE_STORIES_DIR) -> Path:
    from datasets import Dataset, DatasetDict

    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for sample in samples_from_trees(load_trees(stories_dir)):
        rows[split_of(sample)].append(sample.to_dict())
    out = Path(artifacts) / "data" / "dataset"
    DatasetDict({name: Dataset.from_list(r) for name, r in rows.items()}).save_to_disk(str(out))
    return out


def run_training(artifacts: Path, *overrides: str, timeout: float = 600, launcher: list[str] | None = None,
                 multirun: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m training paths.artifacts=<artifacts> <overrides>` (or through `launcher`, e.g. torchrun)."""
    cmd = (launcher or [sys.executable, "-m"]) + ["training", *(["-m"] if multirun else []),
                                                  f"paths.artifacts={artifacts}", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def read_metrics(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "training_metrics.json").read_text("utf-8"))


def compose_training(artifacts: Path, *overrides: str):
    """The `python -m training` config, composed in-process (for runs and errors that need no subprocess)."""
    from adventure.config import compose
    from training.config import TrainingConfig

    return compose("training", [f"paths.artifacts={artifacts}", *overrides], TrainingConfig)


# Few steps of the tiny model: enough to see the loss move, seconds on 2 cores.
QUICK = ("train.max_steps=6", "train.eval_steps=3", "train.logging_steps=3", "train.batch_size=4",
         "train.block_size=64", "train.max_eval_rows=8")


# A small `python -m eval` (a few test samples, a short play-through): enough to see every model compared.
EVAL_QUICK = ("max_samples.test=4", "playthrough.size=2", "extra_generation=[]", "samples_in_report=1")


def evaluate_models(artifacts: Path, report: str, *overrides: str) -> dict:
    """`python -m eval` on `artifacts` (models=auto unless overridden); returns report.json."""
    cmd = [sys.executable, "-m", "eval", f"paths.artifacts={artifacts}", f"report_name={report}", *EVAL_QUICK,
           *overrides]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stderr[-4000:]}"
    return json.loads((Path(artifacts) / "reports" / report / "report.json").read_text("utf-8"))
