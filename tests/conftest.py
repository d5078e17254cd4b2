"""Shared fixtures: real data locations and tiny models built once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from adventure.paths import SHARED_DATA_DIR

# Tests never reach the network: a hub id must fail fast instead of waiting on a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REAL_TREES_DIR = SHARED_DATA_DIR / "cys-trees"
REAL_TF_CHECKPOINT_DIR = SHARED_DATA_DIR / "tf-gpt2-tiny"
# The six real chooseyourstory trees and their non-null node counts (sorted by file name).
REAL_TREE_NODE_COUNTS = {"story14.json": 41, "story16.json": 39, "story23.json": 15, "story39.json": 19,
                         "story42.json": 26, "story7.json": 107}


@pytest.fixture(scope="session")
def real_trees_dir() -> Path:
    if not REAL_TREES_DIR.is_dir():
        pytest.skip(f"real trees not found at {REAL_TREES_DIR} (../shared/data is absent on this machine)")
    return REAL_TREES_DIR


@pytest.fixture(scope="session")
def session_artifacts(tmp_path_factory) -> Path:
    """An artifacts folder shared by the whole session (tiny models are built into it once)."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def tiny_untrained_dir(session_artifacts) -> Path:
    from adventure.models import resolve_model_spec

    return Path(resolve_model_spec("tiny-untrained", session_artifacts).location)


# The tiny Marian translators as the tests build them: trained long enough to have learnt the target language
# (the tests check the loss fell and the output language), short enough for CI. The default build
# (adventure.tiny_marian, for `translator.model=tiny` outside tests) trains longer; bench/ records its BLEU.
QUICK_MARIAN = {"steps": 300}


def install_tiny_marians(artifacts: Path) -> Path:
    """Put both tiny Marian translators into `<artifacts>/models/` (built once, then copied from the build cache)."""
    from adventure.tiny_marian import DIRECTIONS, ensure_tiny_marian

    for direction in DIRECTIONS:
        ensure_tiny_marian(artifacts, direction, **QUICK_MARIAN)
    return artifacts


@pytest.fixture(scope="session")
def tiny_marian_artifacts(session_artifacts) -> Path:
    return install_tiny_marians(session_artifacts)
