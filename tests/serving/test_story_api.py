"""Story editing over HTTP (issue 12): variants (n, retry, choose), edits of any turn, redo, export / import
round trips, read-only sharing, and every refusal (4xx, never 5xx; 409 while a turn is pending)."""
from __future__ import annotations

import json

import pytest

from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from tests.helpers.serving import AppFactory, Gate, new_game, wait_done


@pytest.fixture(scope="module")
def app(tiny_untrained_dir, tmp_path_factory):
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory, ["engine=hf", "generation=gamio_sample",
                                                                 *ONE_ADDRESS_MANY_PLAYERS])
    yield factory()
    factory.close()


def play(client, game_id, auth, action, **extra):
    job = client.post(f"/api/games/{game_id}/turns", json={"action": action, **extra}, headers=auth)
    assert job.status_code == 202, job.get_json()
    done = wait_done(client, job.get_json()["job_id"])
    assert done["status"] == "done", done
    return done


def game_of(client, game_id, auth):
    return client.get(f"/api/games/{game_id}", headers=auth).get_json()


def test_variants_choose_and_retry_keep_every_text(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    turn = play(client, game_id, auth, "иду к реке", n=3)["turn"]
    assert len(turn["variants"]) == 3 and turn["chosen"] == 0 and turn["result"] == turn["variants"][0]
    chosen = client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 2}, headers=auth)
    assert chosen.status_code == 200 and chosen.get_json()["turns"][0]["result"] == turn["variants"][2]
    retry = client.post(f"/api/games/{game_id}/retry", headers=auth).get_json()
    after = wait_done(client, retry["job_id"])["turn"]
    assert after["variants"][:3] == turn["variants"] and len(after["variants"]) == 4 and after["chosen"] == 3
    assert game_of(client, game_id, auth)["story"][-1]["text"] == after["variants"][3]


def test_edits_undo_and_redo(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    play(client, game_id, auth, "первый ход")
    second = play(client, game_id, auth, "второй ход")["turn"]
    edited = client.put(f"/api/games/{game_id}/turns/0", json={"action": "исправленный ход",
                                                               "result": "Исправленный ответ."}, headers=auth)
    assert edited.status_code == 200
    first = edited.get_json()["turns"][0]
    assert (first["action"], first["result"]) == ("исправленный ход", "Исправленный ответ.")
    assert len(first["variants"]) == 2 and first["variants"][-1] == "Исправленный ответ."  # the model's text stays
    assert client.post(f"/api/games/{game_id}/redo", headers=auth).status_code == 409  # nothing undone yet
    assert client.post(f"/api/games/{game_id}/undo", headers=auth).get_json()["can_redo"] is True
    redone = client.post(f"/api/games/{game_id}/redo", headers=auth).get_json()
    assert redone["turns"][1]["result"] == second["result"] and len(redone["turns"]) == 2
    client.post(f"/api/games/{game_id}/undo", headers=auth)
    play(client, game_id, auth, "новый ход")  # a new turn clears what redo kept
    assert game_of(client, game_id, auth)["can_redo"] is False
    assert client.post(f"/api/games/{game_id}/redo", headers=auth).status_code == 409


def test_export_import_round_trip_and_text_formats(app):
    client, _ = app
    game_id, auth, _ = new_game(client, "Мир у моря.")
    client.patch(f"/api/games/{game_id}", json={"memory": "Вы — моряк.", "preset": "greedy",
                                                "world_info": [{"keys": ["море"], "text": "Море холодное."}]},
                 headers=auth)
    play(client, game_id, auth, "плыву", n=2)
    client.post(f"/api/games/{game_id}/turns/0/choose", json={"variant": 1}, headers=auth)
    play(client, game_id, auth, "> ныряю\nвглубь")
    exported = client.get(f"/api/games/{game_id}/export?format=json", headers=auth).get_json()
    imported = client.post("/api/games/import", json=exported)
    assert imported.status_code == 201
    new = imported.get_json()
    again = client.get(f"/api/games/{new['game_id']}/export?format=json",
                       headers={"Authorization": f"Bearer {new['token']}"}).get_json()
    assert again == exported and again["turns"][0]["chosen"] == 1 and again["steering"]["memory"] == "Вы — моряк."
    text = client.get(f"/api/games/{game_id}/export?format=txt", headers=auth).get_data(as_text=True)
    assert text.startswith("Мир у моря.\n> плыву\n")
    assert [line for line in text.split("\n") if line.startswith(">")] == ["> плыву", "> ныряю вглубь"]
    md = client.get(f"/api/games/{game_id}/export?format=md", headers=auth)
    assert md.mimetype == "text/markdown" and "> **плыву**" in md.get_data(as_text=True)
    assert client.get(f"/api/games/{game_id}/export?format=pdf", headers=auth).status_code == 400
    assert client.get(f"/api/games/{game_id}/export").status_code == 401


def test_sharing_is_read_only_and_revocable(app):
    client, _ = app
    game_id, auth, _ = new_game(client, "Общий мир.")
    play(client, game_id, auth, "смотрю")
    shared = client.post(f"/api/games/{game_id}/share", headers=auth).get_json()
    assert shared["url"] == f"/s/{shared['share_id']}"
    view = client.get(f"/api/shared/{shared['share_id']}").get_json()
    assert view["world"] == "Общий мир." and view["story"][1]["text"] == "смотрю" and "token" not in json.dumps(view)
    assert client.get(shared["url"]).status_code == 200
    as_token = {"Authorization": f"Bearer {shared['share_id']}"}  # a share id never opens the game for writing
    assert client.post(f"/api/games/{game_id}/turns", json={"action": "x"}, headers=as_token).status_code == 403
    assert client.patch(f"/api/games/{game_id}", json={"memory": "x"}, headers=as_token).status_code == 403
    assert client.delete(f"/api/games/{game_id}/share", headers=auth).status_code == 200
    assert client.get(f"/api/shared/{shared['share_id']}").status_code == 404
    assert client.get(shared["url"]).status_code == 404


@pytest.mark.parametrize("method, path, body, status", [
    ("post", "/turns", {"action": "иду", "n": 0}, 400), ("post", "/turns", {"action": "иду", "n": 5}, 400),
    ("post", "/turns", {"action": "иду", "n": "2"}, 400), ("post", "/turns", {"action": "иду", "n": 1.5}, 400),
    ("post", "/turns/0/choose", {"variant": 7}, 400), ("post", "/turns/0/choose", {"variant": "0"}, 400),
    ("post", "/turns/0/choose", {}, 400), ("post", "/turns/9/choose", {"variant": 0}, 404),
    ("put", "/turns/9", {"result": "x"}, 404), ("put", "/turns/0", {}, 400), ("put", "/turns/0", {"action": 5}, 400),
    ("put", "/turns/0", {"action": "  "}, 400), ("put", "/turns/0", {"action": "я" * 501}, 413),
    ("put", "/turns/0", {"result": "я" * 4001}, 413),
])
def test_refusals(app, method, path, body, status):
    client, _ = app
    game_id, auth, _ = new_game(client)
    play(client, game_id, auth, "первый ход")
    before = game_of(client, game_id, auth)
    response = getattr(client, method)(f"/api/games/{game_id}{path}", json=body, headers=auth)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]
    assert game_of(client, game_id, auth) == before


