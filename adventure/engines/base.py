"""The engine interface: what every engine gives the turn pipeline (see adventure/engines/__init__.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from adventure.generation import GenerationSettings


Progress = Callable[[int, list[int]], None]  # (row, the row's settled new token ids so far)


@dataclass(frozen=True)
class Generation:
    text: str  # the decoded new tokens, before cleanup (special tokens removed)
    new_tokens: int


class Engine(Protocol):
    name: str
    tokenizer: Any
    context_length: int

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation]:
        """One continuation per prompt. `on_progress`, when the engine can, hears each row's settled tokens as
        they grow (streaming); an engine that cannot simply never calls it."""

    def close(self) -> None: ...
