"""Shared fixtures: real data locations and tiny models built once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.models import build_dataset, install_tiny_marians, one_thread, train_tiny
from tests.helpers.real_data import REAL_TREES_DIR

# Tests never reach the network: a hub id must fail fast instead of waiting on a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


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


@pytest.fixture(scope="session")
def tiny_marian_artifacts(session_artifacts) -> Path:
    return install_tiny_marians(session_artifacts)


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory) -> Path:
    """An artifacts folder with a dataset split by story, a briefly trained tiny model (`models/tiny`, it writes
    sentences), its untrained floor and the tiny translators: built once per session."""
    artifacts = tmp_path_factory.mktemp("trained-artifacts")
    build_dataset(artifacts)
    with one_thread():
        train_tiny(artifacts)
        install_tiny_marians(artifacts)
    return artifacts


def pytest_collection_modifyitems(config, items):
    """Tests marked `vllm` need vLLM (.venv-vllm) and minutes of engine starts: they run only when a -m expression
    names them (`make test-vllm` runs `pytest -m vllm` there), never in `make test` or `make test-fast`."""
    if "vllm" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("vllm") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("vllm")])
        items[:] = kept
