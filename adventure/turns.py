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

import copy
import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence, TypeVar

from adventure.budget import BudgetedPrompt, Steered, build_prompt, encode_text
from adventure.cleanup import clean_generation
from adventure.engines import Engine
from adventure.generation import GenerationSettings
from adventure.steering import NO_STEERING, Steering, banned_token_sequences, first_banned, triggered_world_info
from adventure.story_format import DEFAULT_HISTORY_TURNS, Turn, render_context
from adventure.streaming import Listener, RawStream, ReplyStream
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
    steering: Steering = NO_STEERING  # memory, author's note, world info, banned words, stop strings
    steering_en: Steering | None = None  # English models: its texts translated (None: translate now)
    raw: str | None = None  # a raw prompt (the OpenAI / Kobold endpoints): no story format, cleanup or translation
    continuation: bool = False  # no action line: the model goes on from the story's last text (`action` unused)


@dataclass(frozen=True)
class TurnResult:
    result: str  # what the player reads
    model_text: str  # the cleaned reply in the model's language
    prompt: str  # the prompt as the model got it
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
                 translators=None, history_turns: int = DEFAULT_HISTORY_TURNS, world_info_scan_turns: int = 4,
                 world_info_share: float = 0.25, empty_retries: int = 2):
        if language not in ("ru", "en"):
            raise ValueError(f"language must be ru or en, got {language!r}")
        if language == "en" and translators is None:
            raise ValueError("an English model needs translators (ru->en and en->ru)")
        self.engine, self.settings, self.language = engine, settings, language
        self.translators, self.history_turns = translators, history_turns
        self.world_info_scan_turns, self.world_info_share = world_info_scan_turns, world_info_share
        # A sampled reply that cleanup leaves empty (the model opened the next "> action" line at once) is drawn
        # again, up to this many times: a player should not get an empty turn while another draw can do better.
        self.empty_retries = empty_retries
        self.special_tokens = [t for t in engine.tokenizer.all_special_tokens if t]
        self._banned: dict[tuple[str, ...], list[list[int]]] = {}

    @property
    def english(self) -> bool:
        return self.language == "en"

    def with_engine(self, engine) -> "TurnPipeline":
        """This pipeline around another engine object, e.g. a ThreadView of the same engine (a thread's own
        tokenizer: adventure/engines/base.py), with a banned-words cache of its own."""
        view = copy.copy(self)
        view.engine, view._banned = engine, {}
        return view

    # ---- the model's side of a turn ----------------------------------------------------------------------

    def model_side(self, turns: Sequence[TurnInput]) -> list[TurnInput | TurnFailure]:
        """English models: the turns with every missing English text translated (one translator call for the
        whole batch, each text once). Russian models: the turns as they are."""
        if not self.english:
            return list(turns)
        wanted: list[str] = []
        for turn in turns:
            if turn.raw is not None:
                continue
            wanted += [normalize_result(turn.world)] * (turn.world_en is None)
            wanted += [normalize_action(turn.action)] * (turn.action_en is None and not turn.continuation)
            shadow = turn.history_en or ((None, None),) * len(turn.history)
            for (a, r), (a_en, r_en) in zip(turn.history, shadow):  # only what the game has not stored
                wanted += [normalize_action(a)] * (a_en is None) + [normalize_result(r)] * (r_en is None)
            if turn.steering_en is None:
                wanted += [t for t in _steering_texts(turn.steering) if t]
        unique = list(dict.fromkeys(wanted))
        english = dict(zip(unique, per_item(self.translators.to_english.translate, unique)))
        out: list[TurnInput | TurnFailure] = []
        for turn in turns:
            if turn.raw is not None:
                out.append(turn)
                continue
            filled = replace(
                turn,
                world_en=turn.world_en if turn.world_en is not None else english[normalize_result(turn.world)],
                action_en=turn.action_en if turn.action_en is not None else "" if turn.continuation else
                english[normalize_action(turn.action)],
                history_en=tuple((a_en if a_en is not None else english[normalize_action(a)],
                                  r_en if r_en is not None else english[normalize_result(r)])
                                 for (a, r), (a_en, r_en) in zip(turn.history, turn.history_en
                                                                 or ((None, None),) * len(turn.history))),
                steering_en=turn.steering_en if turn.steering_en is not None else _translated(turn.steering, english))
            texts = [filled.world_en, filled.action_en, *(t for pair in filled.history_en for t in pair),
                     *_steering_texts(filled.steering_en)]
            error = next((t for t in texts if isinstance(t, Exception)), None)
            out.append(failure(error, "translation ru->en") if error else filled)
        return out

    def world_info_order(self, turn: TurnInput) -> list[int]:
        """The world-info entries this turn triggers, in priority order: keys are looked for on the player's
        (Russian) side in the last `world_info_scan_turns` turns and the new action."""
        entries = turn.steering.world_info
        if not entries:
            return []
        recent = turn.history[-self.world_info_scan_turns:] if self.world_info_scan_turns > 0 else ()
        return triggered_world_info(entries, [text for pair in recent for text in pair] + [turn.action])

    def raw_prompt(self, turn: TurnInput) -> BudgetedPrompt:
        """A raw prompt clamped to the context: its last `context - max_new_tokens` tokens (at least one). An empty
        prompt is the start token alone: GPT-2 starts a text after <|endoftext|>, and an engine cannot continue
        nothing."""
        settings, tokenizer = turn.settings or self.settings, self.engine.tokenizer
        budget = max(1, self.engine.context_length - settings.max_new_tokens)
        ids = encode_text(tokenizer, turn.raw)
        kept = ids[-budget:]
        if not kept:
            start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            return BudgetedPrompt(text=turn.raw, input_ids=[start], turns_used=0, turns_dropped=0, world_cut_chars=0,
                                  action_cut_chars=0)
        return BudgetedPrompt(text=turn.raw if len(kept) == len(ids) else tokenizer.decode(kept),
                              input_ids=kept, turns_used=0, turns_dropped=0, world_cut_chars=0,
                              action_cut_chars=len(ids) - len(kept))

    def prompt(self, turn: TurnInput) -> BudgetedPrompt:
        """The budgeted prompt of a model-side turn: every text normalised, steering placed, the oldest turns
        dropped first."""
        if turn.raw is not None:
            return self.raw_prompt(turn)
        world, history, action = ((turn.world_en, turn.history_en, turn.action_en) if self.english
                                  else (turn.world, turn.history, turn.action))
        steering = turn.steering_en if self.english else turn.steering
        settings = turn.settings or self.settings
        context = self.engine.context_length
        note = normalize_action(steering.authors_note)
        steered = Steered(memory=normalize_result(steering.memory),
                          world_info=[(i, normalize_result(steering.world_info[i].text))
                                      for i in self.world_info_order(turn)],
                          authors_note=(NOTE_LABELS[self.language].format(note) if note else ""),
                          authors_note_depth=turn.steering.authors_note_depth,
                          world_info_budget=int(context * self.world_info_share))
        return build_prompt(self.engine.tokenizer, normalize_result(world),
                            [(normalize_action(a), normalize_result(r)) for a, r in history],
                            None if turn.continuation else normalize_action(action), context_length=context,
                            max_new_tokens=settings.max_new_tokens, max_turns=self.history_turns, steered=steered)

    def player_prompt(self, turn: TurnInput, prompt: BudgetedPrompt) -> str:
        """The prompt `prompt` (of this model-side turn) as the player reads it: for an English model, the same
        parts in Russian (the turns, world info and note it kept); for a Russian model, the prompt itself."""
        if not self.english:
            return prompt.text
        steering = turn.steering
        kept = turn.history[len(turn.history) - prompt.turns_used:] if prompt.turns_used else ()
        note = normalize_action(steering.authors_note)
        return render_context(
            normalize_result(turn.world), [(normalize_action(a), normalize_result(r)) for a, r in kept],
            None if turn.continuation else normalize_action(turn.action), memory=normalize_result(steering.memory),
            world_info=[normalize_result(steering.world_info[i].text) for i in prompt.world_info_used],
            note=NOTE_LABELS["ru"].format(note) if note else "", note_depth=steering.authors_note_depth)

    def row_settings(self, turn: TurnInput) -> GenerationSettings:
        """The turn's preset with its game's banned words and stop strings (Russian models: an English model
        writes English, so those are enforced on the translated reply only)."""
        settings = turn.settings or self.settings
        banned, stop = turn.steering.banned_words, turn.steering.stop
        if self.english or not (banned or stop):
            return settings
        if banned not in self._banned:
            self._banned[banned] = banned_token_sequences(self.engine.tokenizer, banned)
        return replace(settings, bad_words_ids=self._banned[banned], stop_strings=list(stop))

    # ---- a batch of turns --------------------------------------------------------------------------------

    def run(self, turns: Sequence[TurnInput], *, seed: int | None = None, listener: Listener | None = None,
            stop: Callable[[int], bool] | None = None) -> list[TurnResult | TurnFailure]:
        """Generate the turns; `listener(row, "token" | "reset", text)` hears each reply as it is written
        (adventure/streaming.py), ending with the row's final result. `stop(row)` true: the row is no longer
        wanted (a player stopped it); an engine that can ends its generation at the next token."""
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

        row_settings = {i: self.row_settings(turns[i]) for i in prompts}
        streams = {i: self._stream(i, turns[i], listener) for i in prompts} if listener else {}
        generated, cleaned = self._generate_with_redraws(turns, prompts, row_settings, streams, seed, stop)

        done = [i for i in generated if not isinstance(generated[i], Exception)]
        for i in generated:
            if isinstance(generated[i], Exception):
                outcomes[i] = failure(generated[i], "generation")
        for i in [i for i in done if turns[i].raw is not None]:  # raw prompts: the text as the model wrote it
            outcomes[i] = TurnResult(result=generated[i].text, model_text=generated[i].text, prompt=prompts[i].text,
                                     cut_action=False, cut_unfinished=False, prompt_tokens=len(prompts[i].input_ids),
                                     new_tokens=generated[i].new_tokens, turns_dropped=0)
            if i in streams:
                streams[i].finish(generated[i].text)
        done = [i for i in done if turns[i].raw is None]
        player_texts = self._to_player_side([cleaned[i].text for i in done])
        for i, text in zip(done, player_texts):
            if isinstance(text, Exception):
                outcomes[i] = failure(text, "translation en->ru")
                continue
            side, clean = sides[i], cleaned[i]
            english = dict(world_en=side.world_en if turns[i].world_en is None else None,
                           action_en=side.action_en, result_en=clean.text) if self.english else {}
            result = normalize_result(_cut(text, turns[i].steering) if self.english else text)
            outcomes[i] = TurnResult(result=result, model_text=clean.text, prompt=prompts[i].text,
                                     cut_action=clean.cut_action, cut_unfinished=clean.cut_unfinished,
                                     prompt_tokens=len(prompts[i].input_ids), new_tokens=generated[i].new_tokens,
                                     turns_dropped=prompts[i].turns_dropped, **english)
            if i in streams:
                streams[i].finish(result)
        return outcomes  # type: ignore[return-value]

    def _generate_with_redraws(self, turns, prompts, row_settings, streams, seed, stop=None):
        """({row: Generation or that row's exception}, {story row: its cleaned reply}). A sampled story reply that
        cleanup leaves empty is drawn again with the next seed; greedy would only repeat itself, and a raw
        prompt's text is the caller's to judge."""
        generated: dict = {}
        cleaned: dict = {}
        pending = list(prompts)
        for attempt in range(1 + self.empty_retries):
            fresh = self._generate(pending, prompts, row_settings, streams, None if seed is None else seed + attempt,
                                   stop)
            # A redraw that fails keeps the empty reply it was meant to improve: a failure would lose the turn.
            generated.update({i: g for i, g in fresh.items() if attempt == 0 or not isinstance(g, Exception)})
            story = [i for i in pending if turns[i].raw is None and not isinstance(generated[i], Exception)]
            cleaned.update({i: clean_generation(_cut(generated[i].text, turns[i].steering), self.special_tokens)
                            for i in story})
            pending = [i for i in story if row_settings[i].do_sample and not cleaned[i].text.strip()
                       and not (stop and stop(i))]
            if not pending:
                break
            log.debug("%d sampled replies came out empty; drawing them again", len(pending))
        return generated, cleaned

    def _generate(self, rows: list[int], prompts: dict[int, BudgetedPrompt],
                  row_settings: dict[int, GenerationSettings], streams: dict, seed: int | None,
                  stop: Callable[[int], bool] | None = None) -> dict:
        """{row: Generation or that row's exception}, one engine call per preset: rows with different settings
        cannot share a generate call. The progress callback answers whether a row should stop."""
        groups: dict[str, list[int]] = {}
        for i in rows:
            groups.setdefault(repr(row_settings[i]), []).append(i)
        generated = {}
        for group in groups.values():
            progress = None
            if streams or stop:
                def progress(row, ids, group=group):  # noqa: E306 - the engine's row -> this batch's row
                    if streams:
                        streams[group[row]].feed(self.engine.tokenizer.decode(ids, skip_special_tokens=True))
                    return bool(stop and stop(group[row]))
            out = per_item(lambda ps, s=row_settings[group[0]], p=progress: self.engine.generate(
                ps, s, seed=seed, on_progress=p if len(ps) == len(group) else None),
                [prompts[i].input_ids for i in group])
            generated.update(zip(group, out))
        return generated

    def _stream(self, row: int, turn: TurnInput, listener: Listener) -> ReplyStream | RawStream:
        if turn.raw is not None:
            return RawStream(lambda kind, text: listener(row, kind, text), stop=(turn.settings or self.settings)
                             .stop_strings)
        def cut(text: str) -> str:
            return _cut(text, turn.steering)

        emit = lambda kind, text: listener(row, kind, text)  # noqa: E731
        if not self.english:
            return ReplyStream(emit, prepare=cut)
        # As for the final reply: stop strings and banned words cut the model's text and, being Russian, the
        # translation too.
        return ReplyStream(emit, prepare=cut, translate=self.translators.to_russian.translate, present=cut)

    def _to_player_side(self, texts: list[str]) -> list[str | Exception]:
        if not self.english:
            return list(texts)
        # An empty English reply stays empty: translating "" would make the translator invent something.
        todo = list(dict.fromkeys(t for t in texts if t.strip()))
        russian = dict(zip(todo, per_item(self.translators.to_russian.translate, todo)))
        return [russian.get(t, "") for t in texts]


NOTE_LABELS = {"ru": "[Примечание автора: {}]", "en": "[Author's note: {}]"}


def _cut(text: str, steering: Steering) -> str:
    """The text up to the first stop string or banned word; cleanup then drops the unfinished sentence such a
    cut leaves. The engine already avoids banned words, but a tokenizer can spell a word in ways the banned token
    sequences do not cover, and an English model's reply is only checked once translated."""
    ends = [text.find(stop) for stop in steering.stop if stop and stop in text]
    if steering.banned_words:
        position = first_banned(text, steering.banned_words)
        if position is not None:
            ends.append(position)
    return clean_generation(text[: min(ends)]).text if ends else text


def _steering_texts(steering: Steering) -> list[str]:
    return [normalize_result(steering.memory), normalize_action(steering.authors_note),
            *(normalize_result(e.text) for e in steering.world_info)]


def _translated(steering: Steering, english: dict) -> Steering:
    def en(text: str) -> str:
        return english[text] if text else ""

    memory, note, *texts = [en(t) for t in _steering_texts(steering)]
    return replace(steering, memory=memory, authors_note=note,
                   world_info=tuple(replace(e, text=t) for e, t in zip(steering.world_info, texts)))
