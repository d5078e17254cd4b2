"""The one place a stored game becomes the turn pipeline's input (adventure.turns.TurnInput): for the worker
(a queued turn or retry) and for the context view (the next turn with the action typed so far)."""
from __future__ import annotations

from adventure.generation import GenerationSettings
from adventure.steering import Steering
from adventure.turns import TurnInput


def turn_input(game, action: str, *, english: bool, settings: GenerationSettings | None = None,
               retry: bool = False, steering: Steering | None = None) -> TurnInput:
    """The next turn of `game` (a storage record) with `action`; `retry` regenerates the last turn instead (same
    action, the turns before it as history). English models get the stored English shadow (a turn whose shadow is
    missing, e.g. after an edit, is translated again by the pipeline)."""
    turns, action_en = game.turns, None
    if retry:
        action_en = turns[-1].action_en  # translated when the turn was first played
        turns = turns[:-1]
    steering = steering if steering is not None else Steering.from_dict(game.steering)
    history = tuple((t.action, t.result) for t in turns)
    if not english:
        return TurnInput(world=game.world, history=history, action=action, settings=settings, steering=steering)
    return TurnInput(world=game.world, history=history, action=action, world_en=game.world_en,
                     history_en=tuple((t.action_en, t.result_en) for t in turns), action_en=action_en,
                     settings=settings, steering=steering)


def job_input(ctx, english: bool, settings: GenerationSettings | None = None) -> TurnInput:
    """The TurnInput of a stored job (storage JobContext)."""
    return turn_input(ctx.game, ctx.job.action, english=english, settings=settings, retry=ctx.job.kind == "retry")
