"""The OpenAI-compatible endpoints (SillyTavern, agnai or any OpenAI client): GET /v1/models, POST
/v1/completions, POST /v1/chat/completions (`stream` gives `data: ...` chunks and `data: [DONE]`). Chat messages
become one plain-text prompt in the game's own format, the form the model knows:

    <system messages, one per paragraph>
    > <user message>
    <assistant message>
    > <user message>
                                   <- the model writes the assistant's reply here; it ends before a new "> " line

Keys, CORS, errors and the raw jobs: compat/common.py.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace

from flask import Blueprint, Response, jsonify, stream_with_context

from adventure.turns import TurnFailure
from serving.compat.common import Appended, finish_reason, install, number, request_body, results, run_raw, \
    settings_of, stream_of
from serving.errors import BadRequest
from serving.web.http import service

openai_api = install(Blueprint("openai_api", __name__))

@openai_api.get("/v1/models")
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
    job = run_raw(prompt, settings, n)
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
    sent = Appended()  # a client cannot take text back: only extensions
    for event, text in stream_of(job):
        if event != "end" and (piece := sent.piece(event, text)):
            yield chunk(0, piece)
    outs = service().raw_outcome(job)
    if not outs or any(isinstance(r, TurnFailure) for r in outs):
        yield f"data: {json.dumps({'error': {'message': 'generation failed', 'type': 'server_error'}})}\n\n"
    else:
        if rest := sent.rest(outs[0].result):
            yield chunk(0, rest)
        for i, r in enumerate(outs):
            if i:
                yield chunk(i, r.result, role=chat)
            yield chunk(i, "", finish_reason(r, settings))
    yield "data: [DONE]\n\n"


@openai_api.post("/v1/completions")
def completions():
    return openai_call(chat=False)


@openai_api.post("/v1/chat/completions")
def chat_completions():
    return openai_call(chat=True)
