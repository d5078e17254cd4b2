"""OpenAI- and Kobold-compatible endpoints, so SillyTavern, Kobold Lite, agnai or any OpenAI client can reach the
model. Their requests go through the game's own queue (same 429 + Retry-After and 503 rules, batched with game
turns) as raw jobs (serving/jobs.py): the prompt as given, no story format, cleanup or translation.

OpenAI: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (`stream` gives `data: ...` chunks and
`data: [DONE]`). Chat messages become one plain-text prompt in the game's own format, the form the model knows:

    <system messages, one per paragraph>
    > <user message>
    <assistant message>
    > <user message>
                                   <- the model writes the assistant's reply here; it ends before a new "> " line

Kobold (KoboldCpp's shapes): GET /api/v1/model, /api/v1/info/version, /api/extra/version (open even with keys),
/api/v1/config/max_context_length, /api/extra/true_max_context_length, /api/v1/config/max_length, POST
/api/extra/tokencount, /api/v1/generate -> {"results": [{"text", "finish_reason", ...}]},
/api/extra/generate/stream (SSE `event: message` with {"token", "finish_reason": null}, last {"token": "",
"finish_reason"}).

Prompts are clamped to the model's context (left-truncated by tokens), max_tokens / max_length to `api.max_tokens`
(and below the context).
`api.keys` turns on Bearer keys for these routes (open by default, like the game API); `api.cors_origins` lets
browser clients of other origins in (none by default). Errors have the shape each
client expects: OpenAI {"error": {"message", "type", ...}}, Kobold {"detail": {"msg", "type"}}; never a 5xx for
bad input.
"""
from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import replace

from flask import Blueprint, Response, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from adventure.budget import encode_text
from adventure.turns import TurnFailure
from serving.errors import ApiError, BadRequest, Unauthorized, Unavailable
from serving.http import client, json_object, service
from serving.jobs import RawJob
from serving.worker import without_paths

compat_api = Blueprint("compat_api", __name__)
KOBOLD_VERSION, KOBOLDCPP_VERSION = "1.2.5", "1.80"
WAIT_S = 900.0


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


@compat_api.errorhandler(ApiError)
@compat_api.errorhandler(HTTPException)
def compat_error(exc):
    status = exc.status if isinstance(exc, ApiError) else (exc.code or 400)
    message = exc.message if isinstance(exc, ApiError) else (exc.description or exc.name)
    if isinstance(exc, RequestEntityTooLarge):
        message = f"the request body is over the limit of {service().limits.max_body_bytes} bytes"
    headers = exc.headers if isinstance(exc, ApiError) else {}
    return jsonify(error_body(request.path, status, message)), status, headers


@compat_api.before_request
def check_key():
    keys = service().api.keys
    if not keys or request.path in OPEN_ROUTES or request.method == "OPTIONS":  # a CORS preflight carries no key
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.strip(), k) for k in keys):
        raise Unauthorized("this endpoint needs an API key: send 'Authorization: Bearer <key>'")


@compat_api.after_request
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
    return replace(svc.worker.pipeline.settings, name="api", num_beams=1, do_sample=temperature > 0,
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


def run_raw(job: RawJob) -> RawJob:
    svc, who = service(), client()
    svc.worker.submit(lambda: job, check=lambda: svc.clients.turns.take(who), client=who)
    return job


def results(job: RawJob) -> list:
    if not job.finished.wait(WAIT_S):
        raise Unavailable("the model did not answer in time; try again later")
    failed = next((r for r in job.results if isinstance(r, TurnFailure)), None)
    if failed is not None:
        raise Unavailable(f"{without_paths(failed.reason)}; try again later")
    return job.results


def stream_of(job: RawJob):
    """(kind, text) events of the job's first row as it is written, then ("end", "")."""
    hub, after = service().worker.hub, 0
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        events, finished = hub.wait(job.id, after, 15.0)
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


# ---- OpenAI ---------------------------------------------------------------------------------------------------------

@compat_api.get("/v1/models")
def models():
    names = [service().choice.name]
    return jsonify({"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "gamio"}
                                               for n in names]})


def chat_prompt(messages) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content}")
    world, turns = [], ""
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                             and isinstance(p.get("text"), str) for p in content):
            content = "".join(p["text"] for p in content)  # the newer form: a list of text parts
        if not isinstance(content, str) or m.get("role") not in ("system", "developer", "user", "assistant"):
            raise BadRequest(f"messages[{i}] must be {{role: system|user|assistant, content: string or text parts}}")
        if m["role"] in ("system", "developer"):
            world.append(content.strip())
        elif m["role"] == "user":
            turns += "\n> " + " ".join(content.split()) + "\n"
        else:
            turns += content.strip()
    return "\n\n".join(world) + turns


