"""Client input that used to answer 500 (issue 24): lone surrogate escapes in any text field (PATCH, import,
turns, edits, creation), `preset` of the wrong type, a Unicode digit as the stream's last event id, a turn index
beyond any database integer. Each is a 4xx (or, for the event id, a fresh stream), and a refused request
leaves nothing behind: no game, no change."""
from __future__ import annotations

import json

import pytest

from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from tests.helpers.serving import new_game, wait_done

LONE = "\\ud800"  # JSON's escape of a lone surrogate: valid JSON, not storable text


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(*ONE_ADDRESS_MANY_PLAYERS)


def send(client, method, path, raw: str, **kwargs):
    return client.open(path, method=method, data=raw.encode("utf-8"), content_type="application/json", **kwargs)


def counts(service) -> tuple[int, int, int]:
    conn = service.store.database.conn
    return tuple(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("games", "turns", "jobs"))


def played_game(client):
    game_id, auth, _ = new_game(client)
    job = client.post(f"/api/games/{game_id}/turns", json={"action": "иду"}, headers=auth).get_json()
    assert wait_done(client, job["job_id"])["status"] == "done"
    return game_id, auth, job["job_id"]


PATCHES = ['{"memory": "%s"}', '{"authors_note": "a%sb"}', '{"banned_words": ["%s"]}', '{"stop": ["x%s"]}',
           '{"world_info": [{"keys": ["%s"], "text": "t"}]}', '{"world_info": [{"keys": ["k"], "text": "%s"}]}',
           '{"preset": "%s"}', '{"%s": 1}']


@pytest.mark.parametrize("template", PATCHES)
def test_lone_surrogates_in_a_patch_are_400_and_change_nothing(app, template):
    client, _ = app
    game_id, auth, _ = new_game(client)
    before = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    refused = send(client, "PATCH", f"/api/games/{game_id}", template % LONE, headers=auth)
    assert refused.status_code == 400 and "surrogate" in refused.get_json()["error"]
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json() == before


def test_lone_surrogates_anywhere_in_an_import_store_nothing(app):
    client, service = app
    game_id, auth, _ = played_game(client)
    exported = client.get(f"/api/games/{game_id}/export", headers=auth).get_json()
    raw = json.dumps(exported, ensure_ascii=True)
    places = [("world", json.dumps(exported["world"])), ("action", json.dumps(exported["turns"][0]["action"])),
              ("result", json.dumps(exported["turns"][0]["variants"][0]["text"]))]
    before = counts(service)
    for where, value in places:
        bad = raw.replace(value, value[:-1] + LONE + '"', 1)
        assert bad != raw, where
        refused = send(client, "POST", "/api/games/import", bad)
        assert refused.status_code == 400 and "surrogate" in refused.get_json()["error"], where
    with_memory = dict(exported, steering={"memory": "x"})
    refused = send(client, "POST", "/api/games/import", json.dumps(with_memory).replace('"x"', f'"{LONE}"'))
    assert refused.status_code == 400
    assert counts(service) == before  # no game nobody has the token for


@pytest.mark.parametrize("path,method,template", [
    ("/api/games", "POST", '{"world": "%s"}'),
    ("/api/games/{game}/turns", "POST", '{"action": "иду %s"}'),
    ("/api/games/{game}/turns/0", "PUT", '{"result": "%s"}'),
    ("/api/games/{game}/turns/0", "PUT", '{"action": "%s"}'),
    ("/v1/completions", "POST", '{"prompt": "%s"}'),
    ("/api/v1/generate", "POST", '{"prompt": "a", "stop_sequence": ["%s"]}'),
])
def test_lone_surrogates_in_other_routes_are_4xx_and_leave_nothing(app, path, method, template):
    client, service = app
    game_id, auth, _ = played_game(client)
    before = counts(service), client.get(f"/api/games/{game_id}", headers=auth).get_json()
    refused = send(client, method, path.format(game=game_id), template % LONE, headers=auth)
    assert refused.status_code == 400, refused.get_data(as_text=True)
    assert (counts(service), client.get(f"/api/games/{game_id}", headers=auth).get_json()) == before


