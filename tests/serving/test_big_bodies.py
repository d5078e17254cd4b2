"""Large request bodies through a real waitress server (issue 24): an import has its own body limit
(`limits.max_import_bytes`), so whatever gamio exports it imports, exactly; a body over a limit is answered 413
in a form the client can read, also for clients that send the whole body before reading (Python's urllib)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import requests

from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from tests.helpers.serving import live_server

IMPORT_LIMIT = 2**20  # below the bodies of the 413 test, so that waitress itself refuses those (the read-and-drop)


@pytest.fixture(scope="module")
def served(tiny_untrained_dir, tmp_path_factory):
    overrides = [f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path_factory.mktemp('bodies')}",
                 "generation.max_new_tokens=4", f"limits.max_import_bytes={IMPORT_LIMIT}", *ONE_ADDRESS_MANY_PLAYERS]
    with live_server(overrides, threads=8) as running:
        yield running


def played(url: str, turns: int) -> tuple[str, dict]:
    created = requests.post(url + "api/games", json={}, timeout=30).json()
    game_id, auth = created["game_id"], {"Authorization": f"Bearer {created['token']}"}
    for i in range(turns):
        job = requests.post(f"{url}api/games/{game_id}/turns", json={"action": f"иду дальше {i}"}, headers=auth,
                            timeout=30).json()
        assert requests.get(f"{url}api/jobs/{job['job_id']}?wait=30", timeout=60).json()["status"] == "done"
    return game_id, auth


def test_a_long_edited_game_exports_over_the_body_limit_and_round_trips_exactly(served):
    """A 12-turn game with long edited replies exports ~200 KB (over the 64 KiB of other routes): it imports, and
    the copy exports the same JSON (it got 413)."""
    url, service = served
    game_id, auth = played(url, 12)
    for i in range(12):
        for version in range(2):  # two edits per turn: the model's reply and both edits stay as variants
            reply = f"Правка {version} хода {i}: " + "Длинный исправленный ответ рассказчика, «ёлки» — 😀. " * 70
            edited = requests.put(f"{url}api/games/{game_id}/turns/{i}", json={"result": reply}, headers=auth,
                                  timeout=30)
            assert edited.status_code == 200, edited.text
    requests.patch(f"{url}api/games/{game_id}", json={"memory": "Герой — следопыт.", "preset": "greedy"},
                   headers=auth, timeout=30).raise_for_status()
    exported = requests.get(f"{url}api/games/{game_id}/export?format=json", headers=auth, timeout=30)
    body = exported.content
    assert len(body) > 2 * service.limits.max_body_bytes
    imported = requests.post(url + "api/games/import", data=body, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert imported.status_code == 201, imported.text[:300]
    copy = imported.json()
    again = requests.get(f"{url}api/games/{copy['game_id']}/export?format=json",
                         headers={"Authorization": f"Bearer {copy['token']}"}, timeout=30)
    assert again.json() == exported.json() and len(again.json()["turns"]) == 12
    assert [len(t["variants"]) for t in again.json()["turns"]] == [3] * 12


def test_the_import_limit_is_its_own_and_other_routes_keep_theirs(served):
    url, service = served
    padding = {"format": "gamio-game", "world": "мир", "turns": [], "padding": "я" * IMPORT_LIMIT}
    over = requests.post(url + "api/games/import", json=padding, timeout=30)
    assert over.status_code == 413 and "limits.max_import_bytes" in over.json()["error"]
    big_game = requests.post(url + "api/games", json={"world": "мир " * 30_000}, timeout=30)
    assert big_game.status_code == 413 and "limits.max_body_bytes" in big_game.json()["error"]


def urllib_post(url: str, body: bytes) -> tuple[int, dict, dict]:
    """urllib sends the whole body, then reads: (status, headers, JSON body) or a connection error raised."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read())


@pytest.mark.parametrize("path", ["api/games", "api/games/import", "v1/completions"])
@pytest.mark.parametrize("size", [300_000, 3_000_000])
def test_oversized_bodies_get_a_413_the_client_reads(served, path, size):
    """5 of 5 urllib requests with a 300 KB or 3 MB body read a 413 (a 3 MB body got "connection reset by peer"):
    the server reads and drops the refused body before it answers and closes."""
    url, _ = served
    body = json.dumps({"world": "x" * size}).encode()
    for _ in range(5):
        status, headers, answer = urllib_post(url + path, body)
        assert status == 413, answer
        assert "limit" in json.dumps(answer)
        if size > IMPORT_LIMIT:  # refused by waitress before the app: the connection ends after the 413
            assert headers["Connection"] == "close"
    status, headers, _ = urllib_post(url + "api/games", b"{}")  # the server is fine afterwards
    assert status == 201
