"""Abuse and fairness per client: rate limits on new games and turns (429 + Retry-After), a client's share of
the queue, the long-poll caps (the excess answered at once, /healthz and the page responsive under 64+ polls),
and who the client is behind a trusted proxy."""
from __future__ import annotations

import ipaddress
import threading
import time

import pytest
import requests

from serving.app import create_app
from serving.config import compose_serving_config
from serving.errors import TooManyRequests
from serving.launch import ServerThread
from serving.limits import LongPolls, RateLimit, client_address
from serving.service import build_service
from tests.helpers.serving import Gate, new_game, wait_done


def from_address(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_game_creation_is_rate_limited_per_client(make_app):
    client, service = make_app("limits.games_per_minute=3")
    statuses = [client.post("/api/games", json={}, **from_address("10.0.0.1")).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]
    count = service.store.database.conn.execute("SELECT COUNT(*) FROM games").fetchone()[0]
    refused = client.post("/api/games", json={}, **from_address("10.0.0.1"))
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 20
    assert "a minute" in refused.get_json()["error"]
    assert service.store.database.conn.execute("SELECT COUNT(*) FROM games").fetchone()[0] == count  # nothing written
    assert client.post("/api/games", json={}, **from_address("10.0.0.2")).status_code == 201  # another client


def test_turns_are_rate_limited_and_a_client_has_a_share_of_the_queue(make_app):
    client, service = make_app("limits.turns_per_minute=4", "limits.max_queued_per_client=2")
    gate = Gate(service.worker)
    a = from_address("10.0.0.1")
    games = [new_game(client) for _ in range(5)]

    def turn(game, who=a):
        game_id, auth, _ = game
        return client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth, **who)

    first, second = turn(games[0]), turn(games[1])
    assert (first.status_code, second.status_code) == (202, 202)
    assert gate.entered.wait(60)
    share = turn(games[2])
    assert share.status_code == 429 and "limit per client is 2" in share.get_json()["error"]
    assert turn(games[3], from_address("10.0.0.2")).status_code == 202  # someone else still gets in
    gate.opened.set()
    for response in (first, second):
        assert wait_done(client, response.get_json()["job_id"])["status"] == "done"
    # 3 turns taken so far by 10.0.0.1 (the share refusal counted too): the 5th in a minute is refused.
    assert turn(games[2]).status_code == 202
    wait_done(client, client.get(f"/api/games/{games[2][0]}", headers=games[2][1]).get_json()["pending_job"])
    limited = turn(games[4])
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_rate_limit_refills_evenly():
    now = [0.0]
    limit = RateLimit(6, "turns", clock=lambda: now[0])  # one every 10 s, a burst of 6
    for _ in range(6):
        limit.take("a")
    with pytest.raises(TooManyRequests) as refused:
        limit.take("a")
    assert refused.value.retry_after_s == 10
    now[0] += 10
    limit.take("a")
    limit.take("b")


def test_long_poll_slots_per_client_and_in_total():
    polls = LongPolls(max_total=3, max_per_client=2)
    with polls.slot("a") as a1, polls.slot("a") as a2, polls.slot("a") as a3:
        assert (a1, a2, a3) == (True, True, False)
        with polls.slot("b") as b1, polls.slot("c") as c1:
            assert (b1, c1) == (True, False)
        assert polls.active == 2
    assert polls.active == 0


def test_client_behind_a_trusted_proxy():
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"  # not a proxy: XFF ignored
    assert client_address("10.0.0.5", "198.51.100.7, 10.0.0.9", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "6.6.6.6, 198.51.100.7", proxies) == "198.51.100.7"  # spoofed first hop
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("127.0.0.1", "1.2.3.4", []) == "127.0.0.1"


def test_long_polls_never_hold_every_thread(tiny_untrained_dir, tmp_path):
    """80 long-polls on a server with 8 request threads: 4 wait (the cap), the rest are answered at once with
    the job's state, and /healthz and the page answer quickly throughout."""
    cfg = compose_serving_config([f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}",
                                  "generation.max_new_tokens=4", "limits.max_long_polls=4",
                                  "limits.max_long_polls_per_client=100", "limits.trusted_proxies=[127.0.0.1]"])
    service = build_service(cfg)
    app = create_app(cfg, service)
    server = ServerThread(app, threads=8)
    gate = Gate(service.worker)
    try:
        game_id, token = service.store.create_game("Мир.")
        job = requests.post(server.url + f"api/games/{game_id}/turns", json={"action": "жду"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        assert gate.entered.wait(60)
        answered: list[tuple[float, str]] = []

        def poll(i: int) -> None:
            started = time.monotonic()
            response = requests.get(server.url + f"api/jobs/{job['job_id']}?wait=20", timeout=60,
                                    headers={"X-Forwarded-For": f"198.51.100.{i % 3}"})
            answered.append((time.monotonic() - started, response.json()["status"]))

        polls = [threading.Thread(target=poll, args=(i,)) for i in range(80)]
        for thread in polls:
            thread.start()
        time.sleep(1.0)
        for path in ("healthz", "", "static/play.js"):
            started = time.monotonic()
            assert requests.get(server.url + path, timeout=10).status_code == 200
            assert time.monotonic() - started < 3, path
        quick = [t for t, status in answered if status == "running"]
        assert len(quick) >= 76 and max(quick) < 10
        health = requests.get(server.url + "healthz", timeout=10).json()
        assert health["long_polls"] == 4
        gate.opened.set()
        for thread in polls:
            thread.join(60)
        assert len(answered) == 80
    finally:
        gate.opened.set()
        server.stop()
        service.close()
