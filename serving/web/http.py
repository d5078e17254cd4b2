"""Request parsing shared by the routes: the service, the client, JSON bodies, typed fields, the game's token.

Every refusal is an ApiError with a message naming the field, answered as JSON with the status of web/errors.py.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from flask import current_app, request

from adventure.text import normalize_action
from serving.errors import BadRequest, TooLarge, Unauthorized, UnsupportedMediaType
from serving.web.views import game_view, job_view

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def service():
    """The game tier (serving/game/tier.py): the one thing a route calls."""
    return current_app.extensions["gamio"]


def client() -> str:
    return service().clients.client(request)


def json_body(required: bool):
    """The parsed JSON body (any JSON value), declared `application/json` (415 otherwise: a cross-site form sends
    text/plain); an absent body is {} unless `required`."""
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413 here
    if raw and request.mimetype != "application/json":
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
    refuse_invalid_text(data)
    return data


def refuse_invalid_text(data) -> None:
    """Every string of a body (keys too, at any depth) must be text UTF-8 can store: JSON's `\\ud800` escape
    gives a lone surrogate, which no database or export can write. Checked once here, before any route reads a
    field, so that no route fails half way (or stores half an import) on one."""
    pending = [(data, "body")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"{where} is not valid Unicode text (a lone surrogate escape)") from None
        elif isinstance(value, dict):
            pending += [(key, f"a key in {where}") for key in value]
            pending += [(item, f"{where}.{key}") for key, item in value.items()]
        elif isinstance(value, list):
            pending += [(item, f"{where}[{i}]") for i, item in enumerate(value)]


def json_object(required: bool) -> dict:
    data = json_body(required)
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
    refuse_invalid_text(value)  # fields not from a body (query strings) are checked here
    return value


def action_field(data: dict, key: str, max_chars: int, required: bool, where: str = "") -> str | None:
    """An action: text with something to read once normalised (not empty, not only `>` and spaces, control
    characters or combining marks with nothing to combine with)."""
    action = text_field(data, key, max_chars, required)
    if action is not None and not any(unicodedata.category(c)[0] not in "CMZ" for c in normalize_action(action)):
        raise BadRequest(f"{where}{key!r} is empty: type what your character does")
    return action


def int_field(data: dict, key: str, default: int | None, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key!r} must be an integer from {low} to {high}, not {value!r}")
    if not low <= value <= high:
        raise BadRequest(f"{key!r} must be from {low} to {high}, got {value}")
    return value


def bool_field(data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{key!r} must be true or false, not {value!r}")
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
    service().authorize(game_id, bearer_token())


def game_json(game_id: str, game=None) -> dict:
    """The game's view (web/views.py) as a route answers it."""
    tier = service()
    return game_view(game or tier.game(game_id), tier.choice.name, tier.default_preset)


def job_json(job) -> dict:
    tier = service()
    return job_view(job, tier.position(job.id) if not job.final else None, tier.write_error)
