"""The HTTP API (a contract: see the issue): JSON in and out, UTF-8, errors as `{"error": message}`.

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

import json

from flask import Blueprint, current_app, jsonify, request

from adventure.text import normalize_action
from serving.errors import BadRequest, TooLarge, Unauthorized, UnsupportedMediaType
from serving.service import GameService
from serving.store import PENDING

api = Blueprint("api", __name__)


def service() -> GameService:
    return current_app.extensions["gamio"]


# ---- request parsing ---------------------------------------------------------------------------------------

def client() -> str:
    return service().clients.client(request)


def json_object(required: bool) -> dict:
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413 here
    if raw and request.mimetype != "application/json":  # text/plain is what a cross-site form can send
        raise UnsupportedMediaType(f"the request body must be sent as Content-Type: application/json, "
                                   f"not {request.mimetype or 'none'!r}")
    if not raw.strip():
        if required:
            raise BadRequest("the request body must be a JSON object")
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"malformed JSON body: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the JSON body must be an object, not {type(data).__name__}")
    return data


def text_field(data: dict, key: str, max_chars: int, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if value is None:
        raise BadRequest(f"missing {key!r}: send {{\"{key}\": \"...\"}}")
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string, not {type(value).__name__}")
    if len(value) > max_chars:
        raise TooLarge(f"{key!r} is {len(value)} characters long; the limit is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{key!r} is not valid Unicode text (lone surrogate)") from None
    return value


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authorized(game_id: str) -> None:
    service().store.authorize(game_id, bearer_token())


# ---- views -------------------------------------------------------------------------------------------------

def game_view(game_id: str) -> dict:
    game = service().store.game(game_id)
    english = any(t["action_en"] is not None for t in game["turns"])
    turns, story = [], [{"kind": "world", "text": game["world"]}]
    for t in game["turns"]:
        turn = {"index": t["idx"], "action": t["action"], "result": t["result"]}
        if english:
            turn.update(action_en=t["action_en"], result_en=t["result_en"])
        turns.append(turn)
        story += [{"kind": "action", "text": t["action"]}, {"kind": "result", "text": t["result"]}]
    view = {"game_id": game["id"], "world": game["world"], "turns": turns, "story": story,
            "pending_job": game["pending_job"], "model": service().choice.name}
    if game["world_en"] is not None:
        view["world_en"] = game["world_en"]
    return view


def job_view(job: dict) -> dict:
    svc = service()
    view = {"job_id": job["id"], "game_id": job["game_id"], "kind": job["kind"], "status": job["status"]}
    if job["status"] in PENDING:
        position = svc.worker.position(job["id"])
        if position is not None:  # waiting in the queue (also when put back there after a refused write)
            view.update(status="queued", position=position)
        if svc.store.database.write_error:
            view["delayed"] = f"the database cannot be written ({svc.store.database.write_error}); this turn is " \
                              f"kept and runs when it can"
    elif job["status"] == "done" and job["turn"] is not None:
        view["turn"] = {"index": job["turn"]["idx"], "action": job["turn"]["action"], "result": job["turn"]["result"]}
    elif job["status"] == "done":
        view["undone"] = True  # its turn was undone or replaced by a retry since: it is no longer in the game
    elif job["status"] == "failed":
        view["error"] = job["error"]
    return view


def submit(game_id: str, kind: str, action: str | None = None):
    """Queue a turn or retry: 409 first (the game's own state), then the client's rate and share, then the queue."""
    svc, who = service(), client()

    def check():
        svc.store.check_job(game_id, kind)
        svc.clients.turns.take(who)

    job_id, position = svc.worker.submit(lambda: svc.store.add_job(game_id, kind, action), check=check, client=who)
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
    ok = svc.worker.alive and write_error is None
    body = {"status": "ok" if ok else "unavailable", "model": svc.choice.name, "language": svc.choice.language,
            "engine": svc.worker.pipeline.engine.description,
            "database": "ok" if write_error is None else f"cannot be written: {write_error}",
            "long_polls": svc.clients.long_polls.active, "games_expired": svc.janitor.expired, **svc.worker.stats()}
    if not svc.worker.alive:
        body["worker"] = "not running"
    return jsonify(body), 200 if ok else 503


@api.post("/api/games")
def create_game():
    svc = service()
    world = text_field(json_object(required=False), "world", svc.limits.max_world_chars, required=False)
    if world is None or not world.strip():
        world = svc.default_world
    svc.clients.games.take(client())
    game_id, token = svc.store.create_game(world)
    return jsonify({"game_id": game_id, "token": token, **{"story": game_view(game_id)["story"]}}), 201


@api.get("/api/games/<game_id>")
def get_game(game_id: str):
    authorized(game_id)
    return jsonify(game_view(game_id))


@api.post("/api/games/<game_id>/turns")
def play_turn(game_id: str):
    svc = service()
    authorized(game_id)
    action = text_field(json_object(required=True), "action", svc.limits.max_action_chars, required=True)
    if not normalize_action(action):
        raise BadRequest("'action' is empty: type what your character does")
    return submit(game_id, "turn", action)


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
