"""Token streaming on the default setup (engine ct2, the default preset, 55 new tokens: what `make demo` serves),
over real HTTP: a game turn, an OpenAI completion and a Kobold generation each arrive in many pieces while they are
written, and the pieces add up to the final text (a game turn's after at most one `reset`, its last event)."""
from __future__ import annotations

import json

import requests

from serving.client import Player, sse_events


def stream_turn(url: str, action: str) -> tuple[list[tuple[str, str]], dict]:
    """(the turn's token/reset events in order, the finished turn) of one turn on a fresh game."""
    player = Player(url)
    player.new_game("Вы стоите у ворот замка. Стража спит, а над башней кружат вороны.")
    job_id = player.submit(action)["job_id"]
    pieces = []
    for event in player.stream_job(job_id):
        if event.get("event") in ("token", "reset"):
            pieces.append((event["event"], json.loads(event["data"])["text"]))
        if event.get("event") in ("done", "failed"):
            assert event["event"] == "done", event
            return pieces, json.loads(event["data"])["turn"]
    raise AssertionError("the stream ended without done")


def test_a_default_turn_arrives_in_many_pieces_that_add_up_to_the_result(default_server):
    health = requests.get(default_server.url + "healthz", timeout=30).json()
    assert health["engine"].startswith("ct2")
    counts = []
    for action in ("открываю ворота", "кричу стражу", "иду к башне", "жду", "стучу", "зову на помощь"):
        if len(counts) == 3:
            break
        pieces, turn = stream_turn(default_server.url, action)
        if not turn["result"]:  # every draw came out empty (the tiny model opened a `> ` line at once): no reply
            assert pieces == []
            continue
        tokens = [text for kind, text in pieces if kind == "token"]
        resets = [i for i, (kind, _) in enumerate(pieces) if kind == "reset"]
        assert resets in ([], [len(pieces) - 1]), pieces  # at most one reset, and only at the end
        shown = pieces[-1][1] if resets else "".join(tokens)
        assert shown == turn["result"]
        counts.append(len(tokens))
    assert len(counts) == 3 and min(counts) >= 5, counts  # word by word, not a sentence or a whole reply at once


def test_openai_and_kobold_streams_arrive_token_by_token(default_server):
    url = default_server.url
    body = {"prompt": "Вы стоите у ворот замка.\n> открываю ворота\n", "max_tokens": 40, "temperature": 0.9,
            "stream": True}
    with requests.post(url + "v1/completions", json=body, stream=True, timeout=120) as response:
        chunks = [e["data"] for e in sse_events(response) if "data" in e]
    assert chunks[-1] == "[DONE]"
    texts = [json.loads(c)["choices"][0]["text"] for c in chunks[:-1]]
    assert sum(1 for t in texts if t) >= 5, texts
    kobold = {"prompt": body["prompt"], "max_length": 40, "temperature": 0.9}
    with requests.post(url + "api/extra/generate/stream", json=kobold, stream=True, timeout=120) as response:
        tokens = [json.loads(e["data"])["token"] for e in sse_events(response) if "data" in e]
    assert sum(1 for t in tokens if t) >= 5, tokens
