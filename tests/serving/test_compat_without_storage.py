"""OpenAI / Kobold requests while the database refuses writes (issue 24): they need no storage, so they are
answered while game turns wait for the database (they hung for up to 15 minutes, each holding a request
thread). The database's refusal is simulated where the worker sees it: its probe write fails."""
from __future__ import annotations

import threading

from tests.helpers.serving import new_game


def answered_within(client, path: str, body: dict, timeout_s: float) -> list:
    """[status, body] of the request, or [] when it was still waiting after `timeout_s` (left to finish)."""
    outcome: list = []

    def ask():
        answer = client.post(path, json=body)
        outcome.extend([answer.status_code, answer.get_json()])

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome


def test_openai_and_kobold_requests_run_while_writes_fail(make_app):
    client, service = make_app()
    database = service.store.database
    game_id, auth, _ = new_game(client)
    database.probe = lambda *args, **kwargs: "database or disk is full"  # what the worker checks before a batch
    try:
        turn = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth)
        assert turn.status_code == 202  # accepted before the fault; it waits for the database
        completion = answered_within(client, "/v1/completions", {"prompt": "Жил-был", "max_tokens": 4}, 60)
        assert completion and completion[0] == 200 and completion[1]["choices"][0]["text"] is not None, completion
        kobold = answered_within(client, "/api/v1/generate", {"prompt": "Жил-был", "max_length": 4}, 60)
        assert kobold and kobold[0] == 200 and "text" in kobold[1]["results"][0], kobold
        assert not service.worker._raw  # no raw job (and no request thread waiting on one) is left behind
        job = client.get(f"/api/jobs/{turn.get_json()['job_id']}").get_json()
        assert job["status"] == "queued"  # the game turn still waits for writes
    finally:
        del database.probe
    job = client.get(f"/api/jobs/{turn.get_json()['job_id']}?wait=30").get_json()
    assert job["status"] == "done"  # and runs as soon as they work again
