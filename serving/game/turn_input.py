"""The one place a stored game becomes the turn pipeline's input (adventure.turns.TurnInput): for the worker
(a queued turn or retry) and for the context view (the next turn with the action typed so far).

Moves (a turn's `mode`): do (an action line, as always), say (the action is the hero's speech), story (the
player's text joins the story as narration) and continue (the empty action: the model goes on). Story and
continue moves never become a `> ` line: adventure.story_format.fold_moves joins them into the text before them,
so the model always sees the training format; the new move of such a turn is a continuation of that text."""
from __future__ import annotations

from dataclasses import replace

from adventure.generation import GenerationSettings
from adventure.steering import Steering
from adventure.story_format import fold_moves, model_action
from adventure.turns import TurnInput


def move_of(action: str, mode: str | None) -> str:
    """A turn's move: the empty action is a continuation whatever the mode says."""
    return "continue" if not action.strip() else (mode or "do")


def turn_input(game, action: str, *, english: bool, settings: GenerationSettings | None = None,
               retry: bool = False, steering: Steering | None = None, mode: str | None = None) -> TurnInput:
    """The next turn of `game` (a storage record) with `action` in `mode`; `retry` regenerates the last turn
    instead (same action and mode, the turns before it as history). English models get the stored English shadow
    (a turn whose shadow is missing, e.g. after an edit or a fold, is translated again by the pipeline)."""
    turns, action_en = game.turns, None
    if retry:
        action_en = turns[-1].action_en  # translated when the turn was first played
        mode = turns[-1].mode
        turns = turns[:-1]
    move = move_of(action, mode)
    steering = steering if steering is not None else Steering.from_dict(game.steering)
    moves = [(t.action, t.result, move_of(t.action, t.mode)) for t in turns]
    if move == "story":  # the player's narration is the story's last text: the model continues from it
        moves.append((action, "", "story"))
    world, history = fold_moves(game.world, moves)
    continuation = move in ("story", "continue")
    action = "" if continuation else model_action(action, move)
    if not english:
        return TurnInput(world=world, history=tuple(history), action=action, settings=settings,
                         steering=steering, continuation=continuation)
    shadow = english_shadow(game, turns, moves, world)
    return TurnInput(world=world, history=tuple(history), action=action, world_en=shadow[0],
                     history_en=shadow[1], action_en="" if continuation else action_en, settings=settings,
                     steering=steering, continuation=continuation)


def english_shadow(game, turns, moves, world: str):
    """(world_en, history_en) of the folded story: a text that a fold changed has no stored translation (None:
    the pipeline translates it again)."""
    world_en = game.world_en if world == game.world else None
    history_en: list[tuple[str | None, str | None]] = []
    for (_action, _result, move), turn in zip(moves, list(turns) + [None]):
        if move in ("story", "continue"):
            if history_en:
                history_en[-1] = (history_en[-1][0], None)
            continue
        history_en.append((turn.action_en, turn.result_en))  # a speech's shadow is the speech line's translation
    return world_en, tuple(history_en)


def job_input(ctx, english: bool, settings: GenerationSettings | None = None,
              default: GenerationSettings | None = None) -> TurnInput:
    """The TurnInput of a stored job (storage JobContext), with the length the job or its game asked for (applied
    to its preset, or to `default`, the pipeline's own)."""
    job = ctx.job
    max_new_tokens = job.max_new_tokens or ctx.game.max_new_tokens
    if max_new_tokens and (settings or default) is not None:
        settings = replace(settings or default, max_new_tokens=max_new_tokens)
    return turn_input(ctx.game, job.action, english=english, settings=settings, retry=job.kind == "retry",
                      mode=job.mode)
