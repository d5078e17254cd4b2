"""Moves over real HTTP on the default server: the empty action continues the story (stored as a continuation,
never as a `> ` line, in prompts and exports), the do / say / story input modes, stopping a queued or running
turn (POST /api/jobs/<id>/cancel), and the reply length (max_new_tokens on a turn and in PATCH, within the
server's limit)."""
from __future__ import annotations

import re

import pytest

from serving.client import Player
from tests.helpers.serving import Gate

WORLD = "Вы стоите у ворот замка. Стража спит."
ACTION_LINE = re.compile(r"^>", re.M)


@pytest.fixture
def player(default_server):
    p = Player(default_server.url)
    p.new_game(WORLD)
    return p


@pytest.fixture
def gate(default_server):
    gate = Gate(default_server.service.worker)
    yield gate
    gate.close()


def turn(player, body: dict) -> dict:
    response = player._request("POST", f"/api/games/{player.game_id}/turns", json=body)
    assert response.status_code == 202, response.text
    job = player.wait_job(response.json()["job_id"])
    assert job["status"] == "done", job
    return job["turn"]


def stored_prompt(default_server, player) -> str:
    return default_server.service.store.game(player.game_id).turns[-1].prompt


def test_the_empty_action_continues_the_story_without_a_fake_action_line(default_server, player):
    turn(player, {"action": "стучу в ворота"})
    cont = turn(player, {"action": ""})
    assert cont["mode"] == "continue" and cont["action"] == ""
    prompt = stored_prompt(default_server, player)
    first = player.game()["turns"][0]
    assert prompt.endswith(first["result"]) and len(ACTION_LINE.findall(prompt)) == 1  # only the real action
    story = player.game()["story"]
    assert [e["kind"] for e in story] == ["world", "action", "result", "result"]
    txt = player._request("GET", f"/api/games/{player.game_id}/export", params={"format": "txt"}).text
    assert ACTION_LINE.findall(txt) == [">"] and "> \n" not in txt and cont["result"] in txt
    again = turn(player, {"action": "   "})  # blank is the same move; a continuation at the very start too
    assert again["mode"] == "continue"
    fresh = Player(default_server.url)
    fresh.new_game(WORLD)
    assert turn(fresh, {"action": ""})["mode"] == "continue"
    assert stored_prompt(default_server, fresh) == WORLD  # the model goes on from the world itself


def test_say_and_story_modes(default_server, player):
    said = turn(player, {"action": "Откройте ворота!", "mode": "say"})
    assert said["mode"] == "say" and said["action"] == "Откройте ворота!"  # stored as sent
    assert stored_prompt(default_server, player).endswith("\n> Вы говорите: «Откройте ворота!»\n")
    told = turn(player, {"action": "Ворота со скрипом открываются.", "mode": "story"})
    assert told["mode"] == "story"
    prompt = stored_prompt(default_server, player)
    assert prompt.endswith("\nВорота со скрипом открываются.") and len(ACTION_LINE.findall(prompt)) == 1
    assert [e["kind"] for e in player.game()["story"]][-2:] == ["narration", "result"]
    done = turn(player, {"action": "иду во двор", "mode": "do"})
    prompt = stored_prompt(default_server, player)  # narration and its continuation joined into the prose
    assert "\nВорота со скрипом открываются. " + told["result"] in prompt or not told["result"]
    assert prompt.endswith("\n> иду во двор\n") and done["mode"] == "do"
    refused = player._request("POST", f"/api/games/{player.game_id}/turns", json={"action": "x", "mode": "sing"})
    assert refused.status_code == 400 and refused.json()["code"] == "unknown_value"


@pytest.fixture
def token_counts(default_server):
    """Per engine call, the lengths each row reached as the engine reported its tokens."""
    engine, calls = default_server.service.worker.pipeline.engine, []
    original = engine.generate

    def counting(prompts, settings, **kwargs):
        progress, seen = kwargs.get("on_progress"), []
        calls.append(seen)

        def spy(row, ids):
            seen.append(len(ids))
            return progress(row, ids)

        return original(prompts, settings, **{**kwargs, "on_progress": spy if progress else None})

    engine.generate = counting
    yield calls
    del engine.generate


def test_cancel_a_queued_and_a_running_turn(default_server, player, gate, token_counts):
    blocker = Player(default_server.url)
    blocker.new_game(WORLD)
    running = blocker.submit("жду")["job_id"]
    assert gate.entered.wait(60)
    queued = player.submit("иду")["job_id"]
    answer = player._request("POST", f"/api/jobs/{queued}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert player.wait_job(queued)["status"] == "cancelled" and player.game()["pending_job"] is None
    events = [e.get("event") for e in player.stream_job(queued) if e.get("event")]
    assert events == ["cancelled"]
    assert player._request("POST", f"/api/jobs/{queued}/cancel").status_code == 409  # over: 409
    assert player._request("POST", "/api/jobs/nope/cancel").status_code == 404
    retaken = player.submit("иду снова")["job_id"]  # the game takes a new turn at once
    assert blocker._request("POST", f"/api/jobs/{running}/cancel").json()["status"] == "cancelled"
    accepted = blocker._request("POST", f"/api/games/{blocker.game_id}/turns", json={"action": "бегу"})
    assert accepted.status_code == 202
    gate.opened.set()
    assert player.wait_job(retaken)["status"] == "done"
    assert blocker.wait_job(accepted.json()["job_id"])["status"] == "done"
    assert [t["action"] for t in blocker.game()["turns"]] == ["бегу"]  # nothing of the cancelled turn stored
    assert blocker.wait_job(running)["status"] == "cancelled"
    assert token_counts[0] == [1]  # the stopped turn's generation ended at its first token (ct2 stops the row)


def test_reply_length_on_a_turn_and_in_patch(default_server, player, gate):
    gate.opened.set()
    turn(player, {"action": "иду", "max_new_tokens": 5})
    assert gate.rows[-1][0].settings.max_new_tokens == 5
    game = player._request("PATCH", f"/api/games/{player.game_id}", json={"max_new_tokens": 12}).json()
    assert game["max_new_tokens"] == 12
    turn(player, {"action": "иду дальше"})
    assert gate.rows[-1][0].settings.max_new_tokens == 12
    limit = default_server.service.max_new_tokens_limit
    for body in ({"action": "x", "max_new_tokens": limit + 1}, {"action": "x", "max_new_tokens": 0}):
        refused = player._request("POST", f"/api/games/{player.game_id}/turns", json=body)
        assert refused.status_code == 400 and refused.json()["code"] == "out_of_range"
    refused = player._request("PATCH", f"/api/games/{player.game_id}", json={"max_new_tokens": limit + 1})
    assert refused.status_code == 400 and player.game()["max_new_tokens"] == 12  # a refused PATCH changes nothing
    reset = player._request("PATCH", f"/api/games/{player.game_id}", json={"max_new_tokens": None}).json()
    assert reset["max_new_tokens"] is None
