"""Engines: what turns a batch of prompts into continuations. The turn pipeline (adventure/turns.py) talks to an
engine only through this interface, so serving and eval never change when an engine is added:

    engine.tokenizer        the model's tokenizer (the prompt budget counts with it)
    engine.context_length   tokens the model can attend to
    engine.description      what generates, e.g. "ct2 int8 on cpu" (eval reports name it)
    engine.generate(prompts, settings, seed=None) -> [Generation]   one continuation per prompt (token ids)
    engine.score([(prompt ids, target ids)]) -> [nats]               likelihood of each target (eval)
    engine.close()

`configs/engine/<name>.yaml` selects one: `engine=hf` (transformers, adventure/engines/hf.py), `engine=ct2`
(CTranslate2, adventure/engines/ct2.py), `engine=vllm` (vLLM in this process, adventure/engines/vllm.py; optional:
`make install-vllm`) or `engine=openai` (any OpenAI-compatible completions server, adventure/engines/openai.py);
`load_engine` builds it for a model spec. Optional parts (beams, continuous, health) are in base.py.
"""
from __future__ import annotations

from pathlib import Path

from adventure.engines.base import Engine, Generation
from adventure.errors import GamioError

__all__ = ["Engine", "Generation", "load_engine", "check_decoding", "require_engine", "ENGINES"]
ENGINES = ("hf", "ct2", "vllm", "openai")
# Engines without beam search. Checked from the config, before anything loads (vLLM takes a minute to start).
BEAMLESS = ("vllm", "openai")


def require_engine(engine_name: str) -> None:
    """Refuse an optional engine this Python environment does not have, before anything else is loaded."""
    import importlib.util

    if engine_name == "vllm" and importlib.util.find_spec("vllm") is None:
        from adventure.engines.vllm import NOT_INSTALLED

        raise GamioError(NOT_INSTALLED)


def check_decoding(engine_name: str, settings, key: str = "generation") -> None:
    """Refuse a preset the engine cannot decode: never silently run another decoding than the one asked for.
    `key` names where the preset came from (generation, extra_generation, presets)."""
    if engine_name in BEAMLESS and settings.num_beams > 1:
        from adventure.config import ConfigError

        where = f"{key}.num_beams" if key == "generation" else f"{key}: preset {settings.name} has num_beams"
        raise ConfigError(f"engine={engine_name} cannot run {where}={settings.num_beams} (beam sampling); use "
                          f"generation=gamio_sample, the seed's sampling without beams")


def load_engine(engine_cfg, spec: str, artifacts: Path, *, option: str = "model") -> Engine:
    """The engine of `engine_cfg` (a node of configs/engine/) serving model `spec` (tiny | folder | hub id)."""
    name = engine_cfg.name
    if name == "hf":
        from adventure.engines.hf import HFEngine

        return HFEngine.load(engine_cfg, spec, artifacts, option=option)
    if name == "ct2":
        from adventure.engines.ct2 import CT2Engine

        return CT2Engine.load(engine_cfg, spec, artifacts, option=option)
    if name == "vllm":
        from adventure.engines.vllm import VLLMEngine

        return VLLMEngine.load(engine_cfg, spec, artifacts, option=option)
    if name == "openai":
        from adventure.engines.openai import OpenAIEngine

        return OpenAIEngine.load(engine_cfg, spec, artifacts, option=option)
    raise GamioError(f"engine={name!r} is not available; choose one of {list(ENGINES)}")
