"""The engine interface: what every engine gives the turn pipeline (see adventure/engines/__init__.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from adventure.generation import GenerationSettings


@dataclass(frozen=True)
class Generation:
    text: str  # the decoded new tokens, before cleanup (special tokens removed)
    new_tokens: int


class Engine(Protocol):
    name: str
    tokenizer: Any
    context_length: int

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None) -> list[Generation]: ...

    def close(self) -> None: ...
