"""What the OpenAI- and Kobold-compatible endpoints share (compat/openai.py, compat/kobold.py): API keys, CORS,
error shapes, request fields, the mapping of a request onto the game's sampling settings, and a raw job's
stream with the "never take back" bookkeeping (`Appended`): these clients cannot retract text, so a `reset` that
rewrites what was sent is not forwarded, only one that extends it, and the final text's unsent rest comes last.

Requests go through the game's own queue (same 429 + Retry-After and 503 rules, batched with game turns) as raw
jobs of the game tier: the prompt as given, no story format, cleanup or translation. Prompts are clamped to the
model's context (left-truncated by tokens), max_tokens / max_length to `api.max_tokens` (and below the context).
`api.keys` turns on Bearer keys for these routes (open by default, like the game API); `api.cors_origins` lets
browser clients of other origins in (none by default). Errors have the shape each client expects: OpenAI
{"error": {"message", "type", ...}}, Kobold {"detail": {"msg", "type"}}; never a 5xx for bad input.
"""
from __future__ import annotations

import hmac
import json
import time
from dataclasses import replace

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from adventure.budget import encode_text
from serving.errors import ApiError, BadRequest, Unauthorized
from serving.web.errors import http_headers, http_status
from serving.web.http import client, json_object, service

STREAM_WAIT_S = 900.0

# ---- errors and keys -------------------------------------------------------------------------------------------

OPENAI_PREFIX, KOBOLD_PREFIXES = "/v1/", ("/api/v1/", "/api/extra/")
OPEN_ROUTES = ("/api/extra/version",)  # KoboldCpp answers it without a key: its "protected" tells clients to send one


def error_body(path: str, status: int, message: str) -> dict | None:
    """The error body an OpenAI or Kobold client understands, for a path of these APIs (None: the game API's
    {"error"}). Also used for errors before a route is found (404, 405) and for waitress' own (413)."""
    if path.startswith(OPENAI_PREFIX):
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    if path.startswith(KOBOLD_PREFIXES):
        kind = {401: "unauthorized", 429: "service_busy"}.get(
            status, "service_unavailable" if status >= 500 else "bad_input")
        return {"detail": {"msg": message, "type": kind}}
    return None


def compat_error(exc):
    status = http_status(exc) if isinstance(exc, ApiError) else (exc.code or 400)
    message = exc.message if isinstance(exc, ApiError) else (exc.description or exc.name)
    if isinstance(exc, RequestEntityTooLarge):
        message = f"the request body is over the limit of {service().limits.max_body_bytes} bytes"
    headers = http_headers(exc) if isinstance(exc, ApiError) else {}
    return jsonify(error_body(request.path, status, message)), status, headers


def check_key():
    keys = service().api.keys
    if not keys or request.path in OPEN_ROUTES or request.method == "OPTIONS":  # a CORS preflight carries no key
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.strip(), k) for k in keys):
        raise Unauthorized("this endpoint needs an API key: send 'Authorization: Bearer <key>'")


def cors(response):
    """Browser clients on another origin (Kobold Lite at lite.koboldai.net) may call these routes only when
    `api.cors_origins` lists their origin ("*": any). Off by default: otherwise any web page a player opens could
    use the model (a JSON POST from another origin needs a preflight, which fails without these headers)."""
    allowed, origin = service().api.cors_origins, request.headers.get("Origin")
    if origin and ("*" in allowed or origin in allowed):
        response.headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                                 "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                 "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Max-Age": "600"})
    return response


# ---- request fields -----------------------------------------------------------------------------------------------

def request_body() -> dict:
    """The JSON object sent. JSON may escape a lone surrogate ("\\ud800"), which no tokenizer can encode: refused
    here for every field at once, rather than failing in the worker as a 5xx."""
    data = json_object(required=True)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body holds text that is not valid Unicode (a lone surrogate)") from None
    return data


