"""The game's HTTP API (a contract: see the issues): JSON in and out, UTF-8, errors as `{"error": message}`.
Story editing, steering and sharing live in web/story.py and web/steering.py, the stream in web/stream.py;
the rules behind every route are the game tier's (serving/game/tier.py).

Semantics decided here:
- one pending job per game: a turn, undo or retry while the game's previous turn is queued or running is
  409 Conflict (the story is a sequence; a second action cannot be built on a result not written yet);
- undo with no turns and retry with no turns are 409 too; undo answers 200 with the game, retry 202 like a turn;
- a job id is a 128-bit random capability, so GET /api/jobs/<id> needs no token;
- actions and worlds are stored and returned exactly as sent; only the model's prompt sees them normalised;
- a request body must be declared `application/json` (415 otherwise), so a cross-site form cannot post one;
- per client: rate limits on new games and turns, a share of the queue, and a cap on long-polls (limits.py).
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from serving.errors import BadRequest
from serving.web.http import action_field, authorized, bool_field, client, game_json, int_field, job_json, json_object, service, \
    text_field

api = Blueprint("api", __name__)
MAX_VARIANTS = 4
MODES = ("do", "say", "story")  # a turn's input mode; the empty action continues the story in any mode


def accepted(job_id: str, position: int):
    response = jsonify({"job_id": job_id, "position": position, "status": "queued"})
    response.status_code = 202
    response.headers["Location"] = f"/api/jobs/{job_id}"
    return response


# ---- routes ------------------------------------------------------------------------------------------------

@api.get("/healthz")
def healthz():
    body, ok = service().health()
    return jsonify(body), 200 if ok else 503


@api.post("/api/games")
def create_game():
    tier = service()
    data = json_object(required=False)
    world = text_field(data, "world", tier.limits.max_world_chars, required=False)
    scenario = text_field(data, "scenario", 200, required=False)
    game_id, token, game = tier.create_game(world, bool_field(data, "arena", False), client(), scenario)
    return jsonify({"game_id": game_id, "token": token, "story": game_json(game_id, game)["story"]}), 201


@api.get("/api/games/<game_id>")
def get_game(game_id: str):
    authorized(game_id)
    return jsonify(game_json(game_id))


@api.post("/api/games/<game_id>/turns")
def play_turn(game_id: str):
    tier = service()
    authorized(game_id)
    data = json_object(required=True)
    action = text_field(data, "action", tier.limits.max_action_chars, required=True)
    if action.strip():  # "" (or blank) continues the story; an action must say something ("  > " does not)
        action_field(data, "action", tier.limits.max_action_chars, required=True)
    mode = data.get("mode", "do")
    if mode not in MODES:
        raise BadRequest(f"'mode' must be one of {list(MODES)}, not {mode!r}")
    length = data.get("max_new_tokens")
    if length is not None:
        length = int_field(data, "max_new_tokens", None, 1, tier.max_new_tokens_limit)
    return accepted(*tier.play(game_id, action, int_field(data, "n", 1, 1, MAX_VARIANTS), client(), mode, length))


@api.post("/api/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    """Stop a queued or running turn (the job id is its capability, like GET): 200 with the job, now
    `cancelled`; nothing of it is stored and the game takes a new turn at once. 409 for a job that is over."""
    json_object(required=False)
    tier = service()
    tier.cancel(job_id)
    return jsonify(job_json(tier.job(job_id)))


@api.post("/api/games/<game_id>/undo")
def undo(game_id: str):
    authorized(game_id)
    json_object(required=False)
    service().undo(game_id)
    return jsonify(game_json(game_id))


@api.post("/api/games/<game_id>/retry")
def retry(game_id: str):
    authorized(game_id)
    json_object(required=False)  # no body needed; one that is sent must be JSON
    return accepted(*service().retry(game_id, client()))


@api.get("/api/jobs/<job_id>")
def get_job(job_id: str):
    raw_wait = request.args.get("wait", "0")
    try:
        wait = float(raw_wait)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw_wait!r}") from None
    if not wait >= 0:  # also rejects NaN
        raise BadRequest(f"wait must be >= 0 seconds, got {raw_wait!r}")
    return jsonify(job_json(service().wait_job(job_id, wait, client())))
