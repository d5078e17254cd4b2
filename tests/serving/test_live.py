"""The server over real HTTP on 127.0.0.1: 20 concurrent players (waitress in this process), and a crash
(kill -9 of `python -m serving` while jobs are queued) followed by a restart that finishes them."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest
import requests

from adventure.paths import REPO_ROOT
from serving.app import create_app
from serving.client import Player
from serving.config import compose_serving_config
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess, ServerThread

PLAYERS, TURNS = 20, 2


@pytest.mark.slow
def test_twenty_concurrent_players(tiny_untrained_dir, tmp_path):
    cfg = compose_serving_config([f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}",
                                  "generation.max_new_tokens=6", "queue.max_batch=8", *ONE_ADDRESS_MANY_PLAYERS])
    app = create_app(cfg)
    server = ServerThread(app, threads=2 * PLAYERS + 8)
    players = [Player(server.url) for _ in range(PLAYERS)]
    results: dict[int, list[dict]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(PLAYERS)

    def play(index: int) -> None:
        try:
            player = players[index]
            player.new_game(f"Мир игрока {index}.")
            start.wait(60)  # everyone plays at once
            results[index] = [player.play(f"игрок {index} делает ход {turn}", timeout_s=400) for turn in range(TURNS)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(PLAYERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        assert not errors, errors
        for index, player in enumerate(players):
            assert [job["status"] for job in results[index]] == ["done"] * TURNS
            game = player.game()
            assert [t["action"] for t in game["turns"]] == [f"игрок {index} делает ход {t}" for t in range(TURNS)]
            assert all(status < 500 for status in player.statuses), player.statuses
        health = requests.get(server.url + "healthz", timeout=30).json()
        assert health["turns_served"] == PLAYERS * TURNS and health["jobs_failed"] == 0
        assert health["queue_depth"] == 0 and 1 <= health["mean_batch_size"] <= 8
    finally:
        server.stop()
        app.extensions["gamio"].close()


@pytest.mark.slow
def test_restart_after_kill_finishes_accepted_jobs(tiny_untrained_dir, tmp_path):
    # Sequential queue and longer replies, so that jobs are still waiting when the process is killed.
    overrides = [f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}", "port=0", "queue.max_batch=1",
                 "generation.max_new_tokens=24", *ONE_ADDRESS_MANY_PLAYERS]
    log = tmp_path / "server.log"
    server = ServerProcess(overrides, log_path=log)
    players = [Player(server.url) for _ in range(5)]
    jobs = []
    for i, player in enumerate(players):
        player.new_game(f"Мир {i}.")
        jobs.append(player.submit(f"действие {i}")["job_id"])
    server.kill()

    db = tmp_path / "serving" / "gamio.sqlite"
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM jobs").fetchall())
    assert set(statuses) == set(jobs)  # every accepted job was written before its 202
    assert any(statuses[j] in ("queued", "running") for j in jobs), statuses

    server = ServerProcess(overrides, log_path=log)
    try:
        for i, (player, job_id) in enumerate(zip(players, jobs)):
            player.base_url = server.url
            job = player.wait_job(job_id, timeout_s=300)
            assert job["status"] == "done", job
            assert [t["action"] for t in player.game()["turns"]] == [f"действие {i}"]  # exactly once
        assert "recovered" in log.read_text(encoding="utf-8")
    finally:
        server.stop()


def test_model_best_without_report_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "serving", "model=best", f"paths.artifacts={tmp_path}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "run python -m eval first" in result.stderr
