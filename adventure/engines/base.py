"""The engine interface: what every engine gives the turn pipeline (see adventure/engines/__init__.py), and the
one way a generated row becomes a Generation, so that cleanup sees the same kind of text from every engine.

Optional parts an engine may declare (read with getattr, so hf and ct2 need none of them):
    beams = False        it has no beam search: a preset with num_beams > 1 is refused at start (check_decoding)
    continuous = True    it batches continuously itself and may be called from several threads at once: the game
                         server then runs several batches at a time, so a turn that arrives mid-generation joins
                         the running generation at the next step instead of waiting for the batch to end
    health() -> dict     the state of what it depends on (a remote server), shown by /healthz; {"ok": False, ...}
                         makes /healthz answer 503
A row of `generate`'s result may also be an Exception instead of a Generation (an engine whose rows are independent
requests, e.g. engine=openai): that row fails alone with its reason, the others are kept.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from adventure.generation import GenerationSettings


Progress = Callable[[int, list[int]], None]  # (row, the row's settled new token ids so far)


@dataclass(frozen=True)
class Generation:
    text: str  # the decoded new tokens, before cleanup (special tokens removed, cut before a stop string)
    new_tokens: int
    token_ids: tuple[int, ...] = ()  # those new tokens (EOS excluded), to compare engines token by token


class Engine(Protocol):
    name: str
    description: str  # what produced the numbers, e.g. "ct2 int8 on cpu" (eval reports name it)
    tokenizer: Any
    context_length: int

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation]:
        """One continuation per prompt. `on_progress`, when the engine can, hears each row's settled tokens as
        they grow (streaming); an engine that cannot simply never calls it. When it returns true the caller wants
        no more of that row: an engine that can stop one row (ct2 without beams) ends it there."""

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed negative log-likelihood (nats) of each (prompt ids, target ids) pair's target given its prompt."""
        ...

    def close(self) -> None: ...


def health(engine) -> dict | None:
    """The engine's `health()`, when it has one (None: nothing to report)."""
    check = getattr(engine, "health", None)
    return check() if callable(check) else None


class ThreadView:
    """The same engine for another thread: its own copy of the tokenizer (a fast tokenizer must not be used by two
    threads at once) and generation through the shared engine. An engine that does not declare `continuous` is
    not meant to be called from two threads at once: its calls are serialised by `lock` (one per engine)."""

    def __init__(self, engine, lock: threading.Lock | None = None):
        self._engine = engine
        self.tokenizer = copy.deepcopy(engine.tokenizer)
        continuous = getattr(engine, "continuous", False)
        self._lock = contextlib.nullcontext() if continuous else (lock or threading.Lock())

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def generate(self, prompts, settings, **kwargs):
        with self._lock:
            return self._engine.generate(prompts, settings, **kwargs)

    def score(self, pairs, **kwargs):
        with self._lock:
            return self._engine.score(pairs, **kwargs)


class PerThread:
    """A tokenizer for each thread that asks (an engine called from several threads, or with a pool of its own):
    copies made from a pristine one that no thread uses, so copying never races with tokenizing."""

    def __init__(self, tokenizer):
        self._pristine, self._local, self._copying = copy.deepcopy(tokenizer), threading.local(), threading.Lock()

    def get(self):
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            with self._copying:
                tokenizer = self._local.tokenizer = copy.deepcopy(self._pristine)
        return tokenizer


def row_seed(seed: int | None, row: int) -> int | None:
    """The seed of one row of a batch, for engines that seed each request: rows (the variants of one turn are
    rows with the same prompt) must sample independently, and batch i's seed + i never meets another batch's."""
    return None if seed is None else (seed * 1_000_003 + row) % 2**31


def first_stop(text: str, stop_strings: Sequence[str]) -> int | None:
    """Where the first of `stop_strings` starts in `text` (None: none occurs)."""
    found = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(found) if found else None


def finish_row(tokenizer, ids: Sequence[int], stop_strings: Sequence[str] = ()) -> Generation:
    """A row's new token ids as the turn pipeline gets them: up to the first EOS, decoded without special tokens,
    and cut before the first stop string (new_tokens then counts the tokens up to the one that completed it)."""
    ids = list(ids)
    eos = tokenizer.eos_token_id
    if eos in ids:
        ids = ids[: ids.index(eos)]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut = first_stop(text, stop_strings)
    if cut is None:
        return Generation(text, len(ids), tuple(ids))
    used = next(n for n in range(1, len(ids) + 1)
                if first_stop(tokenizer.decode(ids[:n], skip_special_tokens=True), stop_strings) is not None)
    return Generation(text[:cut], used, tuple(ids[:used]))
