"""The Kobold-compatible endpoints (KoboldCpp's shapes, for Kobold Lite and SillyTavern): GET /api/v1/model,
/api/v1/info/version, /api/extra/version (open even with keys), /api/v1/config/max_context_length,
/api/extra/true_max_context_length, /api/v1/config/max_length, POST /api/extra/tokencount, /api/v1/generate ->
{"results": [{"text", "finish_reason", ...}]}, /api/extra/generate/stream (SSE `event: message` with
{"token", "finish_reason": null}, last {"token": "", "finish_reason"}).

Keys, CORS, errors and the raw jobs: compat/common.py.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, stream_with_context

from adventure.budget import encode_text
from adventure.turns import TurnFailure
from serving.compat.common import Appended, clamp, finish_reason, install, number, request_body, results, run_raw, settings_of, stream_of
from serving.errors import BadRequest
from serving.web.http import client, service

kobold_api = install(Blueprint("kobold_api", __name__))
KOBOLD_VERSION, KOBOLDCPP_VERSION = "1.2.5", "1.80"

@kobold_api.get("/api/v1/model")
def kobold_model():
    return jsonify({"result": f"gamio/{service().choice.name}"})


@kobold_api.get("/api/v1/info/version")
def kobold_version():
    return jsonify({"result": KOBOLD_VERSION})


@kobold_api.get("/api/extra/version")
def koboldcpp_version():
    return jsonify({"result": "KoboldCpp", "version": KOBOLDCPP_VERSION, "protected": bool(service().api.keys)})


@kobold_api.get("/api/v1/config/max_context_length")
def kobold_max_context():
    return jsonify({"value": service().viewer.engine.context_length})


@kobold_api.get("/api/extra/true_max_context_length")
def koboldcpp_max_context():
    return kobold_max_context()


@kobold_api.get("/api/v1/config/max_length")
def kobold_max_length():
    return jsonify({"value": service().api.max_tokens})


@kobold_api.post("/api/extra/tokencount")
def koboldcpp_tokencount():
    """SillyTavern counts a prompt's tokens here to fill the context exactly."""
    service().clients.tools.take(client())
    prompt = request_body().get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    ids = encode_text(service().viewer.engine.tokenizer, prompt)
    return jsonify({"value": len(ids), "ids": ids})


def kobold_job():
    data = request_body()
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    settings = settings_of(data, tokens_key="max_length", tokens_default=80, rep_key="rep_pen",
                           stop_key="stop_sequence")
    max_context = number(data, "max_context_length", None, 1, 10_000_000, True)
    n = number(data, "n", 1, 1, service().api.max_n, True)
    return run_raw(clamp(prompt, max_context, settings.max_new_tokens), settings, n), settings


@kobold_api.post("/api/v1/generate")
def kobold_generate():
    job, settings = kobold_job()
    return jsonify({"results": [{"text": r.result, "finish_reason": finish_reason(r, settings),
                                 "prompt_tokens": r.prompt_tokens, "completion_tokens": r.new_tokens}
                                for r in results(job)]})


@kobold_api.post("/api/extra/generate/stream")
def kobold_stream():
    job, settings = kobold_job()

    def message(token: str, reason: str | None = None) -> str:
        return f"event: message\ndata: {json.dumps({'token': token, 'finish_reason': reason}, ensure_ascii=False)}\n\n"

    def events():  # KoboldCpp's shape: tokens with finish_reason null, then an empty token with the reason
        sent = Appended()
        for event, text in stream_of(job):
            if event != "end" and (piece := sent.piece(event, text)):
                yield message(piece)
        outs = service().raw_outcome(job)
        ok = outs and not isinstance(outs[0], TurnFailure)
        rest = sent.rest(outs[0].result) if ok else ""
        if rest:
            yield message(rest)
        yield message("", finish_reason(outs[0], settings) if ok else "error")

    return Response(stream_with_context(events()), mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