def number(data: dict, key: str, default, low: float, high: float, integer: bool = False):
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise BadRequest(f"{key!r} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if not low <= value <= high:
        raise BadRequest(f"{key!r} must be from {low} to {high}, got {value}")
    return value


def strings(data: dict, key: str, limit: int) -> list[str]:
    value = data.get(key) or []
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > limit:
        raise BadRequest(f"{key!r} must be a string or a list of at most {limit} strings")
    return [v for v in value if v]


def settings_of(data: dict, *, tokens_key: str, tokens_default: int, rep_key: str, stop_key: str):
    """The request's sampling settings over the server's preset (one beam: these clients sample). max_tokens is
    capped by `api.max_tokens` and by the context (the prompt keeps at least one token), never refused."""
    svc = service()
    temperature = number(data, "temperature", 1.0, 0, 5)
    wanted = number(data, tokens_key, tokens_default, 1, 1_000_000, True)
    return replace(svc.viewer.settings, name="api", num_beams=1, do_sample=temperature > 0,
                   temperature=temperature if temperature > 0 else 1.0,
                   top_p=max(1e-4, number(data, "top_p", 1.0, 0, 1)),  # 0 (KoboldCpp: greedy) as the least mass
                   top_k=number(data, "top_k", 0, 0, 100_000, True),
                   repetition_penalty=number(data, rep_key, 1.0, 0.01, 20),
                   max_new_tokens=min(wanted, svc.api.max_tokens, svc.viewer.engine.context_length - 1),
                   stop_strings=strings(data, stop_key, 16), bad_words_ids=[])


def clamp(prompt: str, max_context: int | None, max_new: int) -> str:
    """Left-truncate a prompt to `max_context - max_new` tokens of the client's own context limit (the model's is
    applied by the turn pipeline)."""
    if not max_context:
        return prompt
    tokenizer = service().viewer.engine.tokenizer
    ids = encode_text(tokenizer, prompt)  # as the pipeline counts them
    keep = max(1, max_context - max_new)
    return prompt if len(ids) <= keep else tokenizer.decode(ids[-keep:])


def run_raw(prompt: str, settings, n: int):
    """Queue a raw job for this request's client (429 / 503 as for game turns); the job."""
    return service().submit_raw(prompt, settings, n, client())


def results(job) -> list:
    """The job's results once done (503 with the reason when it failed or took too long)."""
    return service().raw_results(job)


def stream_of(job):
    """(kind, text) events of the job's first row as it is written, then ("end", "")."""
    after = 0
    deadline = time.monotonic() + STREAM_WAIT_S
    while time.monotonic() < deadline:
        events, finished = service().events(job.id, after, 15.0)
        for event_id, kind, data in events:
            after = event_id
            if kind in ("token", "reset"):
                yield kind, data["text"]
            elif kind in ("done", "failed"):
                yield "end", ""
                return
        if finished:
            break
    yield "end", ""


def finish_reason(result, settings) -> str:
    return "length" if result.new_tokens >= settings.max_new_tokens else "stop"



class Appended:
    """The text a client that cannot take anything back has been sent: `piece()` of each stream event is what to
    send now ("" for a reset that rewrites earlier text), `rest()` what the final text adds after it."""

    def __init__(self):
        self.shown = ""

    def piece(self, kind: str, text: str) -> str:
        if kind == "token":
            self.shown += text
            return text
        if kind == "reset" and text.startswith(self.shown):
            piece, self.shown = text[len(self.shown):], text
            return piece
        return ""

    def rest(self, final: str) -> str:
        return final[len(self.shown):] if final.startswith(self.shown) else ""


def install(blueprint: Blueprint) -> Blueprint:
    """Keys, CORS and the error shapes on a compat blueprint."""
    blueprint.register_error_handler(ApiError, compat_error)
    blueprint.register_error_handler(HTTPException, compat_error)
    blueprint.before_request(check_key)
    blueprint.after_request(cors)
    return blueprint
