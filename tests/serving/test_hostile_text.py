"""Hostile text in stories and requests (issue 24, low): the Markdown export renders a story's HTML and Markdown as
the text it is, the txt export has no NUL or bidi controls, an action with nothing to read is refused (turns,
edits, imports: nothing stored), token counts, context views and steering PATCHes have their own rate limit, and
the game view names no model while a turn is a blind arena pair."""
from __future__ import annotations

import pytest

from tests.helpers.serving import new_game, wait_done

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)> **жирно** [ссылка](javascript:alert(3)) `код`"
CONTROLS = "\u0000\u202e\u2066\u200f\u061c\u0007"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app("limits.tools_per_minute=4")


def imported(client, turns, **extra):
    export = {"format": "gamio-game", "world": f"# Мир\n{HOSTILE}\n1. пункт{CONTROLS}", "turns": turns, **extra}
    answer = client.post("/api/games/import", json=export)
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    return data["game_id"], {"Authorization": f"Bearer {data['token']}"}


def test_markdown_export_renders_the_story_as_text(app):
    markdown_it = pytest.importorskip("markdown_it")
    client, _ = app
    game_id, auth = imported(client, [{"action": f"> {HOSTILE}", "variants": [{"text": f"{HOSTILE}\n    # код\n- x"}]}])
    text = client.get(f"/api/games/{game_id}/export?format=md", headers=auth).get_data(as_text=True)
    html = markdown_it.MarkdownIt("commonmark").render(text)
    for markup in ("<script", "<img", "<a ", "<code", "<pre", "<ul", "<ol", "<em>"):
        assert markup not in html, (markup, html)
    assert html.count("<h1>") == 1 and html.count("<strong>") == 1  # the title and the action's own bold
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "**жирно**" in html
    assert not any(c in text for c in CONTROLS)


def test_txt_export_has_no_nul_or_bidi_controls(app):
    client, _ = app
    game_id, auth = imported(client, [{"action": f"иду{CONTROLS}", "variants": [{"text": f"Да{CONTROLS}."}]}])
    text = client.get(f"/api/games/{game_id}/export?format=txt", headers=auth).get_data(as_text=True)
    assert not any(c in text for c in CONTROLS) and "> иду" in text and "Да." in text


@pytest.mark.parametrize("action", ["", "  > ", "\u0000", "\u0000\u0000 ", "\u0301\u0301", ">\u0308 \u200f"])
def test_an_action_with_nothing_to_read_is_refused_everywhere(app, action):
    client, service = app
    games = service.store.database.conn.execute("SELECT COUNT(*) FROM games").fetchone()[0]
    refused = client.post("/api/games/import", json={"world": "мир", "turns": [{"action": action,
                                                                                "variants": [{"text": "т"}]}]})
    assert refused.status_code == 400 and "turns[0].'action' is empty" in refused.get_json()["error"]
    assert service.store.database.conn.execute("SELECT COUNT(*) FROM games").fetchone()[0] == games
    game_id, auth = imported(client, [{"action": "иду", "variants": [{"text": "Вы идёте."}]}])
    turn = client.post(f"/api/games/{game_id}/turns", json={"action": action}, headers=auth)
    if not action:  # the empty action continues the story (issue 23: test_moves.py); a move, not a refusal
        assert turn.status_code == 202
        wait_done(client, turn.get_json()["job_id"])
    for answer in ([turn] if action else []) + [client.put(f"/api/games/{game_id}/turns/0", json={"action": action},
                                                           headers=auth)]:
        assert answer.status_code == 400 and "is empty" in answer.get_json()["error"]
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["turns"][0]["action"] == "иду"


def test_token_counts_context_views_and_patches_share_their_own_rate_limit(make_app):
    client, _ = make_app("limits.tools_per_minute=4", "limits.games_per_minute=2")
    game_id, auth, _ = new_game(client)
    asks = [client.get(f"/api/games/{game_id}/context?action=иду", headers=auth),
            client.patch(f"/api/games/{game_id}", json={"memory": "помни"}, headers=auth),
            client.post("/api/extra/tokencount", json={"prompt": "раз два"}),
            client.get(f"/api/games/{game_id}/context", headers=auth)]
    assert [a.status_code for a in asks] == [200] * 4
    for refused in (client.get(f"/api/games/{game_id}/context", headers=auth),
                    client.patch(f"/api/games/{game_id}", json={"memory": "другое"}, headers=auth),
                    client.post("/api/extra/tokencount", json={"prompt": "раз"})):
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.get(f"/api/games/{game_id}", headers=auth).get_json()["memory"] == "помни"
    assert client.post("/api/games", json={}).status_code == 201  # other limits are their own


def test_the_game_view_names_no_model_while_a_turn_is_blind(app):
    client, service = app
    pair = [{"text": "Первый."}, {"text": "Второй."}]
    blind, auth = imported(client, [{"action": "иду", "variants": pair, "arena": "blind"}], arena=True)
    voted, voted_auth = imported(client, [{"action": "иду", "variants": pair, "arena": "voted"}], arena=True)
    assert client.get(f"/api/games/{blind}", headers=auth).get_json()["model"] is None
    assert client.get(f"/api/games/{voted}", headers=voted_auth).get_json()["model"] == service.choice.name
