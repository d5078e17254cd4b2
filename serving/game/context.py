"""Steering and the context view of a game: what the next turn would send the model, asked of the turn pipeline.

The view never renders a prompt itself: the stored game becomes a TurnInput (game/turn_input.py), the pipeline
budgets it (`prompt`) and shows it as the player reads it (`player_prompt`: Russian for an English model).
"""
from __future__ import annotations

from dataclasses import replace

from adventure.errors import GamioError
from adventure.steering import Steering, SteeringError, updated_steering
from adventure.turns import TurnFailure, TurnPipeline
from serving.errors import BadRequest, TooLarge, Unavailable
from serving.game.turn_input import turn_input

FIELDS = ("memory", "authors_note", "authors_note_depth", "world_info", "banned_words", "stop")


def steering_update(game, data: dict, presets: dict) -> tuple[Steering, str | None]:
    """The game's steering and preset after a PATCH body (400 / 413 with the reason; nothing is changed here)."""
    unknown = sorted(set(data) - set(FIELDS) - {"preset"})
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown}; a game takes {list(FIELDS) + ['preset']}")
    try:
        steering = updated_steering(Steering.from_dict(game.steering), data)
    except SteeringError as exc:
        raise (TooLarge if exc.too_long else BadRequest)(str(exc)) from None
    preset = checked_preset(data["preset"], presets) if "preset" in data else game.preset
    return steering, preset


def checked_preset(value, presets: dict) -> str | None:
    """A preset name the server offers, or None: the server's default (PATCH {"preset": null} goes back to it)."""
    if value is not None and (not isinstance(value, str) or value not in presets):
        raise BadRequest(f"'preset' must be one of {sorted(presets)} or null, not {value!r}")
    return value


def context_view(viewer: TurnPipeline, game, action: str, presets: dict, *, steering: Steering | None = None,
                 preset: str | None = None, history: bool = True, mode: str | None = None) -> dict:
    """{prompt, parts, tokens_total, context_limit, context_length, turns_dropped, world_info_triggered}
    (+ prompt_en for English models) of the next turn of `game` with `action`. `history=False`: as if the game
    had no turns yet (does memory and the note fit at all?)."""
    if not history:
        game = replace(game, turns=())
    preset = preset if preset is not None else game.preset
    settings = presets.get(preset) if preset else None
    if game.max_new_tokens:  # the reply length the player chose leaves the prompt that much less room
        settings = replace(settings or viewer.settings, max_new_tokens=game.max_new_tokens)
    turn = turn_input(game, action, english=viewer.english, settings=settings, steering=steering,
                      mode=mode if mode in ("do", "say", "story") else None)
    side = viewer.model_side([turn])[0]
    if isinstance(side, TurnFailure):
        raise Unavailable(f"the context cannot be shown now: {side.reason}")
    try:
        prompt = viewer.prompt(side)
    except GamioError as exc:
        raise TooLarge(str(exc)) from None
    settings = turn.settings or viewer.settings
    view = {"prompt": viewer.player_prompt(turn, prompt), "tokens_total": len(prompt.input_ids),
            "context_limit": viewer.engine.context_length - settings.max_new_tokens,
            "context_length": viewer.engine.context_length, "turns_dropped": prompt.turns_dropped,
            "world_info_triggered": viewer.world_info_order(turn),
            "parts": [{"kind": p.kind, "text": p.text, "tokens": p.tokens, "dropped": p.dropped,
                       **({"index": p.index} if p.index is not None else {})} for p in prompt.parts]}
    if viewer.english:  # the player reads the same prompt in Russian; the model's own is shown beside it
        view["prompt_en"] = prompt.text
    return view
