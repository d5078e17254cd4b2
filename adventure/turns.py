"""One turn of the game, for a batch of games: prompt budget -> generate -> cleanup -> (ru<->en wrap).

This is the only place a turn is made. The game server's worker calls `TurnPipeline.run` for every batch of
jobs, and eval's play-through calls it for every prompt, so a report measures exactly what players get.

    TurnInput   per game: world, history (action, result) pairs, the new action — in the player's language —
                plus, for English models, the English shadow the game stored (None: translated now), and
                the generation preset (None: the pipeline's default)
    run(...)    -> per row a TurnResult, or a TurnFailure with its reason: one bad row never fails the batch

Every text is normalised on its way into the prompt (actions to one line, no line of a world or result starting
with `>`), so a player cannot write fake turns into the `> action` format. English models (language en, e.g.
the converted GPT2-XL) are wrapped as the seed wrapped them: the story goes ru->en, the model's cleaned English
reply comes back en->ru; the English texts are returned so that the game stores them and never translates
the same turn twice. The model itself is reached only through the engine interface (adventure/engines).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence, TypeVar

from adventure.budget import BudgetedPrompt, build_prompt
from adventure.cleanup import clean_generation
from adventure.engines import Engine
from adventure.generation import GenerationSettings
from adventure.story_format import DEFAULT_HISTORY_TURNS, Turn
from adventure.text import normalize_action, normalize_result

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class TurnInput:
    world: str
    history: tuple[Turn, ...]
    action: str
    world_en: str | None = None  # English models: the stored translations (None: translate now)
    history_en: tuple[Turn, ...] | None = None
    action_en: str | None = None
    settings: GenerationSettings | None = None  # None: the pipeline's default preset


@dataclass(frozen=True)
class TurnResult:
    result: str  # what the player reads
    model_text: str  # the cleaned reply in the model's language
    cut_action: bool  # cleanup cut an invented `> action`
    cut_unfinished: bool  # cleanup dropped an unfinished last sentence
    prompt_tokens: int
    new_tokens: int
    turns_dropped: int  # history turns the prompt budget left out
    world_en: str | None = None  # English models: the shadow texts of this turn, for the game to store
    action_en: str | None = None
    result_en: str | None = None


@dataclass(frozen=True)
class TurnFailure:
    reason: str


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


def failure(exc: Exception, stage: str) -> TurnFailure:
    return TurnFailure(f"{stage} failed: {type(exc).__name__}: {exc}")


class TurnPipeline:
    def __init__(self, engine: Engine, settings: GenerationSettings, *, language: str = "ru",
                 translators=None, history_turns: int = DEFAULT_HISTORY_TURNS):
        if language not in ("ru", "en"):
            raise ValueError(f"language must be ru or en, got {language!r}")
        if language == "en" and translators is None:
            raise ValueError("an English model needs translators (ru->en and en->ru)")
        self.engine, self.settings, self.language = engine, settings, language
        self.translators, self.history_turns = translators, history_turns
        self.special_tokens = [t for t in engine.tokenizer.all_special_tokens if t]

    @property
    def english(self) -> bool:
        return self.language == "en"

    # ---- the model's side of a turn ----------------------------------------------------------------------

    def model_side(self, turns: Sequence[TurnInput]) -> list[TurnInput | TurnFailure]:
        """English models: the turns with every missing English text translated (one translator call for the
        whole batch, each text once). Russian models: the turns as they are."""
        if not self.english:
            return list(turns)
        wanted: list[str] = []
        for turn in turns:
            wanted += [normalize_result(turn.world)] * (turn.world_en is None)
            wanted += [normalize_action(turn.action)] * (turn.action_en is None)
            if turn.history_en is None:
                wanted += [text for a, r in turn.history for text in (normalize_action(a), normalize_result(r))]
        unique = list(dict.fromkeys(wanted))
        english = dict(zip(unique, per_item(self.translators.to_english.translate, unique)))
        out: list[TurnInput | TurnFailure] = []
        for turn in turns:
            filled = replace(
                turn,
                world_en=turn.world_en if turn.world_en is not None else english[normalize_result(turn.world)],
                action_en=turn.action_en if turn.action_en is not None else english[normalize_action(turn.action)],
                history_en=turn.history_en if turn.history_en is not None else tuple(
                    (english[normalize_action(a)], english[normalize_result(r)]) for a, r in turn.history))
            texts = [filled.world_en, filled.action_en, *(t for pair in filled.history_en for t in pair)]
            error = next((t for t in texts if isinstance(t, Exception)), None)
            out.append(failure(error, "translation ru->en") if error else filled)
        return out

    def prompt(self, turn: TurnInput) -> BudgetedPrompt:
        """The budgeted prompt of a model-side turn: every text normalised, the oldest turns dropped first."""
        world, history, action = ((turn.world_en, turn.history_en, turn.action_en) if self.english
                                  else (turn.world, turn.history, turn.action))
        settings = turn.settings or self.settings
        return build_prompt(self.engine.tokenizer, normalize_result(world),
                            [(normalize_action(a), normalize_result(r)) for a, r in history],
                            normalize_action(action), context_length=self.engine.context_length,
                            max_new_tokens=settings.max_new_tokens, max_turns=self.history_turns)

    # ---- a batch of turns --------------------------------------------------------------------------------

    def run(self, turns: Sequence[TurnInput], *, seed: int | None = None) -> list[TurnResult | TurnFailure]:
        outcomes: list[TurnResult | TurnFailure | None] = [None] * len(turns)
        sides = self.model_side(turns)
        prompts: dict[int, BudgetedPrompt] = {}
        for i, side in enumerate(sides):
            if isinstance(side, TurnFailure):
                outcomes[i] = side
                continue
            try:
                prompts[i] = self.prompt(side)
            except Exception as exc:  # noqa: BLE001 - this row fails, the batch goes on
                outcomes[i] = failure(exc, "prompt")

        # One engine call per preset: rows with different settings cannot share a generate call.
        groups: dict[str, list[int]] = {}
        for i in prompts:
            groups.setdefault(repr(turns[i].settings or self.settings), []).append(i)
        generated = {}
        for rows in groups.values():
            settings = turns[rows[0]].settings or self.settings
            out = per_item(lambda ps, s=settings: self.engine.generate(ps, s, seed=seed),
                           [prompts[i].input_ids for i in rows])
            generated.update(zip(rows, out))

        done = [i for i in generated if not isinstance(generated[i], Exception)]
        for i in generated:
            if isinstance(generated[i], Exception):
                outcomes[i] = failure(generated[i], "generation")
        cleaned = {i: clean_generation(generated[i].text, self.special_tokens) for i in done}
        player_texts = self._to_player_side([cleaned[i].text for i in done])
        for i, text in zip(done, player_texts):
            if isinstance(text, Exception):
                outcomes[i] = failure(text, "translation en->ru")
                continue
            side, clean = sides[i], cleaned[i]
            english = dict(world_en=side.world_en if turns[i].world_en is None else None,
                           action_en=side.action_en, result_en=clean.text) if self.english else {}
            outcomes[i] = TurnResult(result=normalize_result(text), model_text=clean.text,
                                     cut_action=clean.cut_action, cut_unfinished=clean.cut_unfinished,
                                     prompt_tokens=len(prompts[i].input_ids), new_tokens=generated[i].new_tokens,
                                     turns_dropped=prompts[i].turns_dropped, **english)
        return outcomes  # type: ignore[return-value]

    def _to_player_side(self, texts: list[str]) -> list[str | Exception]:
        if not self.english:
            return list(texts)
        # An empty English reply stays empty: translating "" would make the translator invent something.
        todo = list(dict.fromkeys(t for t in texts if t.strip()))
        russian = dict(zip(todo, per_item(self.translators.to_russian.translate, todo)))
        return [russian.get(t, "") for t in texts]
