"""The blind model arena end to end (issue 12): a server with a second model, arena games getting two blind
variants from two models, a vote revealing the names and stored in the database, `python -m eval` counting the
votes into the report; and a kill -9 that loses no chosen variant, edit or vote."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import requests

from adventure.paths import REPO_ROOT
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess
from serving.client import Player
from tests.helpers.serving import AppFactory, new_game, wait_done


@pytest.fixture(scope="module")
def second_model(tiny_untrained_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("arena") / "tiny-b"
    shutil.copytree(tiny_untrained_dir, folder)
    return folder


@pytest.fixture(scope="module")
def arena(tiny_untrained_dir, second_model, tmp_path_factory):
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory, ["engine=hf", "generation=gamio_sample",
                                                                 f"arena.models=[{second_model}]", "arena.rate=1",
                                                                 *ONE_ADDRESS_MANY_PLAYERS])
    yield factory()
    factory.close()


def test_arena_turns_are_blind_until_the_vote(arena):
    client, service = arena
    assert sorted(service.worker.names.values()) == ["tiny-b", "tiny-untrained"]
    game_id, auth, _ = new_game(client)
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["arena"] is False  # not asked: no arena
    created = client.post("/api/games", json={"arena": True}).get_json()
    game_id, auth = created["game_id"], {"Authorization": f"Bearer {created['token']}"}
    job = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth).get_json()
    turn = wait_done(client, job["job_id"])["turn"]
    assert turn["arena"] is True and turn["voted"] is False and len(turn["variants"]) == 2
    assert "models" not in turn and "models" not in client.get(f"/api/games/{game_id}", headers=auth).get_json()[
        "turns"][0]
    voted = client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 1}, headers=auth).get_json()
    assert sorted(voted["models"]) == ["tiny-b", "tiny-untrained"] and voted["vote"] == "b"
    assert voted["turns"][0]["models"] == voted["models"] and voted["turns"][0]["voted"] is True
    again = client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 0}, headers=auth).get_json()
    assert "vote" not in again  # a later choice is not a second vote
    votes = service.store.database.conn.execute("SELECT model_a, model_b, choice, text_b FROM votes").fetchall()
    assert [tuple(v) for v in votes] == [(voted["models"][0], voted["models"][1], "b", turn["variants"][1])]


def arena_game(client):
    created = client.post("/api/games", json={"arena": True}).get_json()
    game_id, auth = created["game_id"], {"Authorization": f"Bearer {created['token']}"}
    job = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth).get_json()
    wait_done(client, job["job_id"])
    return game_id, auth, job["job_id"]


def votes_of(service) -> int:
    return service.store.database.conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]


def test_no_route_reveals_an_unvoted_arena_turn(arena):
    """Exports (json, txt, md), the share page and its JSON, the game, the job, its stream and the context view:
    none names the arena's models or maps a variant to one before the vote (issue 24)."""
    client, service = arena
    game_id, auth, job_id = arena_game(client)
    share = client.post(f"/api/games/{game_id}/share", headers=auth).get_json()
    names = sorted(service.worker.names.values())
    anywhere = [client.get(f"/api/games/{game_id}/export?format={kind}", headers=auth) for kind in ("json", "txt", "md")]
    anywhere += [client.get(f"/api/shared/{share['share_id']}"), client.get(share["url"])]
    owner_views = [client.get(f"/api/games/{game_id}", headers=auth), client.get(f"/api/jobs/{job_id}"),
                   client.get(f"/api/jobs/{job_id}/stream"), client.get(f"/api/games/{game_id}/context?action=x",
                                                                       headers=auth)]
    for response in anywhere + owner_views:
        assert response.status_code == 200
        seen = response.get_data(as_text=True) + str(response.headers)
        assert '"models"' not in seen and "tiny-b" not in seen, response.request.path
    for response in anywhere:  # not even the main model: a voted game's share page named one model
        assert not any(name in response.get_data(as_text=True) for name in names), response.request.path
    exported = anywhere[0].get_json()
    assert exported["arena"] is True and exported["turns"][0]["arena"] == "blind"
    assert [v["model"] for v in exported["turns"][0]["variants"]] == [None, None]


