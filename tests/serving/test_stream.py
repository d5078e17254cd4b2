"""The SSE stream of a game turn over real HTTP (waitress in this process): replaying the events gives the final
turn.result exactly for the seed's beam sampling (engine=hf: what all live beams agree on), plain sampling and
greedy decoding, and for an English model behind the tiny translators; the reply grows token by token while it is
written;
queue positions, heartbeats, disconnects, reconnects (Last-Event-ID or fresh) and the long-poll cap."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from serving.web import stream as api_stream
from serving.client import Player
from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from tests.helpers.models import install_tiny_marians
from tests.helpers.serving import Gate, live_server
from tests.helpers.streaming import scripted

# The model invents a `> action` after its reply: cleanup cuts it, and the stream must never have shown it.
SCRIPT_RU = "Ворота открываются. Во дворе темно, «где-то» лает собака! Вы слышите шаги...\n> иду на звук\nТишина."
SCRIPT_EN = "The gate opens. The yard is dark, and a dog barks. You hear steps!\n> follow them\nSilence."


@pytest.fixture(scope="module")
def server(trained_artifacts, tmp_path_factory):
    """engine=hf: its beam search reports what every live beam agrees on (ct2's beam rows come at the end)."""
    with live_server([f"model={trained_artifacts / 'models' / 'tiny'}", "engine=hf", "engine.threads=1",
                      f"paths.artifacts={tmp_path_factory.mktemp('stream')}", "generation.max_new_tokens=24",
                      *ONE_ADDRESS_MANY_PLAYERS]) as running:
        yield running


@pytest.fixture
def gate(server):
    gate = Gate(server[1].worker)
    yield gate
    gate.close()


def player(url: str, world: str = "Вы стоите у ворот замка. Стража спит.", preset: str | None = None) -> Player:
    p = Player(url)
    p.new_game(world)
    if preset:
        p._request("PATCH", f"/api/games/{p.game_id}", json={"preset": preset}).raise_for_status()
    return p


def read(events, until=("done", "failed")) -> list[dict]:
    """Events up to and including the first of `until` (data parsed, "at": when it arrived; the stream's opening
    `retry:` left out)."""
    out = []
    for event in events:
        if set(event) == {"retry"}:
            continue
        event = {**event, "at": time.monotonic()}
        if "data" in event:
            event["data"] = json.loads(event["data"])
        out.append(event)
        if event.get("event") in until:
            break
    return out


def replay(events: list[dict], text: str = "") -> str:
    for event in events:
        if event.get("event") == "token":
            text += event["data"]["text"]
        elif event.get("event") == "reset":
            text = event["data"]["text"]
    return text


def kinds(events: list[dict]) -> list[str]:
    return [e["event"] for e in events if "event" in e]


@pytest.mark.parametrize("preset", ["gamio", "gamio_sample", "greedy"])
def test_replay_equals_the_final_result(server, preset):
    url, _ = server
    p = player(url, preset=preset)
    for action in ("иду к воротам", "стучу"):
        job_id = p.submit(action)["job_id"]
        events = read(p.stream_job(job_id))
        assert kinds(events)[0] in ("queued", "running") and "running" in kinds(events)
        assert kinds(events)[-1] == "done", events
        final = events[-1]["data"]["turn"]["result"]
        assert replay(events) == final == p.game()["turns"][-1]["result"]
        ids = [int(e["id"]) for e in events if "id" in e]
        assert ids == sorted(set(ids))  # increasing, none twice


def test_the_reply_grows_token_by_token(server):
    url, service = server
    p = player(url)
    with scripted(service.worker.pipeline, SCRIPT_RU):
        job_id = p.submit("жду")["job_id"]
        events = read(p.stream_job(job_id))
    tokens = [e["data"]["text"] for e in events if e.get("event") == "token"]
    assert len(tokens) >= 10 and tokens[0] in "Ворота открываются."  # word by word, not sentence by sentence
    assert "reset" not in kinds(events)  # nothing shown was taken back: the invented action never appeared
    assert replay(events) == events[-1]["data"]["turn"]["result"] == "".join(tokens)
    first_token = next(e["at"] for e in events if e.get("event") == "token")
    assert events[-1]["at"] - first_token > 0.3  # the first sentence came while the rest was still being written


def test_queued_positions_then_running(server, gate, monkeypatch):
    url, service = server
    monkeypatch.setattr(service.worker, "max_batch", 1)  # one job a batch: the waiting job moves up step by step
    players = [player(url, f"Мир {i}.") for i in range(3)]
    first = players[0].submit("жду")["job_id"]
    assert gate.entered.wait(30)
    second, third = (p.submit("жду")["job_id"] for p in players[1:])
    stream = players[2].stream_job(third)
    head = read(stream, until=("queued",))
    assert head[-1]["data"] == {"position": 2}
    gate.opened.set()
    rest = read(stream)
    positions = [e["data"]["position"] for e in rest if e.get("event") == "queued"]
    assert positions == [1] and kinds(rest)[-2:] != ["queued", "done"] and "running" in kinds(rest)
    assert kinds(rest)[-1] == "done" and gate.batches == [1, 1, 1]
    assert all(players[i].wait_job(j)["status"] == "done" for i, j in ((0, first), (1, second)))


def test_heartbeats_while_a_job_waits(server, gate, monkeypatch):
    url, _ = server
    monkeypatch.setattr(api_stream, "HEARTBEAT_S", 0.2)
    blocker, waiting = player(url), player(url)
    blocker.submit("жду")
    assert gate.entered.wait(30)
    job_id = waiting.submit("жду")["job_id"]
    stream, started = waiting.stream_job(job_id), time.monotonic()
    seen = []
    for event in stream:
        seen.append(event)
        if sum("comment" in e for e in seen) >= 3:
            break
    assert [e["comment"] for e in seen if "comment" in e] == ["ping"] * 3 and "queued" in kinds(seen)
    assert time.monotonic() - started < 10  # pings while queued too, not only once the job runs
    gate.opened.set()
    assert kinds(read(stream))[-1] == "done"


def test_a_disconnect_does_not_cancel_the_job(server):
    url, service = server
    p = player(url)
    with scripted(service.worker.pipeline, SCRIPT_RU, delay_s=0.05):
        job_id = p.submit("жду")["job_id"]
        stream = p.stream_job(job_id)
        read(stream, until=("token",))
        stream.close()  # the client goes away in the middle of the reply
        job = p.wait_job(job_id)
    assert job["status"] == "done" and job["turn"]["result"] == p.game()["turns"][-1]["result"]
    deadline = time.monotonic() + 30
    while service.clients.long_polls.active and time.monotonic() < deadline:
        time.sleep(0.1)  # the abandoned stream frees its slot at its next write, at the latest the `done`
    assert service.clients.long_polls.active == 0


def test_reconnects_resume(server):
    url, service = server
    p = player(url)
    with scripted(service.worker.pipeline, SCRIPT_RU):
        job_id = p.submit("жду")["job_id"]
        stream = p.stream_job(job_id)
        before = read(stream, until=("token",))
        stream.close()
        last = int(before[-1]["id"])
        after = read(p.stream_job(job_id, last_event_id=last))
    final = after[-1]["data"]["turn"]["result"]
    assert all(int(e["id"]) > last for e in after if "id" in e)  # nothing seen before is sent again
    assert replay(after, replay(before)) == final
    fresh = read(p.stream_job(job_id))  # a new page after the turn is done: the whole text at once
    assert kinds(fresh) == ["reset", "done"] and fresh[0]["data"]["text"] == final


def test_over_the_long_poll_cap_the_state_comes_at_once(server, gate, monkeypatch):
    url, service = server
    blocker, waiting = player(url), player(url)
    blocker.submit("жду")
    assert gate.entered.wait(30)
    job_id = waiting.submit("жду")["job_id"]
    monkeypatch.setattr(service.clients.long_polls, "max_per_client", 0)
    started = time.monotonic()
    events = read(waiting.stream_job(job_id))  # the stream ends by itself
    assert kinds(events) == ["queued"] and events[0]["data"] == {"position": 1}
    assert time.monotonic() - started < 5
    gate.opened.set()
    job = waiting.wait_job(job_id)
    done = read(waiting.stream_job(job_id))
    assert kinds(done) == ["reset", "done"] and done[0]["data"]["text"] == job["turn"]["result"]


def test_time_to_first_token_is_in_healthz(server):
    health = requests.get(server[0] + "healthz", timeout=30).json()
    assert 0 <= health["time_to_first_token_p50_s"] <= health["time_to_first_token_p95_s"]


# ---- an English model behind the tiny translators ------------------------------------------------------------

@pytest.fixture(scope="module")
def english(trained_artifacts, tmp_path_factory):
    artifacts = install_tiny_marians(tmp_path_factory.mktemp("stream-en"))  # copies of the session's build
    with live_server([f"model={trained_artifacts / 'models' / 'tiny'}", "language=en", "translation=tiny",
                      "translation.num_beams=1", "engine=hf", f"paths.artifacts={artifacts}",
                      "generation.max_new_tokens=24", *ONE_ADDRESS_MANY_PLAYERS]) as running:
        yield running


def test_english_model_streams_translated_sentences(english):
    url, service = english
    p = player(url, "Тёмный лес. Вы стоите у старого дома.")
    job_id = p.submit("открываю дверь")["job_id"]
    events = read(p.stream_job(job_id))
    assert replay(events) == events[-1]["data"]["turn"]["result"] == p.game()["turns"][-1]["result"]
    with scripted(service.worker.pipeline, SCRIPT_EN):
        job_id = p.submit("жду")["job_id"]
        events = read(p.stream_job(job_id))
    turn = events[-1]["data"]["turn"]
    assert turn["result_en"] == "The gate opens. The yard is dark, and a dog barks. You hear steps!"
    tokens = [e for e in events if e.get("event") == "token"]
    assert len(tokens) == 3 and "reset" not in kinds(events)  # each sentence shown, translated, once complete
    assert replay(events) == turn["result"] == p.game()["turns"][-1]["result"]
