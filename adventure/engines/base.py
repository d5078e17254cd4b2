"""The engine interface: what every engine gives the turn pipeline (see adventure/engines/__init__.py), and the
one way a generated row becomes a Generation, so that cleanup sees the same kind of text from every engine."""
from __future__ import annotations

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
        they grow (streaming); an engine that cannot simply never calls it."""

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed negative log-likelihood (nats) of each (prompt ids, target ids) pair's target given its prompt."""
        ...

    def close(self) -> None: ...


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
