"""Steering over HTTP (issue 11): every PATCH field stored and shown, every refusal (400 / 413) changing
nothing, the presets route, the context view (memory kept, world info triggered by a word form, the author's
note at its depth, dropped turns), and turns that really use the game's steering and preset."""
from __future__ import annotations

import pytest

from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from tests.helpers.serving import AppFactory, new_game, wait_done

WORLD_INFO = [{"keys": ["кот"], "text": "Кот — хранитель этого дома."},
              {"keys": ["старый замок"], "text": "Замок пуст уже сто лет."},
              {"keys": ["небо"], "text": "Небо всегда серое.", "constant": True}]


@pytest.fixture(scope="module")
def app(tiny_untrained_dir, tmp_path_factory):
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory, ["engine=hf", *ONE_ADDRESS_MANY_PLAYERS])
    yield factory()
    factory.close()


def test_every_field_is_stored_and_shown(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    fields = {"memory": "Вы — рыцарь без коня.", "authors_note": "Пишите мрачно.", "authors_note_depth": 2,
              "world_info": WORLD_INFO, "preset": "gamio_sample", "banned_words": ["дракон"], "stop": ["Конец."]}
    response = client.patch(f"/api/games/{game_id}", json=fields, headers=auth)
    assert response.status_code == 200, response.get_json()
    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    expected = dict(fields, world_info=[dict(e, constant=e.get("constant", False)) for e in WORLD_INFO])
    assert {k: game[k] for k in fields} == expected
    client.patch(f"/api/games/{game_id}", json={"memory": ""}, headers=auth)  # a partial PATCH keeps the rest
    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    assert game["memory"] == "" and game["authors_note"] == "Пишите мрачно." and game["preset"] == "gamio_sample"


@pytest.mark.parametrize("body, status", [
    ({"memory": 5}, 400), ({"authors_note": ["x"]}, 400), ({"authors_note_depth": -1}, 400),
    ({"authors_note_depth": 2.5}, 400), ({"authors_note_depth": 21}, 400), ({"authors_note_depth": "3"}, 400),
    ({"authors_note_depth": True}, 400), ({"world_info": {"keys": ["a"]}}, 400),
    ({"world_info": [{"keys": "кот", "text": "x"}]}, 400), ({"world_info": [{"keys": [5], "text": "x"}]}, 400),
    ({"world_info": [{"keys": ["a"], "text": "x", "constant": "yes"}]}, 400),
    ({"world_info": [{"keys": ["a"], "text": "x", "colour": 1}]}, 400), ({"world_info": [{"keys": [], "text": "x"}]}, 400),
    ({"preset": "nope"}, 400), ({"preset": 3}, 400), ({"banned_words": "дракон"}, 400), ({"stop": [1]}, 400),
    ({"mood": "x"}, 400),
    ({"memory": "я" * 2001}, 413), ({"authors_note": "я" * 501}, 413),
    ({"world_info": [{"keys": ["a"], "text": "я" * 1001}]}, 413),
    ({"world_info": [{"keys": ["a"], "text": "x"}] * 101}, 413), ({"banned_words": ["а"] * 51}, 413),
    ({"stop": ["а"] * 11}, 413),
])
def test_refusals_change_nothing(app, body, status):
    client, _ = app
    game_id, auth, _ = new_game(client)
    client.patch(f"/api/games/{game_id}", json={"memory": "Память.", "world_info": WORLD_INFO[:1]}, headers=auth)
    before = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    response = client.patch(f"/api/games/{game_id}", json=body, headers=auth)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json() == before


def test_patch_needs_the_token_and_json(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    assert client.patch(f"/api/games/{game_id}", json={"memory": "x"}).status_code == 401
    assert client.patch(f"/api/games/{game_id}", data="memory=x", headers=auth,
                        content_type="text/plain").status_code == 415


def test_presets_route_lists_the_allowed_presets(app):
    client, _ = app
    presets = client.get("/api/presets").get_json()
    assert {"gamio", "gamio_sample", "greedy"} <= set(presets)


def test_context_view_shows_the_exact_prompt_and_its_parts(app):
    client, service = app
    game_id, auth, _ = new_game(client, "Вы стоите у ворот.")
    client.patch(f"/api/games/{game_id}", json={"memory": "Вы — рыцарь.", "authors_note": "Мрачно.",
                                                "authors_note_depth": 1, "world_info": WORLD_INFO}, headers=auth)
    store = service.store
    for i in range(3):  # a short history written straight through the store
        job = store.add_job(game_id, "turn", f"ход {i}")
        store.mark_running([job])
        store.complete(job, result=f"Ответ {i}.")
    ctx = client.get(f"/api/games/{game_id}/context", query_string={"action": "глажу котов"}, headers=auth).get_json()
    assert ctx["world_info_triggered"] == [2, 0]  # constant first, then the entry the word form triggered
    kinds = [p["kind"] for p in ctx["parts"] if not p["dropped"]]
    assert kinds == ["memory", "world_info", "world_info", "world", "turn", "turn", "authors_note", "turn", "action"]
    assert ctx["prompt"] == "".join(p["text"] for p in ctx["parts"] if not p["dropped"])
    assert ctx["prompt"].startswith("Вы — рыцарь.\n\n") and ctx["prompt"].endswith("\n> глажу котов\n")
    assert 0 < ctx["tokens_total"] <= ctx["context_limit"] and ctx["turns_dropped"] == 0


def test_context_view_marks_dropped_turns(app):
    client, service = app
    game_id, auth, _ = new_game(client, "Мир.")
    store = service.store
    for i in range(12):
        job = store.add_job(game_id, "turn", f"действие {i} " + "и дальше " * 40)
        store.mark_running([job])
        store.complete(job, result="Длинный ответ о многом. " * 20)
    client.patch(f"/api/games/{game_id}", json={"memory": "Память всегда на месте."}, headers=auth)
    ctx = client.get(f"/api/games/{game_id}/context?action=иду", headers=auth).get_json()
    dropped = [p for p in ctx["parts"] if p["dropped"]]
    assert dropped and all(p["kind"] == "turn" for p in dropped) and ctx["turns_dropped"] >= len(dropped)
    assert ctx["parts"][0]["kind"] == "memory" and not ctx["parts"][0]["dropped"]
    assert ctx["tokens_total"] <= ctx["context_limit"]


def test_memory_that_cannot_fit_the_model_is_refused(app):
    client, _ = app
    game_id, auth, _ = new_game(client)
    long = " ".join(["длинное-предлинное слово"] * 150)[:2000]  # within the 2000-character limit
    response = client.patch(f"/api/games/{game_id}", json={"memory": long}, headers=auth)
    assert response.status_code == 413 and "memory" in response.get_json()["error"]


def test_turns_use_the_games_steering_and_preset(app):
    client, service = app
    game_id, auth, _ = new_game(client, "Лес.")
    client.patch(f"/api/games/{game_id}", json={"memory": "Вы — рыцарь.", "preset": "greedy",
                                                "world_info": WORLD_INFO}, headers=auth)
    prompts, presets = [], []
    pipeline = service.worker.pipeline
    prompt, generate = pipeline.prompt, pipeline.engine.generate
    pipeline.prompt = lambda turn: prompts.append(prompt(turn)) or prompts[-1]
    pipeline.engine.generate = lambda ps, s, **kw: presets.append(s.name) or generate(ps, s, **kw)
    try:
        job = client.post(f"/api/games/{game_id}/turns", json={"action": "вижу кота"}, headers=auth).get_json()
        assert wait_done(client, job["job_id"])["status"] == "done"
    finally:
        del pipeline.prompt, pipeline.engine.generate
    assert prompts[-1].text.startswith("Вы — рыцарь.\n\nНебо всегда серое.\nКот — хранитель этого дома.\n\nЛес.")
    assert presets == ["greedy"]
