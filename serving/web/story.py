"""Story routes: variants, edits, redo, export / import and read-only sharing (serving/story.py does the writing).

    POST   /api/games/<id>/turns/<index>/choose {"variant": int}   -> 200 the game (+ models / vote: arena turns)
    PUT    /api/games/<id>/turns/<index> {"action"?, "result"?}    -> 200 the game
    POST   /api/games/<id>/redo                                    -> 200 the game (409: nothing to redo)
    GET    /api/games/<id>/export?format=json|txt|md
    POST   /api/games/import  (no token; a json export)            -> 201 {game_id, token, story, ...}
    POST   /api/games/<id>/share -> {share_id, url};  DELETE /api/games/<id>/share -> 200
    GET    /api/shared/<share_id> (JSON, no token)  and  GET /s/<share_id> (the read-only page)
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_from_directory

from adventure.steering import NO_STEERING, SteeringError, updated_steering
from adventure.story_format import MODES, fold_moves, render_story
from adventure.text import normalize_action, normalize_result
from serving.errors import BadRequest, TooLarge
from serving.game.context import checked_preset
from serving.game.tier import ARENA_STATES, EXPORT_FORMAT
from serving.game.turn_input import move_of
from serving.web.http import STATIC_DIR, action_field, authorized, bool_field, client, game_json, int_field, json_body, json_object, service, \
    text_field
from serving.web.views import markdown, plain_text, shared_view

story_api = Blueprint("story_api", __name__)
MAX_IMPORTED_TURNS = 2000


@story_api.post("/api/games/<game_id>/turns/<int:index>/choose")
def choose(game_id: str, index: int):
    authorized(game_id)
    variant = int_field(json_object(required=True), "variant", None, 0, 10_000)
    vote = service().choose(game_id, index, variant)
    return jsonify({**game_json(game_id), **(vote or {})})


@story_api.put("/api/games/<game_id>/turns/<int:index>")
def edit_turn(game_id: str, index: int):
    svc = service()
    authorized(game_id)
    data = json_object(required=True)
    action = action_field(data, "action", svc.limits.max_action_chars, required=False)
    result = text_field(data, "result", svc.steering.max_result_chars, required=False)
    if action is None and result is None:
        raise BadRequest("send 'action' and/or 'result' to edit the turn")
    svc.edit(game_id, index, action, result, client())
    return jsonify(game_json(game_id))


@story_api.post("/api/games/<game_id>/redo")
def redo(game_id: str):
    authorized(game_id)
    json_object(required=False)
    service().redo(game_id)
    return jsonify(game_json(game_id))


# ---- export and import ---------------------------------------------------------------------------------------

@story_api.get("/api/games/<game_id>/export")
def export(game_id: str):
    svc = service()
    authorized(game_id)
    kind = request.args.get("format", "json")
    if kind == "json":
        return jsonify(svc.export(game_id))
    game = svc.game(game_id)
    if kind == "txt":  # the story in the `> action` text format, normalised as training reads it (continuations
        # and narration joined into the text before them: a `>` line is always a player's action)
        world, turns = fold_moves(game.world, [(t.action, t.result, move_of(t.action, t.mode)) for t in game.turns])
        turns = [(normalize_action(a), normalize_result(r)) for a, r in turns]
        text, mimetype = plain_text(render_story(normalize_result(world), turns)) + "\n", "text/plain"
    elif kind == "md":
        text, mimetype = markdown(game), "text/markdown"
    else:
        raise BadRequest(f"format must be json, txt or md, not {kind!r}")
    return Response(text, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename=gamio.{kind}"})


def checked_import(data) -> dict:
    """An export, every field checked against the server's limits (400 wrong shape, 413 too long)."""
    svc = service()
    if not isinstance(data, dict) or data.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise BadRequest(f"not a gamio game export (format {EXPORT_FORMAT!r} expected)")
    world = text_field(data, "world", svc.limits.max_world_chars, required=True)
    world_en = text_field(data, "world_en", svc.limits.max_world_chars, required=False)
    turns = data.get("turns", [])
    if not isinstance(turns, list):
        raise BadRequest("'turns' must be a list")
    if len(turns) > MAX_IMPORTED_TURNS:
        raise TooLarge(f"'turns' has {len(turns)} turns; the limit is {MAX_IMPORTED_TURNS}")
    checked = []
    for i, turn in enumerate(turns):
        where = f"turns[{i}]"
        if not isinstance(turn, dict):
            raise BadRequest(f"{where} must be an object")
        mode = turn.get("mode", "do")
        if mode not in MODES:
            raise BadRequest(f"{where}.mode must be one of {list(MODES)}, not {mode!r}")
        action = (text_field(turn, "action", svc.limits.max_action_chars, required=True) if mode == "continue" else
                  action_field(turn, "action", svc.limits.max_action_chars, required=True, where=f"{where}."))
        variants, most = turn.get("variants"), svc.limits.max_variants_per_turn
        if not isinstance(variants, list) or not 1 <= len(variants) <= most:
            raise BadRequest(f"{where}.variants must be a list of 1 to {most} variants "
                             f"(limits.max_variants_per_turn)")
        kept = []
        for v in variants:
            if not isinstance(v, dict):
                raise BadRequest(f"{where}.variants must hold objects {{text, text_en, model}}")
            kept.append({"text": text_field(v, "text", svc.steering.max_result_chars, required=True),
                         "text_en": text_field(v, "text_en", svc.steering.max_result_chars, required=False),
                         "model": text_field(v, "model", 200, required=False)})
        arena = turn.get("arena")
        if arena is not None and (arena not in ARENA_STATES.values() or len(kept) < 2):
            raise BadRequest(f"{where}.arena must be 'blind' or 'voted' (on a turn of 2 or more variants), "
                             f"not {arena!r}")
        checked.append({"action": action, "action_en": text_field(turn, "action_en", svc.limits.max_action_chars,
                                                                  required=False),
                        "variants": kept, "chosen": int_field(turn, "chosen", 0, 0, len(kept) - 1),
                        "mode": mode, **({"arena": arena} if arena else {})})
    given = data.get("steering") or {}
    given = given if isinstance(given, dict) else {"memory": given}
    try:
        steering = updated_steering(NO_STEERING, given).to_dict()
    except SteeringError as exc:
        raise (TooLarge if exc.too_long else BadRequest)(f"steering: {exc}") from None
    steering = {key: value for key, value in steering.items() if key in given}  # exactly what the export had
    return {"world": world, "world_en": world_en, "turns": checked, "steering": steering,
            "preset": checked_preset(data.get("preset"), svc.presets), "arena": bool_field(data, "arena", False)}


@story_api.post("/api/games/import")
def import_game():
    svc = service()
    data = checked_import(json_body(required=True))
    game_id, token, game = svc.import_game(data, client())
    return jsonify({"game_id": game_id, "token": token, **game_json(game_id, game)}), 201


# ---- sharing ---------------------------------------------------------------------------------------------------

@story_api.post("/api/games/<game_id>/share")
def share(game_id: str):
    authorized(game_id)
    json_object(required=False)
    share_id = service().share(game_id)
    return jsonify({"share_id": share_id, "url": f"/s/{share_id}"})


@story_api.delete("/api/games/<game_id>/share")
def unshare(game_id: str):
    authorized(game_id)
    service().unshare(game_id)
    return jsonify({"shared": False})


@story_api.get("/api/shared/<share_id>")
def shared(share_id: str):
    tier = service()
    return jsonify(shared_view(tier.shared(share_id), share_id, tier.choice.name))


@story_api.get("/s/<share_id>")
def shared_page(share_id: str):
    service().shared(share_id)  # 404 for an unknown or revoked id
    return send_from_directory(STATIC_DIR, "shared.html")
