"""The game API in-process (Flask test client) with the untrained tiny model: the flow, every error of the
contract, the one-pending-turn rule, the full queue, a dead worker, a bad job, prompt budget and tokens."""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from adventure.errors import GamioError
from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from adventure.turns import TurnInput, per_item
from serving.model_choice import choose_model
from serving.storage import open_store
from serving.storage.store import token_hash
from tests.helpers.serving import AppFactory, Gate, new_game, poisoned_prompts, wait_done

MAX_NEW = 6


@pytest.fixture(scope="module")
def make_app(tiny_untrained_dir, tmp_path_factory):
    """make_app(*overrides) -> (flask test client, service); every app gets its own artifacts and database."""
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory, ONE_ADDRESS_MANY_PLAYERS, MAX_NEW)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def app(make_app):
    return make_app()


def test_play_retry_undo_flow_keeps_actions_literal(app):
    client, service = app
    game_id, auth, created = new_game(client)
    assert created["story"] == [{"kind": "world", "text": service.default_world}]
    assert len(created["token"]) >= 22  # >= 128 random bits, url-safe

    action = '  <script>alert("x")</script> открываю <|endoftext|> дверь  '
    response = client.post(f"/api/games/{game_id}/turns", json={"action": action}, headers=auth)
    assert response.status_code == 202
    accepted = response.get_json()
    assert accepted["position"] >= 1 and accepted["job_id"]
    job = wait_done(client, accepted["job_id"])
    assert job["status"] == "done", job
    assert job["turn"]["action"] == action  # stored and returned literally, spaces included
    first_result = job["turn"]["result"]
    assert "<|endoftext|>" not in first_result

    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    assert [t["action"] for t in game["turns"]] == [action]
    assert game["story"][1:] == [{"kind": "action", "text": action}, {"kind": "result", "text": first_result}]
    assert game["pending_job"] is None

    retry = client.post(f"/api/games/{game_id}/retry", headers=auth)
    assert retry.status_code == 202
    job = wait_done(client, retry.get_json()["job_id"])
    assert job["status"] == "done" and job["kind"] == "retry" and job["turn"]["index"] == 0
    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    assert len(game["turns"]) == 1 and game["turns"][0]["action"] == action

    undone = client.post(f"/api/games/{game_id}/undo", headers=auth)
    assert undone.status_code == 200 and undone.get_json()["turns"] == []
    assert client.post(f"/api/games/{game_id}/undo", headers=auth).status_code == 409
    assert client.post(f"/api/games/{game_id}/retry", headers=auth).status_code == 409

    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["model"] and health["turns_served"] >= 2
    assert health["mean_batch_size"] >= 1 and health["latency_p95_s"] >= health["latency_p50_s"] >= 0


def test_either_engine_serves_turns(app, make_app):
    """ct2 is the default engine; engine=hf still serves the same API."""
    for (client, _), engine in ((app, "ct2 int8 on cpu"), (make_app("engine=hf"), "hf float32 on cpu")):
        assert client.get("/healthz").get_json()["engine"] == engine
        game_id, auth, _ = new_game(client)
        job = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth).get_json()
        assert wait_done(client, job["job_id"])["status"] == "done"


def test_custom_world_is_kept_literally(app):
    client, _ = app
    world = "Город <b>N</b>.\n\nНочь & туман."
    game_id, auth, created = new_game(client, world)
    assert created["story"][0]["text"] == world
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["world"] == world


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), (b"[1, 2]", 400), (b'"action"', 400), (b"5", 400), (b"", 400), (b"\xff\xfe", 400),
    (b"[" * 5000 + b"]" * 5000, 400), (b"{}", 400), (b'{"action": null}', 400), (b'{"action": 5}', 400),
    (b'{"action": ["go"]}', 400), (b'{"action": "  >  "}', 400),  # "" continues: test_moves.py
    (b'{"action": "\\ud800"}', 400), (json.dumps({"action": "я" * 501}).encode(), 413),
    (json.dumps({"action": "go", "pad": "x" * 70000}).encode(), 413),
])
def test_bad_turn_bodies_get_json_errors(app, body, status):
    client, _ = app
    game_id, auth, _ = new_game(client)
    response = client.post(f"/api/games/{game_id}/turns", data=body, headers=auth, content_type="application/json")
    assert response.status_code == status, response.get_data(as_text=True)
    assert isinstance(response.get_json()["error"], str) and response.get_json()["error"]
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["turns"] == []  # nothing half-done


