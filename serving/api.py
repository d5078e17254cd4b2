"""The game's HTTP API (a contract: see the issues): JSON in and out, UTF-8, errors as `{"error": message}`.
Story editing, steering and sharing live in serving/api_story.py, the stream in serving/api_stream.py.

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

import random

from flask import Blueprint, jsonify, request

from adventure.engines.base import health
from adventure.text import normalize_action
from serving.errors import BadRequest
from serving.http import authorized, bool_field, client, int_field, json_object, service, text_field
from serving.views import game_view, job_view

api = Blueprint("api", __name__)
MAX_VARIANTS = 4


def submit(game_id: str, kind: str, action: str | None = None, n: int = 1):
    """Queue a turn or retry: 409 first (the game's own state), then the client's rate and share, then the queue.
    An arena game's new turn is a blind two-model comparison for `arena.rate` of its turns."""
    svc, who = service(), client()
    arena = (kind == "turn" and bool(svc.arena_models) and svc.store.game(game_id)["arena"]
             and random.random() < svc.arena_rate)

    def check():
        svc.store.check_job(game_id, kind)
        svc.clients.turns.take(who)

    job_id, position = svc.worker.submit(lambda: svc.store.add_job(game_id, kind, action, n=n, arena=arena),
                                         check=check, client=who)
    return accepted(job_id, position)


def accepted(job_id: str, position: int):
    response = jsonify({"job_id": job_id, "position": position, "status": "queued"})
    response.status_code = 202
    response.headers["Location"] = f"/api/jobs/{job_id}"
    return response


# ---- routes ------------------------------------------------------------------------------------------------

@api.get("/healthz")
def healthz():
    svc = service()
    write_error = svc.store.database.probe()  # while writes fail, try one: recovery needs no restart
    remote = health(svc.worker.pipeline.engine)  # engine=openai: is the inference server answering now?
    ok = svc.worker.alive and write_error is None and (remote is None or remote["ok"])
    body = {"status": "ok" if ok else "unavailable", "model": svc.choice.name, "language": svc.choice.language,
            "engine": svc.worker.pipeline.engine.description,
            "database": "ok" if write_error is None else f"cannot be written: {write_error}",
            "long_polls": svc.clients.long_polls.active, "games_expired": svc.janitor.expired, **svc.worker.stats()}
    if remote is not None:
        body["remote"] = {key: value for key, value in remote.items() if key != "ok"}
    if not svc.worker.alive:
        body["worker"] = "not running"
    return jsonify(body), 200 if ok else 503


@api.post("/api/games")
def create_game():
    svc = service()
    data = json_object(required=False)
    world = text_field(data, "world", svc.limits.max_world_chars, required=False)
    if world is None or not world.strip():
        world = svc.default_world
    arena = bool_field(data, "arena", False)
    svc.clients.games.take(client())
    game_id, token = svc.store.create_game(world, arena=arena)
    return jsonify({"game_id": game_id, "token": token, **{"story": game_view(game_id)["story"]}}), 201


@api.get("/api/games/<game_id>")
def get_game(game_id: str):
    authorized(game_id)
    return jsonify(game_view(game_id))


@api.post("/api/games/<game_id>/turns")
def play_turn(game_id: str):
    svc = service()
    authorized(game_id)
    data = json_object(required=True)
    action = text_field(data, "action", svc.limits.max_action_chars, required=True)
    if not normalize_action(action):
        raise BadRequest("'action' is empty: type what your character does")
    return submit(game_id, "turn", action, n=int_field(data, "n", 1, 1, MAX_VARIANTS))


@api.post("/api/games/<game_id>/undo")
def undo(game_id: str):
    authorized(game_id)
    json_object(required=False)
    service().store.undo(game_id)
    return jsonify(game_view(game_id))


@api.post("/api/games/<game_id>/retry")
def retry(game_id: str):
    authorized(game_id)
    json_object(required=False)  # no body needed; one that is sent must be JSON
    return submit(game_id, "retry")


@api.get("/api/jobs/<job_id>")
def get_job(job_id: str):
    svc = service()
    raw_wait = request.args.get("wait", "0")
    try:
        wait = float(raw_wait)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw_wait!r}") from None
    if not wait >= 0:  # also rejects NaN
        raise BadRequest(f"wait must be >= 0 seconds, got {raw_wait!r}")
    svc.store.job(job_id)  # 404 before waiting
    with svc.clients.long_polls.slot(client()) as granted:  # beyond the cap: the current state at once
        job = svc.worker.wait(job_id, min(wait, svc.limits.max_wait_s) if granted else 0)
        return jsonify(job_view(job))
