"""Russian from end to end, over real HTTP on the default server: every refusal of the game API keeps its English
`error` and adds a stable `code` and a Russian `message` (no English word in it); a missing or revoked share link
and any unknown page URL are a Russian HTML 404 while JSON routes stay JSON; presets have Russian names and
descriptions; the rate limits' and the queue's 429 say what happened and how long to wait."""
from __future__ import annotations

import re

import pytest
import requests

from serving.client import Player
from serving.errors import QueueFull
from serving.limits import RateLimit
from serving.web.errors import http_status
from serving.web.messages import for_player

CYRILLIC, LATIN_WORD = re.compile(r"[а-яё]", re.I), re.compile(r"[A-Za-z]{2,}")


def assert_russian(body: dict, code: str) -> None:
    assert body["code"] == code, body
    assert body["error"] and LATIN_WORD.search(body["error"])  # the English text for API users stays
    assert CYRILLIC.search(body["message"]) and not LATIN_WORD.search(body["message"]), body


@pytest.fixture(scope="module")
def game(default_server):
    player = Player(default_server.url)
    player.new_game("Вы стоите у ворот.")
    return player


@pytest.mark.parametrize("method, path, body, headers, status, code", [
    ("POST", "/turns", {"action": "  > "}, None, 400, "empty_action"),
    ("POST", "/turns", {"action": 5}, None, 400, "wrong_type"),
    ("POST", "/turns", {"action": "иду", "n": 9}, None, 400, "out_of_range"),
    ("POST", "/turns", {"action": "я" * 501}, None, 413, "too_long"),
    ("POST", "/turns", None, None, 400, "bad_json"),
    ("PATCH", "", {"preset": "nope"}, None, 400, "unknown_value"),
    ("PATCH", "", {"colour": "red"}, None, 400, "unknown_field"),
    ("PATCH", "", {"world_info": [{"keys": [], "text": "x"}]}, None, 400, "world_info_needs_key"),
    ("POST", "/undo", None, None, 409, "nothing_to_undo"),
    ("POST", "/redo", None, None, 409, "nothing_to_redo"),
    ("GET", "", None, {"Authorization": "Bearer wrong"}, 403, "wrong_token"),
    ("GET", "", None, {"Authorization": ""}, 401, "token_required"),
    ("PUT", "/turns/7", {"result": "x"}, None, 404, "turn_not_found"),
])
def test_game_api_refusals_carry_a_code_and_a_russian_message(game, method, path, body, headers, status, code):
    response = game._request(method, f"/api/games/{game.game_id}{path}", json=body, headers=dict(headers or {}))
    assert response.status_code == status, response.text
    assert_russian(response.json(), code)


def test_unknown_game_job_and_route_are_json_404s_in_russian(default_server):
    for path, code in (("api/games/nope", "game_not_found"), ("api/jobs/nope", "job_not_found"),
                       ("api/nothing", "not_found")):
        response = requests.get(default_server.url + path, headers={"Authorization": "Bearer x"}, timeout=30)
        assert response.status_code == 404 and response.headers["Content-Type"].startswith("application/json")
        assert_russian(response.json(), code)


def test_missing_share_and_unknown_pages_are_a_russian_html_404(default_server, game):
    share = game._request("POST", f"/api/games/{game.game_id}/share").json()
    assert requests.get(default_server.url + share["url"].lstrip("/"), timeout=30).status_code == 200
    game._request("DELETE", f"/api/games/{game.game_id}/share")
    for path in (share["url"].lstrip("/"), "s/never-shared", "nowhere", "games/1/2"):
        response = requests.get(default_server.url + path, timeout=30)
        assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html"), path
        assert "Страница не найдена" in response.text and 'lang="ru"' in response.text
    shared = requests.get(default_server.url + "api/shared/never-shared", timeout=30)
    assert shared.status_code == 404 and shared.json()["code"] == "share_not_found"


def test_presets_have_russian_names_and_descriptions(default_server):
    presets = requests.get(default_server.url + "api/presets", timeout=30).json()
    assert {"gamio", "gamio_sample", "greedy"} <= set(presets)
    for preset_id, preset in presets.items():
        assert preset["id"] == preset_id
        for text in (preset["name"], preset["description"]):
            assert CYRILLIC.search(text) and "\n" not in text
    assert presets["gamio_sample"]["default"] and presets["gamio_sample"]["streams"]
    assert not presets["gamio"]["streams"]  # ct2 has no per-step beam state: the page says the reply comes whole
    assert presets["greedy"]["deterministic"] and not presets["gamio_sample"]["deterministic"]


def test_429s_say_what_happened_and_how_long_to_wait():
    limit = RateLimit(2, "new games")
    with pytest.raises(Exception) as refused:
        for _ in range(3):
            limit.take("1.2.3.4")
    exc = refused.value
    code, message = for_player(http_status(exc), exc.message, str(exc.retry_after_s))
    assert code == "rate_limited" and "новых игр" in message and "не больше 2 в минуту" in message
    assert f"через {exc.retry_after_s} с" in message and "Очередь" not in message
    full = QueueFull("the queue is full (64 turns waiting); try again later", 7)
    assert for_player(429, full.message, "7") == ("queue_full", "Очередь переполнена: ждут 64 ходов. Попробуйте "
                                                                "снова через 7 с.")
    share = QueueFull("you already have 4 turns waiting or being generated (the limit per client is 4); wait for "
                      "them first", 3)
    code, message = for_player(429, share.message, "3")
    assert code == "too_many_pending" and "через 3 с" in message and not LATIN_WORD.search(message)
