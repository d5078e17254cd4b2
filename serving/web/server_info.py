"""What the play page must know about this server before a game starts (no token): GET /api/info, and the
ready-made openings, GET /api/scenarios -> {"scenarios": [{"id", "title", "world"}, ...]}.

    {"model": <name>, "demo_model": bool, "arena": bool, "engine": "ct2", "default_preset": "gamio_sample",
     "max_new_tokens_limit": int}

`demo_model` is true for the offline tiny models `make demo` builds (a vocabulary of a few thousand tokens,
trained for a minute): their text is nonsense by design, and the start screen says so. `arena` is true only where
the server loaded arena models (`arena.models`): the arena checkbox is offered only then.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from adventure.tiny import TinyShape
from serving.web.http import service

info_api = Blueprint("info_api", __name__)


def is_demo_model(tier) -> bool:
    return tier.choice.name.startswith("tiny") or len(tier.viewer.engine.tokenizer) <= TinyShape.vocab_size


@info_api.get("/api/scenarios")
def scenarios():
    """{"scenarios": [{id, title, world}, ...]}: the ready-made openings (serving/game/scenarios.py)."""
    return jsonify({"scenarios": [s.to_dict() for s in service().scenarios.values()]})


@info_api.get("/api/info")
def info():
    tier = service()
    return jsonify({"model": tier.choice.name, "demo_model": is_demo_model(tier), "arena": bool(tier.arena_models),
                    "engine": tier.engine_name, "default_preset": tier.default_preset,
                    "max_new_tokens_limit": tier.max_new_tokens_limit})