def openai_call(chat: bool):
    data = request_body()
    n = number(data, "n", 1, 1, service().api.max_n, True)
    if chat:
        prompt = chat_prompt(data.get("messages"))
    else:
        prompt = data.get("prompt", "")
        prompt = prompt[0] if isinstance(prompt, list) and len(prompt) == 1 else prompt
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be a string (token arrays and several prompts are not supported)")
    tokens_key = "max_completion_tokens" if chat and data.get("max_completion_tokens") is not None else "max_tokens"
    settings = settings_of(data, tokens_key=tokens_key, tokens_default=16 if not chat else 256,
                           rep_key="repetition_penalty", stop_key="stop")
    if chat:  # the reply ends where the model starts writing the player's next move
        settings = replace(settings, stop_strings=[*settings.stop_strings, "\n>"])
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    job = run_raw(RawJob(prompt, settings, n))
    ident, created, model = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12), int(time.time()), \
        service().choice.name
    kind = "chat.completion" if chat else "text_completion"
    if stream:
        return Response(stream_with_context(openai_chunks(job, ident, created, model, chat, settings)),
                        mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
    outs = results(job)
    choices = [({"index": i, "message": {"role": "assistant", "content": r.result}} if chat else
                {"index": i, "text": r.result, "logprobs": None}) | {"finish_reason": finish_reason(r, settings)}
               for i, r in enumerate(outs)]
    usage = {"prompt_tokens": outs[0].prompt_tokens, "completion_tokens": sum(r.new_tokens for r in outs)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return jsonify({"id": ident, "object": kind, "created": created, "model": model, "choices": choices,
                    "usage": usage})


def openai_chunks(job, ident, created, model, chat, settings):
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(index, text, reason=None, role=False):
        choice = {"index": index, "finish_reason": reason}
        choice.update({"delta": ({"role": "assistant"} if role else {}) | ({"content": text} if text else {})}
                      if chat else {"text": text, "logprobs": None})
        return f"data: {json.dumps({'id': ident, 'object': kind, 'created': created, 'model': model, 'choices': [choice]}, ensure_ascii=False)}\n\n"

    if chat:
        yield chunk(0, "", role=True)
    shown = ""
    for event, text in stream_of(job):
        if event == "token":
            shown += text
            yield chunk(0, text)
        elif event == "reset" and text.startswith(shown):  # a client cannot take text back: only extensions
            yield chunk(0, text[len(shown):])
            shown = text
    outs = job.results if job.finished.wait(WAIT_S) else None
    if not outs or any(isinstance(r, TurnFailure) for r in outs):
        yield f"data: {json.dumps({'error': {'message': 'generation failed', 'type': 'server_error'}})}\n\n"
    else:
        if outs[0].result.startswith(shown) and len(outs[0].result) > len(shown):
            yield chunk(0, outs[0].result[len(shown):])
        for i, r in enumerate(outs):
            if i:
                yield chunk(i, r.result, role=chat)
            yield chunk(i, "", finish_reason(r, settings))
    yield "data: [DONE]\n\n"


@compat_api.post("/v1/completions")
def completions():
    return openai_call(chat=False)


@compat_api.post("/v1/chat/completions")
def chat_completions():
    return openai_call(chat=True)


# ---- Kobold ------------------------------------------------------------------------------------------------------

@compat_api.get("/api/v1/model")
def kobold_model():
    return jsonify({"result": f"gamio/{service().choice.name}"})


@compat_api.get("/api/v1/info/version")
def kobold_version():
    return jsonify({"result": KOBOLD_VERSION})


@compat_api.get("/api/extra/version")
def koboldcpp_version():
    return jsonify({"result": "KoboldCpp", "version": KOBOLDCPP_VERSION, "protected": bool(service().api.keys)})


@compat_api.get("/api/v1/config/max_context_length")
def kobold_max_context():
    return jsonify({"value": service().viewer.engine.context_length})


@compat_api.get("/api/extra/true_max_context_length")
def koboldcpp_max_context():
    return kobold_max_context()


@compat_api.get("/api/v1/config/max_length")
def kobold_max_length():
    return jsonify({"value": service().api.max_tokens})


@compat_api.post("/api/extra/tokencount")
def koboldcpp_tokencount():
    """SillyTavern counts a prompt's tokens here to fill the context exactly."""
    prompt = request_body().get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    ids = encode_text(service().viewer.engine.tokenizer, prompt)
    return jsonify({"value": len(ids), "ids": ids})


def kobold_job() -> tuple[RawJob, object]:
    data = request_body()
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    settings = settings_of(data, tokens_key="max_length", tokens_default=80, rep_key="rep_pen",
                           stop_key="stop_sequence")
    max_context = number(data, "max_context_length", None, 1, 10_000_000, True)
    n = number(data, "n", 1, 1, service().api.max_n, True)
    return run_raw(RawJob(clamp(prompt, max_context, settings.max_new_tokens), settings, n)), settings


@compat_api.post("/api/v1/generate")
def kobold_generate():
    job, settings = kobold_job()
    return jsonify({"results": [{"text": r.result, "finish_reason": finish_reason(r, settings),
                                 "prompt_tokens": r.prompt_tokens, "completion_tokens": r.new_tokens}
                                for r in results(job)]})


@compat_api.post("/api/extra/generate/stream")
def kobold_stream():
    job, settings = kobold_job()

    def message(token: str, reason: str | None = None) -> str:
        return f"event: message\ndata: {json.dumps({'token': token, 'finish_reason': reason}, ensure_ascii=False)}\n\n"

    def events():  # KoboldCpp's shape: tokens with finish_reason null, then an empty token with the reason
        shown = ""
        for event, text in stream_of(job):
            if event == "token" or (event == "reset" and text.startswith(shown)):
                piece = text if event == "token" else text[len(shown):]
                shown += piece
                yield message(piece)
        outs = job.results if job.finished.wait(WAIT_S) else None
        ok = outs and not isinstance(outs[0], TurnFailure)
        rest = outs[0].result[len(shown):] if ok and outs[0].result.startswith(shown) else ""
        if rest:
            yield message(rest)
        yield message("", finish_reason(outs[0], settings) if ok else "error")

    return Response(stream_with_context(events()), mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
