"""Several `python -m serving` processes on one PostgreSQL database (a real server, started by the session): a
game created on one is played on the other, a long-poll and a stream on one see a job the other accepted, per-
client limits hold across them, and `kill -9` of one with jobs queued and running loses no accepted job (the
other finishes them once the lease runs out). A database that cannot be reached stops the start with one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest

from adventure.paths import REPO_ROOT
from serving.client import Player
from serving.launch import ServerProcess

pytestmark = pytest.mark.slow


def overrides(model_dir, tmp_path, db_url, *extra):
    return [f"model={model_dir}", f"paths.artifacts={tmp_path}", "port=0", "engine=hf", f"db={db_url}",
            "storage.lease_s=3", *extra]


def test_two_processes_serve_one_game_world(tiny_untrained_dir, postgres_server, tmp_path):
    db = postgres_server.fresh_url()
    limits = ["generation.max_new_tokens=6", "limits.games_per_minute=3", "limits.turns_per_minute=1000"]
    a = ServerProcess(overrides(tiny_untrained_dir, tmp_path, db, *limits), log_path=tmp_path / "a.log")
    b = ServerProcess(overrides(tiny_untrained_dir, tmp_path, db, *limits), log_path=tmp_path / "b.log")
    try:
        on_a = Player(a.url)
        on_a.new_game("Мир у реки.")
        on_b = Player(b.url, game_id=on_a.game_id, token=on_a.token)  # the same game, through the other process
        first = on_b.play("иду к реке")
        assert first["status"] == "done" and first["turn"]["action"] == "иду к реке"
        assert [t["action"] for t in on_a.game()["turns"]] == ["иду к реке"]
        job = on_b.submit("пью воду")["job_id"]  # accepted by b; a long-poll and a stream on a see it end
        assert on_a.wait_job(job, timeout_s=120)["status"] == "done"
        events = list(on_a.stream_job(job, timeout_s=60))
        assert [e.get("event") for e in events if e.get("event")][-2:] == ["reset", "done"]
        final = json.loads(events[-1]["data"])["turn"]
        assert json.loads(events[-2]["data"])["text"] == final["result"] and final["action"] == "пью воду"
        # One client, two processes: 3 new games a minute in all (on_a made one).
        assert Player(b.url).new_game()["game_id"] and Player(a.url).new_game()["game_id"]
        refused = Player(b.url)._request("POST", "/api/games", json={})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert a.process.poll() is None and b.process.poll() is None
    finally:
        a.stop()
        b.stop()


def test_kill_9_mid_turn_loses_no_accepted_job(tiny_untrained_dir, postgres_server, tmp_path):
    db = postgres_server.fresh_url()
    slow = ["generation.max_new_tokens=96", "queue.max_batch=2", "limits.turns_per_minute=1000",
            "limits.games_per_minute=1000", "limits.max_queued_per_client=1000"]
    a = ServerProcess(overrides(tiny_untrained_dir, tmp_path, db, *slow), log_path=tmp_path / "a.log")
    players, jobs = [], []
    try:
        for i in range(10):
            player = Player(a.url)
            player.new_game(f"Мир номер {i}.")
            jobs.append(player.submit(f"иду {i}")["job_id"])
            players.append(player)
        with psycopg.connect(db) as conn:  # wait until a job runs in a, with more still queued
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                running = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running' AND claimed_by LIKE %s",
                                       (f"%:{a.process.pid}:%",)).fetchone()[0]
                queued = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
                if running and queued:
                    break
                time.sleep(0.02)
            assert running and queued, "no moment with jobs both running and queued in the first process"
    finally:
        a.kill()  # SIGKILL mid-turn
    b = ServerProcess(overrides(tiny_untrained_dir, tmp_path, db, *slow), log_path=tmp_path / "b.log")
    try:
        for player, job in zip(players, jobs):
            player.base_url = b.url
            assert player.wait_job(job, timeout_s=240)["status"] == "done"
            assert len(player.game()["turns"]) == 1  # written exactly once
        assert "took over" in (tmp_path / "b.log").read_text(encoding="utf-8")
    finally:
        b.stop()


def test_an_unreachable_database_is_one_error_line(tmp_path):
    url = "postgresql://gamio@127.0.0.1:1/gamio"  # nothing listens on port 1
    result = subprocess.run([sys.executable, "-m", "serving", f"db={url}", "model=tiny-untrained",
                             f"paths.artifacts={tmp_path}"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: db={url}: "), result.stderr
    assert "Traceback" not in result.stderr
