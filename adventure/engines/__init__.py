"""Engines: what turns a batch of prompts into continuations. The turn pipeline (adventure/turns.py) talks to an
engine only through this interface, so serving and eval never change when an engine is added:

    engine.tokenizer        the model's tokenizer (the prompt budget counts with it)
    engine.context_length   tokens the model can attend to
    engine.generate(prompts, settings, seed=None) -> [Generation]   one continuation per prompt (token ids)
    engine.close()

`configs/engine/<name>.yaml` selects one (`engine=hf`); `load_engine` builds it for a model spec.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from adventure.errors import GamioError
from adventure.generation import GenerationSettings


@dataclass(frozen=True)
class Generation:
    text: str  # the decoded new tokens, before cleanup (special tokens removed)
    new_tokens: int


class Engine(Protocol):
    name: str
    tokenizer: Any
    context_length: int

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None) -> list[Generation]: ...

    def close(self) -> None: ...


def load_engine(engine_cfg, spec: str, artifacts: Path, *, option: str = "model") -> Engine:
    """The engine of `engine_cfg` (a node of configs/engine/) serving model `spec` (tiny | folder | hub id)."""
    name = engine_cfg.name
    if name == "hf":
        from adventure.engines.hf import HFEngine

        return HFEngine.load(engine_cfg, spec, artifacts, option=option)
    raise GamioError(f"engine={name!r} is not available; choose one of ['hf']")
