"""Build the tiny offline models once per test session (meant to be lifted into tests/conftest.py fixtures)."""
from __future__ import annotations

from pathlib import Path

from adventure.tiny_marian import DIRECTIONS, ensure_tiny_marian


def build_tiny_marian_artifacts(tmp_path_factory) -> Path:
    """An artifacts dir holding `models/tiny-opus-mt-en-ru` and `models/tiny-opus-mt-ru-en`."""
    artifacts = tmp_path_factory.mktemp("tiny-marian-artifacts")
    for direction in DIRECTIONS:
        ensure_tiny_marian(artifacts, direction)
    return artifacts
