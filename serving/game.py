"""Turn logic: from a batch of jobs (world, history, action) to the results the players read.

A prompt is the shared training format (world + the last `history_turns` turns + "> action"), fitted into the
model's context by the shared budget, so the server asks the model for exactly what it was trained on.
English models (language=en, e.g. the converted GPT2-XL) are wrapped as in the seed: the action and, once per
game, the world are translated ru->en, the prompt uses the English history, the output is cleaned in English and
translated en->ru. Both languages of every turn are stored.

Each step works on the whole batch at once; if a batched step fails, it is redone job by job so that only the
bad job fails (with its reason) and the others get their turns.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from adventure.budget import build_prompt
from adventure.generate import generate_results
from adventure.generation import GenerationSettings
from adventure.models import context_length
from adventure.text import normalize_action, normalize_result, normalize_text

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome:
    result: str  # what the player reads (Russian)
    action_en: str | None = None  # English models only
    result_en: str | None = None
    world_en: str | None = None  # set when the world was translated for this job
    prompt_tokens: int = 0
    new_tokens: int = 0


def per_item(step: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R | Exception]:
    """`step` on all items at once; if that raises, on each item alone, so one bad item fails alone."""
    if not items:
        return []
    try:
        out = step(list(items))
        if len(out) != len(items):
            raise RuntimeError(f"batched step returned {len(out)} results for {len(items)} items")
        return list(out)
    except Exception as batch_error:  # noqa: BLE001 - isolate the culprit below
        if len(items) == 1:
            return [batch_error]
        log.warning("batched step failed (%s); retrying its %d items one by one", batch_error, len(items))
        results: list[R | Exception] = []
        for item in items:
            try:
                results.append(step([item])[0])
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
        return results


class TurnEngine:
    """Owns the model (used only from the worker thread) and turns job contexts into outcomes."""

    def __init__(self, model, tokenizer, settings: GenerationSettings, *, history_turns: int = 10,
                 language: str = "ru", to_english=None, to_russian=None, seed: int | None = None):
        if language not in ("ru", "en"):
            raise ValueError(f"language must be ru or en, got {language!r}")
        if language == "en" and (to_english is None or to_russian is None):
            raise ValueError("an English model needs both translators (ru->en and en->ru)")
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.context_length = context_length(model)
        self.history_turns, self.language = history_turns, language
        self.to_english, self.to_russian = to_english, to_russian
        self.seed, self.batches = seed, 0

    def prompt_ids(self, world: str, history: Sequence[tuple[str, str]], action: str) -> list[int]:
        """The budgeted prompt of one turn (texts already in the model's language)."""
        return build_prompt(self.tokenizer, normalize_text(world), history, normalize_action(action),
                            context_length=self.context_length, max_new_tokens=self.settings.max_new_tokens,
                            max_turns=self.history_turns).input_ids

    def run_batch(self, contexts: Sequence[dict]) -> list[Outcome | Exception]:
        """One outcome (or the exception that failed it) per job context from `Store.job_context`."""
        outcomes: list[Outcome | Exception | None] = [None] * len(contexts)
        english = self.language == "en"
        texts = [self._model_texts(ctx) for ctx in contexts]
        if english:
            texts = self._translate_inputs(contexts, texts, outcomes)

        prompts: dict[int, list[int]] = {}
        for i, (world, history, action, _, _) in enumerate(texts):
            if outcomes[i] is None:
                try:
                    prompts[i] = self.prompt_ids(world, history, action)
                except Exception as exc:  # noqa: BLE001 - this job fails, the batch goes on
                    outcomes[i] = exc
        order = list(prompts)
        seed = None if self.seed is None else self.seed + self.batches
        self.batches += 1
        generated = per_item(lambda ps: generate_results(self.model, self.tokenizer, ps, self.settings, seed),
                             [prompts[i] for i in order])
        cleaned = {i: g for i, g in zip(order, generated)}
        if english:
            done = [i for i in order if not isinstance(cleaned[i], Exception)]
            russian = per_item(self._to_russian, [cleaned[i].cleaned.text for i in done])
            for i, ru in zip(done, russian):
                if isinstance(ru, Exception):
                    outcomes[i] = ru
                    continue
                world_en, _, action_en, new_world, _ = texts[i]
                outcomes[i] = Outcome(result=normalize_result(ru), action_en=action_en,
                                      result_en=cleaned[i].cleaned.text, world_en=world_en if new_world else None,
                                      prompt_tokens=len(prompts[i]), new_tokens=cleaned[i].new_tokens)
        for i in order:
            if outcomes[i] is None:
                g = cleaned[i]
                outcomes[i] = g if isinstance(g, Exception) else Outcome(
                    result=normalize_result(g.cleaned.text), prompt_tokens=len(prompts[i]), new_tokens=g.new_tokens)
        return outcomes  # type: ignore[return-value]

    def _model_texts(self, ctx: dict) -> tuple[str, list[tuple[str, str]], str, bool, bool]:
        """(world, history, action, world_to_translate, action_to_translate) as the model sees them."""
        job, turns = ctx["job"], ctx["turns"]
        if job["kind"] == "retry":  # regenerate the last turn: same action, the turns before it as history
            turns = turns[:-1]
        if self.language != "en":
            return ctx["world"], [(t["action"], t["result"]) for t in turns], job["action"], False, False
        history = [(t["action_en"], t["result_en"]) for t in turns]
        world, new_world = (ctx["world_en"], False) if ctx["world_en"] is not None else (ctx["world"], True)
        if job["kind"] == "retry" and ctx["turns"][-1]["action_en"] is not None:
            return world, history, ctx["turns"][-1]["action_en"], new_world, False  # translated when first played
        return world, history, job["action"], new_world, True

    def _translate_inputs(self, contexts, texts, outcomes):
        """ru->en of every new action and every world not translated yet, in one translator call."""
        wanted: list[str] = []
        for world, _, action, new_world, new_action in texts:
            wanted += [normalize_text(world)] * new_world + [normalize_action(action)] * new_action
        unique = list(dict.fromkeys(wanted))
        lookup = dict(zip(unique, per_item(self.to_english.translate, unique)))
        out = []
        for i, (world, history, action, new_world, new_action) in enumerate(texts):
            world = lookup[normalize_text(world)] if new_world else world
            action = lookup[normalize_action(action)] if new_action else action
            if isinstance(world, Exception) or isinstance(action, Exception):
                outcomes[i] = world if isinstance(world, Exception) else action
            out.append((world, history, action, new_world, new_action))
        return out

    def _to_russian(self, texts: list[str]) -> list[str]:
        # An empty English result stays empty: translating "" would make the model invent something.
        todo = [t for t in texts if t.strip()]
        translated = dict(zip(todo, self.to_russian.translate(todo))) if todo else {}
        return [translated.get(t, "") for t in texts]
