"""GET /api/games/<id>/turns/<index>/tokens[?variant=<v>&top=<k>]: per token of a turn's reply, the probability
the model gave it and the `top` (5; 1..20) alternatives it weighed, for the page's token view:

    {"turn", "variant", "preset", "model", "tokens": [{"text", "prob", "top": [{"text", "prob"}, ...]}, ...]}

409 (code token_probs_unavailable) where they are not available (serving/game/tier.py says which cases)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from serving.errors import BadRequest
from serving.web.http import authorized, int_field, service

tokens_api = Blueprint("tokens_api", __name__)


@tokens_api.get("/api/games/<game_id>/turns/<int:index>/tokens")
def turn_tokens(game_id: str, index: int):
    authorized(game_id)
    args = {}
    for key in ("variant", "top"):
        raw = request.args.get(key)
        if raw is not None:
            digits = raw.removeprefix("-")  # ASCII digits only: `²` passes str.isdigit but not int(), and
            if not (digits.isascii() and digits.isdigit()):  # int() refuses 4300 digits and more
                raise BadRequest(f"{key!r} must be an integer, not {raw[:40]!r}")
            if len(digits) > 18:
                raise BadRequest(f"{key!r} is out of range: {raw[:40]}...")
            args[key] = int(raw)
    variant = int_field(args, "variant", None, 0, 10_000) if "variant" in args else None
    top = int_field(args, "top", 5, 1, 20)
    return jsonify(service().token_probs(game_id, index, variant, top))
