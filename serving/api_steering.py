"""Steering routes: a game's memory, author's note, world info, preset, banned words and stop strings (PATCH),
the presets the server allows, and the context view: the exact prompt the next turn would send.

    PATCH /api/games/<id>            any of memory, authors_note, authors_note_depth, world_info, preset,
                                     banned_words, stop -> 200 with the game (400 wrong type / value / unknown
                                     preset, 413 over a length limit; a refused PATCH changes nothing)
    GET   /api/presets               the preset names a game may choose (no token)
    GET   /api/games/<id>/context?action=<text>   {prompt, parts, tokens_total, context_limit, turns_dropped,
                                     world_info_triggered} (+ prompt_en for English models)
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from adventure.errors import GamioError
from adventure.steering import Steering, SteeringError, updated_steering
from adventure.story_format import render_context
from adventure.text import normalize_action, normalize_result
from adventure.turns import NOTE_LABELS, TurnFailure, TurnInput
from serving.errors import BadRequest, TooLarge, Unavailable
from serving.http import authorized, json_object, service
from serving.views import game_view

steering_api = Blueprint("steering_api", __name__)
FIELDS = ("memory", "authors_note", "authors_note_depth", "world_info", "banned_words", "stop")


def game_turn(game: dict, action: str, steering: Steering | None = None) -> TurnInput:
    """The next turn of a stored game with `action`, as the worker would build it."""
    svc = service()
    history = tuple((t["action"], t["result"]) for t in game["turns"])
    settings = svc.presets.get(game["preset"]) if game["preset"] else None
    steering = steering if steering is not None else Steering.from_dict(game["steering"])
    if not svc.viewer.english:
        return TurnInput(game["world"], history, action, settings=settings, steering=steering)
    return TurnInput(game["world"], history, action, world_en=game["world_en"], settings=settings,
                     history_en=tuple((t["action_en"], t["result_en"]) for t in game["turns"]), steering=steering)


def context_of(turn: TurnInput) -> dict:
    svc = service()
    viewer = svc.viewer
    side = viewer.model_side([turn])[0]
    if isinstance(side, TurnFailure):
        raise Unavailable(f"the context cannot be shown now: {side.reason}")
    try:
        prompt = viewer.prompt(side)
    except GamioError as exc:
        raise TooLarge(str(exc)) from None
    settings = turn.settings or viewer.settings
    view = {"prompt": prompt.text, "tokens_total": len(prompt.input_ids),
            "context_limit": viewer.engine.context_length - settings.max_new_tokens,
            "context_length": viewer.engine.context_length, "turns_dropped": prompt.turns_dropped,
            "world_info_triggered": viewer.world_info_order(turn),
            "parts": [{"kind": p.kind, "text": p.text, "tokens": p.tokens, "dropped": p.dropped,
                       **({"index": p.index} if p.index is not None else {})} for p in prompt.parts]}
    if viewer.english:  # the player reads the same prompt in Russian
        st, kept = turn.steering, turn.history[len(turn.history) - prompt.turns_used:] if prompt.turns_used else ()
        note = normalize_action(st.authors_note)
        view["prompt_en"] = prompt.text
        view["prompt"] = render_context(
            normalize_result(turn.world), [(normalize_action(a), normalize_result(r)) for a, r in kept],
            normalize_action(turn.action), memory=normalize_result(st.memory),
            world_info=[normalize_result(st.world_info[i].text) for i in prompt.world_info_used],
            note=NOTE_LABELS["ru"].format(note) if note else "", note_depth=st.authors_note_depth)
    return view


@steering_api.get("/api/presets")
def presets():
    return jsonify(sorted(service().presets))


@steering_api.patch("/api/games/<game_id>")
def patch_game(game_id: str):
    svc = service()
    authorized(game_id)
    data = json_object(required=True)
    unknown = sorted(set(data) - set(FIELDS) - {"preset"})
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown}; a game takes {list(FIELDS) + ['preset']}")
    game = svc.store.game(game_id)
    try:
        steering = updated_steering(Steering.from_dict(game["steering"]), data)
    except SteeringError as exc:
        raise (TooLarge if exc.too_long else BadRequest)(str(exc)) from None
    preset = data.get("preset", game["preset"])
    if "preset" in data and preset not in svc.presets:
        raise BadRequest(f"'preset' must be one of {sorted(svc.presets)}, not {preset!r}")
    if not svc.viewer.english:  # memory and the note are never cut: they must fit this model's context
        context_of(game_turn({**game, "turns": [], "preset": preset}, "", steering))
    svc.story.set_steering(game_id, steering.to_dict(), preset, "preset" in data)
    return jsonify(game_view(game_id))


@steering_api.get("/api/games/<game_id>/context")
def context(game_id: str):
    svc = service()
    authorized(game_id)
    action = request.args.get("action", "")
    if len(action) > svc.limits.max_action_chars:
        raise TooLarge(f"'action' is {len(action)} characters long; the limit is {svc.limits.max_action_chars}")
    return jsonify(context_of(game_turn(svc.store.game(game_id), action)))
