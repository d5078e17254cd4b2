"""From a stored job to the turn pipeline's input: which history a turn is written on, in which languages.

A new turn continues after the game's last turn; a retry regenerates the last turn (same action, the turns
before it as history). For English models the stored English shadow (world_en, and each turn's action_en /
result_en) is passed along, so nothing the game already translated is translated again.
"""
from __future__ import annotations

from adventure.turns import TurnInput


def turn_input(ctx: dict, english: bool) -> TurnInput:
    """The TurnInput of a job context from `Store.job_context`."""
    job, turns = ctx["job"], ctx["turns"]
    action, action_en = job["action"], None
    if job["kind"] == "retry":
        action_en = turns[-1]["action_en"]  # translated when the turn was first played
        turns = turns[:-1]
    history = tuple((t["action"], t["result"]) for t in turns)
    if not english:
        return TurnInput(world=ctx["world"], history=history, action=action)
    shadow = [(t["action_en"], t["result_en"]) for t in turns]
    complete = all(a is not None and r is not None for a, r in shadow)
    return TurnInput(world=ctx["world"], history=history, action=action, world_en=ctx["world_en"],
                     history_en=tuple(shadow) if complete else None, action_en=action_en)
