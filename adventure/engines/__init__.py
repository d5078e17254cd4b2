"""Engines: what turns a batch of prompts into continuations. The turn pipeline (adventure/turns.py) talks to an
engine only through this interface, so serving and eval never change when an engine is added:

    engine.tokenizer        the model's tokenizer (the prompt budget counts with it)
    engine.context_length   tokens the model can attend to
    engine.description      what generates, e.g. "ct2 int8 on cpu" (eval reports name it)
    engine.generate(prompts, settings, seed=None) -> [Generation]   one continuation per prompt (token ids)
    engine.score([(prompt ids, target ids)]) -> [nats]               likelihood of each target (eval)
    engine.close()

`configs/engine/<name>.yaml` selects one: `engine=hf` (transformers, adventure/engines/hf.py) or `engine=ct2`
(CTranslate2, adventure/engines/ct2.py); `load_engine` builds it for a model spec.
"""
from __future__ import annotations

from pathlib import Path

from adventure.engines.base import Engine, Generation
from adventure.errors import GamioError

__all__ = ["Engine", "Generation", "load_engine", "ENGINES"]
ENGINES = ("hf", "ct2")


def load_engine(engine_cfg, spec: str, artifacts: Path, *, option: str = "model") -> Engine:
    """The engine of `engine_cfg` (a node of configs/engine/) serving model `spec` (tiny | folder | hub id)."""
    name = engine_cfg.name
    if name == "hf":
        from adventure.engines.hf import HFEngine

        return HFEngine.load(engine_cfg, spec, artifacts, option=option)
    if name == "ct2":
        from adventure.engines.ct2 import CT2Engine

        return CT2Engine.load(engine_cfg, spec, artifacts, option=option)
    raise GamioError(f"engine={name!r} is not available; choose one of {list(ENGINES)}")