def test_action_at_the_limit_is_accepted(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    response = client.post(f"/api/games/{game_id}/turns", json={"action": "я" * 500}, headers=auth)
    assert response.status_code == 202
    assert wait_done(client, response.get_json()["job_id"])["status"] == "done"


@pytest.mark.parametrize("body, status", [
    (b"[]", 400), (b"{bad", 400), (b'{"world": 7}', 400), (json.dumps({"world": "м" * 4001}).encode(), 413),
    (json.dumps({"world": "x" * 70000}).encode(), 413),
])
def test_bad_new_game_bodies(app, body, status):
    client, _ = app
    response = client.post("/api/games", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.get_json()["error"]


def test_tokens_unknown_ids_and_routes(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    other_id, other_auth, _ = new_game(client)
    for method, path in [("get", ""), ("post", "/turns"), ("post", "/undo"), ("post", "/retry")]:
        call = getattr(client, method)
        kwargs = {"json": {"action": "иду"}} if path == "/turns" else {}
        missing = call(f"/api/games/{game_id}{path}", **kwargs)
        assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
        assert call(f"/api/games/{game_id}{path}", headers={"Authorization": "Basic abc"}, **kwargs).status_code == 401
        assert call(f"/api/games/{game_id}{path}", headers=other_auth, **kwargs).status_code == 403
        assert call(f"/api/games/{game_id}{path}", headers={"Authorization": "Bearer ой"}, **kwargs).status_code == 403
        unknown = call(f"/api/games/nope{path}", headers=auth, **kwargs)
        assert unknown.status_code == 404 and unknown.get_json()["error"]
    assert client.get("/api/jobs/nope?wait=1").status_code == 404
    assert client.get("/api/nothing").get_json()["error"]
    assert client.get("/api/nothing").status_code == 404
    assert client.delete("/api/games").status_code == 405 and client.delete("/api/games").get_json()["error"]
    assert client.get(f"/api/games/{game_id}", headers=auth).status_code == 200


def test_wait_parameter(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    job_id = client.post(f"/api/games/{game_id}/turns", json={"action": "жду"}, headers=auth).get_json()["job_id"]
    for bad in ("abc", "-1", "nan"):
        response = client.get(f"/api/jobs/{job_id}?wait={bad}")
        assert response.status_code == 400 and "wait" in response.get_json()["error"]
    assert wait_done(client, job_id)["status"] == "done"
    started = time.monotonic()
    assert client.get(f"/api/jobs/{job_id}?wait=1000").get_json()["status"] == "done"  # capped, and done at once
    assert time.monotonic() - started < 5


def test_one_pending_turn_per_game_and_full_queue(make_app):
    client, service = make_app("queue.max_size=2", "queue.max_batch=1")
    gate = Gate(service.worker)
    games = [new_game(client) for _ in range(4)]
    (a, a_auth, _), (b, b_auth, _), (c, c_auth, _), (d, d_auth, _) = games

    first = client.post(f"/api/games/{a}/turns", json={"action": "первый"}, headers=a_auth).get_json()
    assert gate.entered.wait(60)  # the worker holds job A: the queue is empty again
    assert client.get(f"/api/jobs/{first['job_id']}").get_json()["status"] == "running"
    jobs = [client.post(f"/api/games/{g}/turns", json={"action": "ход"}, headers=h) for g, h in ((b, b_auth), (c, c_auth))]
    assert [r.status_code for r in jobs] == [202, 202]
    assert [r.get_json()["position"] for r in jobs] == [1, 2]
    assert client.get(f"/api/jobs/{jobs[1].get_json()['job_id']}").get_json()["position"] == 2

    full = client.post(f"/api/games/{d}/turns", json={"action": "ход"}, headers=d_auth)
    assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1 and full.get_json()["error"]
    assert client.post(f"/api/games/{d}/retry", headers=d_auth).status_code == 409  # no turn: 409 before 429

    for path, kwargs in [("/turns", {"json": {"action": "ещё"}}), ("/undo", {}), ("/retry", {})]:  # 409 before 429
        busy = client.post(f"/api/games/{a}{path}", headers=a_auth, **kwargs)
        assert busy.status_code == 409 and "still being generated" in busy.get_json()["error"]
    assert client.get("/healthz").get_json()["queue_depth"] == 2

    gate.opened.set()
    for job_id in [first["job_id"]] + [r.get_json()["job_id"] for r in jobs]:
        assert wait_done(client, job_id)["status"] == "done"
    assert client.post(f"/api/games/{d}/turns", json={"action": "теперь"}, headers=d_auth).status_code == 202


def test_no_worker_gives_503(make_app):
    client, service = make_app()
    game_id, auth, _ = new_game(client)
    service.worker.stop()
    response = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth)
    assert response.status_code == 503 and response.get_json()["error"]
    assert client.post(f"/api/games/{game_id}/retry", headers=auth).status_code in (409, 503)
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["turns"] == []


def test_worker_survives_a_bad_job(make_app):
    client, service = make_app()
    with poisoned_prompts(service.worker.pipeline):
        gate = Gate(service.worker)
        (a, a_auth, _), (b, b_auth, _), (c, c_auth, _) = [new_game(client) for _ in range(3)]
        first = client.post(f"/api/games/{a}/turns", json={"action": "жду"}, headers=a_auth).get_json()["job_id"]
        assert gate.entered.wait(60)
        bad = client.post(f"/api/games/{b}/turns", json={"action": "пью яд"}, headers=b_auth).get_json()["job_id"]
        good = client.post(f"/api/games/{c}/turns", json={"action": "пью воду"}, headers=c_auth).get_json()["job_id"]
        gate.opened.set()  # the next batch holds the bad job and the good one together
        failed = wait_done(client, bad)
        assert failed["status"] == "failed" and "poisoned prompt" in failed["error"]
        assert wait_done(client, good)["status"] == "done"
        assert wait_done(client, first)["status"] == "done"
        assert client.get(f"/api/games/{b}", headers=b_auth).get_json()["turns"] == []  # a failed job adds no turn
        later = client.post(f"/api/games/{b}/turns", json={"action": "пью чай"}, headers=b_auth).get_json()["job_id"]
        assert wait_done(client, later)["status"] == "done"  # the worker is alive and the game playable
        assert client.get("/healthz").get_json()["jobs_failed"] == 1


def test_per_item_isolates_the_failing_item():
    def step(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    results = per_item(step, ["a", "bad", "c"])
    assert results[0] == "A" and results[2] == "C" and isinstance(results[1], ValueError)


def test_special_tokens_in_player_text_are_plain_text(app):
    _, service = app
    pipeline = service.worker.pipeline
    tokenizer = pipeline.engine.tokenizer
    text = "<|endoftext|>"
    ids = pipeline.prompt(TurnInput(f"мир {text}", ((f"ход {text}", f"ответ {text}"),), f"{text}открываю{text}")).input_ids
    assert tokenizer.eos_token_id not in ids
    assert tokenizer.decode(ids).count(text) == 5  # the characters are there, as ordinary tokens


def test_prompts_never_exceed_the_context(make_app):
    client, service = make_app("limits.max_world_chars=4000")
    pipeline = service.worker.pipeline
    world = ("Огромный мир, полный тайн, дорог и городов. " * 100)[:4000]
    game_id, auth, _ = new_game(client, world)
    store = service.store
    for i in range(12):  # a long history, written straight through the store (no generation needed)
        job_id = store.add_job(game_id, "turn", f"действие номер {i} " + "и ещё " * 80)
        store.mark_running([job_id])
        assert store.complete(job_id, result="Длинный ответ. " * 40)
    turns = store.game(game_id).turns
    history = tuple((t.action, t.result) for t in turns)
    budget = pipeline.engine.context_length - pipeline.settings.max_new_tokens
    for n in (0, 1, 5, 12):
        assert len(pipeline.prompt(TurnInput(world, history[:n], "иду " * 120)).input_ids) <= budget
    job = client.post(f"/api/games/{game_id}/turns", json={"action": "я" * 500}, headers=auth).get_json()["job_id"]
    assert wait_done(client, job)["status"] == "done"  # generation past the position table would fail the job


def test_tokens_are_stored_hashed(app):
    client, service = app
    game_id, _, created = new_game(client)
    with sqlite3.connect(service.store.path) as db:
        stored = db.execute("SELECT token_sha256 FROM games WHERE id = ?", (game_id,)).fetchone()[0]
        dump = "\n".join(db.iterdump())
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert stored == token_hash(created["token"]) and created["token"] not in dump
    assert mode == "wal"


def test_recover_requeues_or_fails_stale_jobs(tmp_path):
    store = open_store(tmp_path / "db.sqlite")
    game_a, _ = store.create_game("мир A")
    game_b, _ = store.create_game("мир B")
    queued = store.add_job(game_a, "turn", "иду")
    running = store.add_job(game_b, "turn", "бегу")
    store.mark_running([running])
    store.database.conn.execute("UPDATE games SET version = version + 1 WHERE id = ?", (game_b,))  # changed meanwhile
    store.close()

    store = open_store(tmp_path / "db.sqlite")
    assert store.recover() == [queued]
    assert store.job(queued).status == "queued"
    stale = store.job(running)
    assert stale.status == "failed" and "changed" in stale.error


def test_model_best_uses_the_newest_report(tmp_path):
    with pytest.raises(GamioError, match="run python -m eval first"):
        choose_model("best", "auto", tmp_path)
    for name, spec, language, age in [("old", "tiny", "ru", 100), ("new", "/models/gpt2xl", "en", 0)]:
        folder = tmp_path / "reports" / name
        folder.mkdir(parents=True)
        report = folder / "report.json"
        report.write_text(json.dumps({"recommended": {"name": name, "spec": spec, "language": language}}))
        os.utime(report, (time.time() - age, time.time() - age))
    choice = choose_model("best", "auto", tmp_path)
    assert (choice.spec, choice.language, choice.name) == ("/models/gpt2xl", "en", "new")
    assert choose_model("best", "ru", tmp_path).language == "ru"  # an explicit language wins
    assert choose_model("tiny", "auto", tmp_path).language == "ru"
    (tmp_path / "reports" / "new" / "report.json").write_text("{}")
    with pytest.raises(GamioError, match="no usable recommended model"):
        choose_model("best", "auto", tmp_path)
