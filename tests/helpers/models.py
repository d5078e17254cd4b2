"""Tiny models as the tests build them (real transformers models of small shape, never mocks)."""
from __future__ import annotations

from pathlib import Path

# The tiny Marian translators as the tests build them: trained long enough to have learnt the target language
# (the tests check the loss fell and the output language), short enough for CI. The default build
# (adventure.tiny_marian, for `translation=tiny` outside tests) trains longer; bench/ records its BLEU.
QUICK_MARIAN = {"steps": 300}


def install_tiny_marians(artifacts: Path) -> Path:
    """Put both tiny Marian translators into `<artifacts>/models/` (built once, then copied from the build cache)."""
    from adventure.tiny_marian import DIRECTIONS, ensure_tiny_marian

    for direction in DIRECTIONS:
        ensure_tiny_marian(artifacts, direction, **QUICK_MARIAN)
    return artifacts