@pytest.mark.parametrize("body, status", [
    ({}, 400), ({"world": 5}, 400), ({"world": "w", "turns": {}}, 400), ({"world": "w", "turns": [5]}, 400),
    ({"world": "w", "turns": [{"action": "a", "variants": []}]}, 400),
    ({"world": "w", "turns": [{"action": "a", "variants": [{"text": "r"}], "chosen": 3}]}, 400),
    ({"world": "w", "steering": {"authors_note_depth": 50}}, 400), ({"world": "w", "preset": "nope"}, 400),
    ({"format": "other", "world": "w"}, 400), ({"world": "я" * 4001}, 413),
])
def test_malformed_imports_are_refused(app, body, status):
    client, _ = app
    response = client.post("/api/games/import", json=body)
    assert response.status_code == status and response.get_json()["error"]
    assert client.post("/api/games/import", data="[1", content_type="application/json").status_code == 400


def test_story_changes_wait_for_a_pending_turn(app):
    client, service = app
    game_id, auth, _ = new_game(client)
    play(client, game_id, auth, "первый ход")
    gate = Gate(service.worker)
    try:
        pending = client.post(f"/api/games/{game_id}/turns", json={"action": "второй"}, headers=auth).get_json()
        assert gate.entered.wait(60)
        for method, path, body in [("post", "/turns/0/choose", {"variant": 0}), ("put", "/turns/0", {"result": "x"}),
                                   ("post", "/redo", None), ("post", "/undo", None)]:
            response = getattr(client, method)(f"/api/games/{game_id}{path}", json=body, headers=auth)
            assert response.status_code == 409, (path, response.get_json())
        steering = client.patch(f"/api/games/{game_id}", json={"memory": "можно"}, headers=auth)
        assert steering.status_code == 200  # steering is not the story: no need to wait
    finally:
        gate.opened.set()
    assert wait_done(client, pending["job_id"])["status"] == "done"
    del service.worker.pipeline.run