def test_arena_state_survives_export_and_import_and_votes_once(arena):
    client, service = arena
    game_id, auth, _ = arena_game(client)
    exported = client.get(f"/api/games/{game_id}/export", headers=auth).get_json()
    copy = client.post("/api/games/import", json=exported).get_json()
    copy_auth = {"Authorization": f"Bearer {copy['token']}"}
    assert copy["arena"] is True and copy["turns"][0]["arena"] is True and copy["turns"][0]["voted"] is False
    assert client.get(f"/api/games/{copy['game_id']}/export", headers=copy_auth).get_json() == exported  # exact
    before = votes_of(service)
    chosen = client.post(f"/api/games/{copy['game_id']}/turns/0/choose", json={"variant": 1},
                         headers=copy_auth).get_json()
    assert "models" not in chosen and "vote" not in chosen and "models" not in chosen["turns"][0]
    assert votes_of(service) == before  # a copy never votes: only the original's owner does
    assert client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 0}).status_code == 401
    assert client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 0},
                       headers=copy_auth).status_code == 403
    assert votes_of(service) == before
    voted = client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 0}, headers=auth).get_json()
    assert voted["vote"] == "a" and votes_of(service) == before + 1
    for variant in (1, 0):
        again = client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": variant}, headers=auth)
        assert "vote" not in again.get_json()
    assert votes_of(service) == before + 1  # one vote per turn
    after = client.get(f"/api/games/{game_id}/export", headers=auth).get_json()
    assert after["turns"][0]["arena"] == "voted"
    assert [v["model"] for v in after["turns"][0]["variants"]] == voted["models"]
    revealed = client.post("/api/games/import", json=after).get_json()
    assert revealed["turns"][0]["voted"] is True and revealed["turns"][0]["models"] == voted["models"]


@pytest.mark.slow
def test_votes_reach_the_eval_report(arena, trained_artifacts, tmp_path):
    client, service = arena
    for _ in range(3):
        created = client.post("/api/games", json={"arena": True}).get_json()
        game_id, auth = created["game_id"], {"Authorization": f"Bearer {created['token']}"}
        job = client.post(f"/api/games/{game_id}/turns", json={"action": "смотрю"}, headers=auth).get_json()
        wait_done(client, job["job_id"])
        client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 0}, headers=auth)
    service.store.database.checkpoint()
    db = service.store.path
    done = subprocess.run([sys.executable, "-m", "eval", f"paths.artifacts={trained_artifacts}", "models=[tiny]",
                           "report_name=arena", f"preferences={db}", "max_samples.test=4", "playthrough.size=3",
                           "extra_generation=[]", "samples_in_report=1"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = trained_artifacts / "reports" / "arena"
    prefs = json.loads((folder / "report.json").read_text(encoding="utf-8"))["preferences"]
    votes = service.store.database.conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    assert prefs["votes"] == votes >= 3
    models = prefs["models"]
    assert set(models) == {"tiny-b", "tiny-untrained"}
    assert sum(m["wins"] for m in models.values()) == votes
    assert all(m["comparisons"] == votes and m["ci95"][0] <= m["win_rate"] <= m["ci95"][1] for m in models.values())
    assert "## Player preferences" in (folder / "report.md").read_text(encoding="utf-8")
    from datasets import load_from_disk

    dataset = load_from_disk(str(folder / "preferences"))
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"] and len(dataset) == votes
    assert all(row["prompt"] for row in dataset)


@pytest.mark.slow
def test_kill_9_loses_no_choice_edit_or_vote(tiny_untrained_dir, second_model, tmp_path):
    overrides = [f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}", "port=0", "engine=hf",
                 "generation.max_new_tokens=8", f"arena.models=[{second_model}]", "arena.rate=1",
                 *ONE_ADDRESS_MANY_PLAYERS]
    server = ServerProcess(overrides, log_path=tmp_path / "server.log")
    player = Player(server.url)
    created = player._request("POST", "/api/games", json={"arena": True}).json()
    player.game_id, player.token = created["game_id"], created["token"]
    assert player.play("первый ход")["status"] == "done"
    vote = player._request("POST", f"/api/games/{player.game_id}/turns/0/choose", json={"variant": 1}).json()
    player._request("PUT", f"/api/games/{player.game_id}/turns/0", json={"action": "исправлено"}).raise_for_status()
    before = player.game()
    server.kill()  # right after the answers: nothing may be only in memory

    server = ServerProcess(overrides, log_path=tmp_path / "server.log")
    try:
        player.base_url = server.url
        after = player.game()
        assert after["turns"] == before["turns"]
        assert after["turns"][0]["chosen"] == 1 and after["turns"][0]["action"] == "исправлено"
        assert after["turns"][0]["models"] == vote["models"]
        assert requests.get(server.url + "healthz", timeout=30).json()["status"] == "ok"
    finally:
        server.stop()
