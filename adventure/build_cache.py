"""A content-addressed cache for the deterministic tiny-model builds.

The tiny models are rebuilt from the embedded corpus in every fresh artifacts folder (each test, each demo run).
Their build is deterministic, so the result is keyed by everything that determines it — the input files, the
source code of the builder, the build arguments and the library versions — and reused when the key matches.
Any change to the corpus or the builder gives a new key, so a stale model is never served.
Set GAMIO_CACHE=off to always build; GAMIO_CACHE=<dir> to move the cache (default ~/.cache/gamio).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from adventure.publish import publish_folder

log = logging.getLogger(__name__)


def cache_root() -> Path | None:
    value = os.environ.get("GAMIO_CACHE", "")
    if value.lower() in ("off", "0", "false", "no"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "gamio"


def build_key(name: str, files: Iterable[Path], code: Iterable[object], args: dict) -> str:
    import sentencepiece
    import tokenizers
    import torch
    import transformers

    digest = hashlib.sha256(name.encode())
    for path in sorted(Path(p) for p in files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for obj in code:
        digest.update(inspect.getsource(obj).encode())
    digest.update(repr(sorted(args.items())).encode())
    for module in (torch, transformers, tokenizers, sentencepiece):
        digest.update(f"{module.__name__}={module.__version__}".encode())
    from importlib.metadata import version

    # MarianTokenizer's punctuation normalisation comes from sacremoses: its version shapes the tiny translators.
    digest.update(f"sacremoses={version('sacremoses')}".encode())
    return digest.hexdigest()[:20]


def cached_folder(dest: Path, key: str, build: Callable[[Path], Path]) -> Path:
    """Make `dest` hold the build identified by `key`: copied from the cache, or built (then cached)."""
    dest = Path(dest)
    root = cache_root()
    if root is None:
        return build(dest)
    entry = root / key
    if not entry.is_dir():
        # An interrupted build leaves nothing in the cache; a concurrent builder's identical result may win.
        with publish_folder(entry, replace=False) as scratch:
            build(scratch)
    else:
        log.info("reusing cached build %s for %s", entry, dest)
    with publish_folder(dest) as staging:
        shutil.copytree(entry, staging, dirs_exist_ok=True)
    return dest
