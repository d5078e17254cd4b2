"""Reports that do not depend on where they were made: absolute paths become relative ones.

Two checkouts in different folders (or two artifacts folders) must give the same report.json and report.md, so
every absolute path in a report is rewritten: below `paths.artifacts` relative to it (`models/tiny`; the folder
itself is `.`), below the repository relative to it with a `<repo>/` prefix, below the home folder with `~/`.
A hub id or a spec is not a path and stays as it is.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adventure.paths import REPO_ROOT


def _roots(artifacts: Path) -> list[tuple[str, str]]:
    """(absolute prefix, replacement) pairs, the most specific first."""
    pairs = [(str(Path(artifacts).resolve()), ""), (str(Path(artifacts).absolute()), ""),
             (str(REPO_ROOT.resolve()), "<repo>"), (str(Path.home().resolve()), "~")]
    return sorted({p for p in pairs if p[0] not in ("", "/")}, key=lambda p: -len(p[0]))


def portable_path(text: str, roots: list[tuple[str, str]]) -> str:
    for prefix, replacement in roots:
        if text == prefix:
            return replacement or "."
        if text.startswith(prefix + os.sep):
            rest = text[len(prefix) + 1:]
            return f"{replacement}/{rest}" if replacement else rest
    return text


def portable(value: Any, artifacts: Path, roots: list[tuple[str, str]] | None = None) -> Any:
    """`value` with every absolute path string made relative (see the module docstring); any nesting."""
    roots = roots if roots is not None else _roots(artifacts)
    if isinstance(value, str):
        if os.sep not in value:
            return value
        if value.startswith(os.sep):
            return portable_path(value, roots)
        for prefix, replacement in roots:  # a path inside a longer text, e.g. a description
            if prefix in value:
                value = value.replace(prefix + os.sep, f"{replacement}/" if replacement else "")
                value = value.replace(prefix, replacement or ".")
        return value
    if isinstance(value, dict):
        return {k: portable(v, artifacts, roots) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, artifacts, roots) for v in value]
    return value