@pytest.mark.parametrize("preset", [["greedy"], {"name": "greedy"}, 3, True])
def test_a_preset_of_the_wrong_type_is_400(app, preset):
    client, service = app
    game_id, auth, _ = new_game(client)
    refused = client.patch(f"/api/games/{game_id}", json={"preset": preset}, headers=auth)
    assert refused.status_code == 400 and "'preset' must be one of" in refused.get_json()["error"]
    exported = client.get(f"/api/games/{game_id}/export", headers=auth).get_json()
    before = counts(service)
    assert client.post("/api/games/import", json=dict(exported, preset=preset)).status_code == 400
    assert counts(service) == before


def test_preset_null_goes_back_to_the_default(app):
    client, service = app
    game_id, auth, _ = new_game(client)
    default = client.get(f"/api/games/{game_id}", headers=auth).get_json()["preset"]
    other = next(name for name in sorted(service.presets) if name != default)
    assert client.patch(f"/api/games/{game_id}", json={"preset": other}, headers=auth).get_json()["preset"] == other
    reset = client.patch(f"/api/games/{game_id}", json={"preset": None}, headers=auth)
    assert reset.status_code == 200 and reset.get_json()["preset"] == default
    assert client.get(f"/api/games/{game_id}/export", headers=auth).get_json()["preset"] is None


@pytest.mark.parametrize("last_id", ["²", "١", "12345678901234567890123", "-1", "x"])
def test_a_last_event_id_that_is_not_ascii_digits_starts_a_fresh_stream(app, last_id):
    client, _ = app
    _, _, job_id = played_game(client)
    for how in ({"query_string": {"last_event_id": last_id}}, {"headers": {"Last-Event-ID": last_id}}):
        response = client.get(f"/api/jobs/{job_id}/stream", **how)
        text = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "event: reset" in text and "event: done" in text  # the whole text, as for a fresh connection


@pytest.mark.parametrize("index", [2**31, 2**63 - 1, 2**63, 2**64, 10**40])
def test_a_turn_index_beyond_any_integer_is_404(app, index):
    client, _ = app
    game_id, auth, _ = played_game(client)
    choose = client.post(f"/api/games/{game_id}/turns/{index}/choose", json={"variant": 0}, headers=auth)
    edit = client.put(f"/api/games/{game_id}/turns/{index}", json={"action": "иду"}, headers=auth)
    assert (choose.status_code, edit.status_code) == (404, 404)
    assert f"no turn {index}" in choose.get_json()["error"]


def test_a_turn_holds_at_most_max_variants_and_edits_count_as_turns(make_app):
    """300 edits made one turn of 301 variants (a 2.4 MB game view): the turn stops at its cap, without
    dropping a variant, and edits take from the client's turn rate."""
    client, service = make_app("limits.max_variants_per_turn=3", "limits.turns_per_minute=5")
    game_id, auth, _ = played_game(client)  # turn 1 of 5
    for text in ("правка 1", "правка 2"):  # turns 2, 3
        assert client.put(f"/api/games/{game_id}/turns/0", json={"result": text}, headers=auth).status_code == 200
    full = client.put(f"/api/games/{game_id}/turns/0", json={"result": "правка 3"}, headers=auth)  # turn 4
    assert full.status_code == 413 and "max_variants_per_turn" in full.get_json()["error"]
    assert client.post(f"/api/games/{game_id}/retry", headers=auth).status_code == 413
    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    assert game["turns"][0]["variants"][1:] == ["правка 1", "правка 2"] and game["turns"][0]["chosen"] == 2
    exported = client.get(f"/api/games/{game_id}/export", headers=auth).get_json()
    assert client.post("/api/games/import", json=exported).status_code == 201  # whatever it exports, it imports
    over = dict(exported, turns=[dict(exported["turns"][0], variants=exported["turns"][0]["variants"] * 2)])
    assert client.post("/api/games/import", json=over).status_code == 400
    assert client.put(f"/api/games/{game_id}/turns/0", json={"action": "иду"}, headers=auth).status_code == 200
    limited = client.put(f"/api/games/{game_id}/turns/0", json={"action": "бегу"}, headers=auth)  # the 6th
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
