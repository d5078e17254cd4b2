"""Behind a trusted reverse proxy every player is a client of its own (issue 24): through a real waitress server
(the one `python -m serving` runs), requests from the proxy with different X-Forwarded-For values get separate
buckets for every per-client limit: new games, turns, the share of the queue, long-polls and streams."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.helpers.serving import Gate, live_server


def player(n: int) -> dict:
    return {"X-Forwarded-For": f"198.51.100.{n}"}


@pytest.fixture(scope="module")
def proxied(tiny_untrained_dir, tmp_path_factory):
    overrides = [f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path_factory.mktemp('proxy')}",
                 "generation.max_new_tokens=4", "limits.trusted_proxies=[127.0.0.1]", "limits.games_per_minute=2",
                 "limits.turns_per_minute=2", "limits.max_queued_per_client=1", "limits.max_long_polls_per_client=1"]
    with live_server(overrides, threads=16) as served:
        yield served


def test_every_limit_has_one_bucket_per_forwarded_client(proxied):
    url, service = proxied
    gate = Gate(service.worker)
    held = []
    try:
        games = {}
        for n in range(6):  # 12 games from 6 players: each gets its own two
            answers = [requests.post(url + "api/games", json={}, headers=player(n), timeout=30) for _ in range(3)]
            assert [a.status_code for a in answers] == [201, 201, 429], n
            games[n] = [(a.json()["game_id"], {"Authorization": f"Bearer {a.json()['token']}", **player(n)})
                        for a in answers[:2]]

        def turn(n: int, which: int):
            game_id, headers = games[n][which]
            return requests.post(url + f"api/games/{game_id}/turns", json={"action": "иду"}, headers=headers,
                                 timeout=30)

        first = turn(0, 0)
        assert first.status_code == 202 and gate.entered.wait(60)  # player 0's turn holds the worker
        share = turn(0, 1)
        assert share.status_code == 429 and "limit per client is 1" in share.json()["error"]
        assert turn(1, 0).status_code == 202  # player 1 has its own share of the queue
        rate = turn(0, 1)  # player 0's third turn in a minute (of 2)
        assert rate.status_code == 429 and "a minute" in rate.json()["error"]
        assert turn(2, 0).status_code == 202  # player 2 has its own bucket of turns

        job = first.json()["job_id"]
        held.append(threading.Thread(target=requests.get, args=(url + f"api/jobs/{job}?wait=30",),
                                     kwargs={"headers": player(0), "timeout": 60}))
        held[-1].start()
        time.sleep(1.0)  # player 0 now holds its one long-poll
        started = time.monotonic()
        assert requests.get(url + f"api/jobs/{job}?wait=5", headers=player(0), timeout=30).json()["status"] == "running"
        assert time.monotonic() - started < 2.5  # over player 0's cap: answered at once
        started = time.monotonic()
        requests.get(url + f"api/jobs/{job}?wait=3", headers=player(3), timeout=30)
        assert time.monotonic() - started >= 2.5  # player 3's poll is held: a slot of its own

        over = requests.get(url + f"api/jobs/{job}/stream", headers=player(0), timeout=30)
        assert over.status_code == 200  # over the cap: the state now, then the end
        with requests.get(url + f"api/jobs/{job}/stream", headers=player(4), stream=True, timeout=(10, 2)) as own:
            with pytest.raises(requests.exceptions.ConnectionError):  # a read timeout: held open, waiting
                for _ in own.iter_lines():
                    pass
    finally:
        gate.close()
        for thread in held:
            thread.join(60)
