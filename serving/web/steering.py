"""Steering routes: a game's memory, author's note, world info, preset, banned words and stop strings (PATCH),
the presets the server allows, and the context view: the exact prompt the next turn would send.

    PATCH /api/games/<id>            any of memory, authors_note, authors_note_depth, world_info, preset,
                                     banned_words, stop -> 200 with the game (400 wrong type / value / unknown
                                     preset, 413 over a length limit; a refused PATCH changes nothing)
    GET   /api/presets               the presets a game may choose (no token): {id: {id, name, description,
                                     default, streams, token_probs, deterministic, max_new_tokens}}, names and
                                     descriptions in Russian (serving/game/presets.py)
    GET   /api/games/<id>/context?action=<text>&mode=<do|say|story>   {prompt, parts, tokens_total, context_limit, turns_dropped,
                                     world_info_triggered} (+ prompt_en for English models)
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from serving.game.presets import presets_view
from serving.web.http import authorized, client, game_json, json_object, service

steering_api = Blueprint("steering_api", __name__)


@steering_api.get("/api/presets")
def presets():
    tier = service()
    return jsonify(presets_view(tier.presets, tier.engine_name, tier.default_preset))


@steering_api.patch("/api/games/<game_id>")
def patch_game(game_id: str):
    authorized(game_id)
    service().clients.tools.take(client())
    service().patch(game_id, json_object(required=True))
    return jsonify(game_json(game_id))


@steering_api.get("/api/games/<game_id>/context")
def context(game_id: str):
    tier = service()
    authorized(game_id)
    tier.clients.tools.take(client())
    return jsonify(tier.context(tier.game(game_id), request.args.get("action", ""), mode=request.args.get("mode")))
