"""The stored game world as typed records: what storage/ hands upward. No column name leaves storage/: every
layer above reads these fields, and the repositories (store.py, story.py) are the only code that knows the schema.
"""
from __future__ import annotations

from dataclasses import dataclass

PENDING = ("queued", "running")
FINAL = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Variant:
    """One reply of a turn: the text the player reads, its English shadow (English models), which model wrote it
    (`edited` for a player's edit) and the job that generated it."""
    text: str
    text_en: str | None = None
    model: str | None = None
    job: str | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "text_en": self.text_en, "model": self.model,
                **({"job": self.job} if self.job else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "Variant":
        return cls(data["text"], data.get("text_en"), data.get("model"), data.get("job"))


@dataclass(frozen=True)
class Turn:
    index: int
    action: str
    result: str  # the chosen variant's text
    action_en: str | None
    result_en: str | None
    variants: tuple[Variant, ...]
    chosen: int
    arena: int = 0  # 0: an ordinary turn; 1: two models' blind variants; 2: the player has voted
    prompt: str | None = None  # what the (main) model was asked
    job_id: str | None = None  # the job whose result the turn holds
    mode: str | None = None  # do | say | story | continue (storage/../game/turn_input.py); None: do

    @property
    def english(self) -> bool:
        return self.action_en is not None


@dataclass(frozen=True)
class Game:
    id: str
    world: str
    world_en: str | None
    version: int  # counts the story's changes: a job accepted against an older version fails
    turns: tuple[Turn, ...]
    pending_job: str | None
    steering: dict  # memory, author's note, world info, banned words, stop strings (adventure.steering)
    preset: str | None
    arena: bool
    share_id: str | None
    redo_depth: int  # undone turns that redo can bring back
    max_new_tokens: int | None = None  # the reply length the player chose; None: the preset's

    @property
    def english(self) -> bool:
        return any(t.english for t in self.turns)


@dataclass(frozen=True)
class Job:
    id: str
    game_id: str
    kind: str  # turn | retry
    action: str
    status: str  # queued | running | done | failed | cancelled
    error: str | None
    n: int
    arena: bool
    created: float
    started: float | None = None  # when its (last) claim began
    turn: Turn | None = None  # a done job's turn; None once undone or replaced by a retry
    mode: str | None = None  # the move asked for (None: do)
    max_new_tokens: int | None = None  # the reply length asked for with the turn (None: the game's)

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class JobContext:
    """What the worker needs to generate a job: the job and its game as they are now."""
    job: Job
    game: Game


@dataclass(frozen=True)
class Vote:
    """An arena choice: the prompt, both blind replies and models in the order shown, and which one won."""
    game_id: str
    turn_index: int
    prompt: str
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    choice: str  # a | b
    created: float = 0.0


@dataclass(frozen=True)
class Share:
    share_id: str
    game_id: str
