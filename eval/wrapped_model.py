"""A model as the game sees it: Russian in, Russian out.

A Russian model is used as it is. An English model is wrapped the way the seed wrapped GPT2-XL: the Russian
story is translated ru->en before the model reads it, and its reply en->ru before the player reads it. Eval and
serving thereby measure the same pipeline. Translations are batched per call (the Translator deduplicates
segments, so a world shared by many samples is translated once).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adventure.models import context_length, load_causal_lm
from adventure.story_format import Sample, render_prompt
from eval.model_set import EvalModel

log = logging.getLogger(__name__)


@dataclass
class WrappedModel:
    spec: EvalModel
    model: Any
    tokenizer: Any
    context_length: int
    translator_in: Any = None  # adventure.translation.Translator ru->en, English models only
    translator_out: Any = None  # en->ru
    _english: dict[str, str] = field(default_factory=dict)  # ru text -> en, for this run

    @property
    def name(self) -> str:
        return self.spec.name

    def to_model_side(self, samples: list[Sample], max_turns: int | None = None) -> list[Sample]:
        """The samples in the model's language (unchanged for Russian models). Only the last `max_turns` turns
        are translated: the prompt budget never shows the model more."""
        if self.translator_in is None:
            return list(samples)
        if max_turns is not None:
            samples = [replace(s, history=s.history[-max_turns:] if max_turns > 0 else ()) for s in samples]
        texts = []
        for s in samples:
            texts += [s.world, s.action, s.target] + [t for turn in s.history for t in turn]
        todo = list(dict.fromkeys(t for t in texts if t not in self._english))
        self._english.update(zip(todo, self.translator_in.translate(todo)))
        en = self._english.get
        out = []
        for s in samples:
            history = tuple((en(a), en(r)) for a, r in s.history)
            out.append(replace(s, world=en(s.world), history=history, action=en(s.action),
                               prompt=render_prompt(en(s.world), history, en(s.action)), target=en(s.target)))
        return out

    def to_player_side(self, texts: list[str]) -> list[str]:
        """Model replies in Russian (translated for English models)."""
        if self.translator_out is None:
            return list(texts)
        return self.translator_out.translate(list(texts))


def _translator(spec: str, direction: str, artifacts: Path, settings: dict):
    from adventure.translation import Translator

    cache = None
    if settings.get("cache"):
        from adventure.translation_cache import SQLiteTranslationCache

        cache = SQLiteTranslationCache(settings["cache"])
    return Translator(spec, direction, artifacts, device=settings.get("device", "cpu"),
                      batch_size=int(settings.get("batch_size") or 16), num_beams=settings.get("num_beams"),
                      cache=cache, show_progress=False)


def load_wrapped(spec: EvalModel, artifacts: Path, *, device: str = "cpu", translator_settings: dict | None = None,
                 translators: dict | None = None) -> WrappedModel:
    """Load a model (and its translators; `translators` may hold already-loaded ones keyed (spec, direction))."""
    model, tokenizer, _source = load_causal_lm(spec.source.location if spec.source.is_local else spec.spec,
                                               artifacts, device=device, option=f"models[{spec.name}].spec")
    wrapped = WrappedModel(spec=spec, model=model, tokenizer=tokenizer, context_length=context_length(model))
    if spec.language == "en":
        translators = translators if translators is not None else {}
        settings = dict(translator_settings or {}, device=device)
        for attr, t_spec, direction in (("translator_in", spec.translator_in, "ru-en"),
                                        ("translator_out", spec.translator_out, "en-ru")):
            key = (t_spec, direction)
            if key not in translators:
                translators[key] = _translator(t_spec, direction, artifacts, settings)
            setattr(wrapped, attr, translators[key])
    return wrapped
