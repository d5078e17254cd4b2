"""A model under evaluation as the game sees it: the same turn pipeline the server builds (engine, translation
wrap for English models), plus the test samples on the model's side for likelihood scoring.

Translators are shared between models (an English model and its twin use the same opus-mt pair) and loaded
once per run: `TranslatorPool` keeps them by (spec, direction).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from adventure.engines import load_engine
from adventure.generation import GenerationSettings
from adventure.story_format import Sample, render_prompt
from adventure.translation import Translator, Translators, build_translator, open_cache
from adventure.turns import TurnFailure, TurnInput, TurnPipeline
from eval.model_set import EvalModel

log = logging.getLogger(__name__)


class TranslatorPool:
    """Translators of one run, built from the `translation` config on first use, sharing its cache."""

    def __init__(self, translation_cfg, artifacts: Path):
        self.cfg, self.artifacts = translation_cfg, artifacts
        self.cache = open_cache(translation_cfg.cache)
        self.loaded: dict[tuple[str, str], Translator] = {}

    def get(self, spec: str, direction: str) -> Translator:
        if (spec, direction) not in self.loaded:
            self.loaded[(spec, direction)] = build_translator(self.cfg, direction, self.artifacts, model=spec,
                                                              cache=self.cache)
        return self.loaded[(spec, direction)]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def load_pipeline(model: EvalModel, engine_cfg, settings: GenerationSettings, artifacts: Path,
                  pool: TranslatorPool, history_turns: int) -> TurnPipeline:
    """The turn pipeline of one model; English models get their translators from `pool`."""
    spec = model.source.location if model.source.is_local else model.spec
    engine = load_engine(engine_cfg, spec, artifacts, option=f"models[{model.name}].spec")
    translators = None
    if model.language == "en":
        translators = Translators(pool.get(model.translator_in, "ru-en"), pool.get(model.translator_out, "en-ru"))
    return TurnPipeline(engine, settings, language=model.language, translators=translators,
                        history_turns=history_turns)


def turn_inputs(samples: list[Sample], max_turns: int) -> list[TurnInput]:
    """Samples as game turns: only the last `max_turns` turns (the prompt budget never shows the model more)."""
    return [TurnInput(world=s.world, history=s.history[-max_turns:] if max_turns > 0 else (), action=s.action)
            for s in samples]


def model_side_samples(pipeline: TurnPipeline, samples: list[Sample], max_turns: int) -> list[Sample]:
    """The samples in the model's language (English models: world, history, action and gold result translated
    ru->en by the pipeline's own translator, as a game would show them to the model)."""
    if not pipeline.english:
        return list(samples)
    sides = pipeline.model_side(turn_inputs(samples, max_turns))
    failed = [side.reason for side in sides if isinstance(side, TurnFailure)]
    if failed:
        raise RuntimeError(f"translating the test set failed: {failed[0]}")
    targets = pipeline.translators.to_english.translate([s.target for s in samples])
    return [replace(s, world=side.world_en, history=side.history_en, action=side.action_en, target=target,
                    prompt=render_prompt(side.world_en, side.history_en, side.action_en))
            for s, side, target in zip(samples, sides, targets)]
