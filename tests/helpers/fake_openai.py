"""A small OpenAI-compatible completions server for the engine=openai tests, with no model: it answers like
`vllm serve` does (GET /v1/models; POST /v1/completions, streamed as server-sent events or not, with stop strings,
max_tokens counted in words, echo + logprobs), and it can misbehave on request: answer slowly, hang, or answer 500.

    python -m tests.helpers.fake_openai --port 0     # prints "listening on http://127.0.0.1:<port>/v1"

`FakeOpenAI` runs it as a subprocess, so a test can kill -9 it mid-turn and start it again on the same port.
POST /control {"delay_s", "hang", "fail": n} changes its behaviour; GET /requests lists the bodies it received.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

import requests

from adventure.paths import REPO_ROOT

MODEL = "fake-tiny"
# What the fake model writes, word by word: a realistic reply (ends sentences, then invents the next action).
REPLY = ("Вы идёте по тропе, и лес смыкается за спиной. Где-то впереди слышен звон колокола. Ветер приносит запах "
         "дыма и мокрой травы, а под ногами хрустят ветки. \n> смотрю вокруг\nНикого.").split(" ")


def create_app():
    from flask import Flask, Response, jsonify, request

    app = Flask("fake_openai")
    state = {"delay_s": 0.0, "hang": False, "fail": 0, "requests": []}
    lock = threading.Lock()

    @app.get("/v1/models")
    def models():
        return jsonify({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    @app.post("/control")
    def control():
        with lock:
            state.update(request.get_json())
        return jsonify({"ok": True})

    @app.get("/requests")
    def received():
        with lock:
            return jsonify(state["requests"])

    @app.post("/v1/completions")
    def completions():
        body = request.get_json()
        with lock:
            state["requests"].append(body)
            if state["fail"] > 0:
                state["fail"] -= 1
                return jsonify({"error": {"message": "overloaded"}}), 500
            delay, hang = float(state["delay_s"]), bool(state["hang"])
        if body.get("model") != MODEL:
            return jsonify({"error": {"message": f"The model `{body.get('model')}` does not exist."}}), 404
        while hang:  # a server that accepted the request and never answers
            time.sleep(0.1)
        if body.get("echo"):
            prompt = body["prompt"]
            return jsonify({"choices": [{"index": 0, "text": "", "logprobs": {
                "token_logprobs": [None] + [-1.0] * (len(prompt) - 1)}}]})
        words = REPLY[: int(body.get("max_tokens", 16))]
        text = " " + " ".join(words)
        stops = [s for s in body.get("stop") or [] if s in text]
        if stops:
            text = text[: min(text.index(s) for s in stops)]
        if not body.get("stream"):
            time.sleep(delay * len(words))
            return jsonify({"id": "cmpl-1", "object": "text_completion", "model": MODEL,
                            "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                            "usage": {"completion_tokens": len(words)}})

        def events():
            for piece in re.findall(r"\s*\S+", text):
                time.sleep(delay)
                yield f"data: {json.dumps({'choices': [{'index': 0, 'text': piece, 'finish_reason': None}]})}\n\n"
            yield "data: [DONE]\n\n"

        return Response(events(), mimetype="text/event-stream")

    return app


class FakeOpenAI:
    """The fake server in a subprocess on 127.0.0.1 (`port=0`: a free one); `.base_url` ends with /v1."""

    def __init__(self, port: int = 0):
        self.start(port)

    def start(self, port: int | None = None) -> None:
        port = self.port if port is None else port
        self.process = subprocess.Popen([sys.executable, "-m", "tests.helpers.fake_openai", "--port", str(port)],
                                        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        line = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, f"the fake server did not start: {line!r}"
        self.base_url = match.group(1)
        self.port = int(self.base_url.rsplit(":", 1)[1].split("/")[0])

    def control(self, **changes) -> None:
        requests.post(self.base_url.removesuffix("/v1") + "/control", json=changes, timeout=10).raise_for_status()

    def received(self) -> list[dict]:
        return requests.get(self.base_url.removesuffix("/v1") + "/requests", timeout=10).json()

    def kill(self) -> None:
        """kill -9: open connections are cut, new ones refused."""
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()


def main() -> None:
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = make_server("127.0.0.1", args.port, create_app(), threaded=True)
    print(f"listening on http://127.0.0.1:{server.server_port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
