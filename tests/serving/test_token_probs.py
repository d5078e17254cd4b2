"""Token probabilities over real HTTP on the default server (engine ct2): every token of a reply with its
probability and the top alternatives, for the sampling and greedy presets; beam search says it has none; the
ct2 numbers agree with transformers' own forward pass of the same model."""
from __future__ import annotations

import pytest

from adventure.engines.hf import HFEngine
from adventure.token_probs import reply_probs
from serving.client import Player


def play(player, action: str) -> dict:
    return player.play(action)["turn"]


def tokens(player, index: int, **params):
    return player._request("GET", f"/api/games/{player.game_id}/turns/{index}/tokens", params=params)


@pytest.mark.parametrize("preset", ["gamio_sample", "greedy"])
def test_every_token_has_its_probability_and_alternatives(default_server, preset):
    player = Player(default_server.url)
    player.new_game("Вы стоите у ворот замка. Стража спит.")
    player._request("PATCH", f"/api/games/{player.game_id}", json={"preset": preset}).raise_for_status()
    turn = play(player, "стучу в ворота")
    body = tokens(player, 0).json()
    assert body["preset"] == preset and body["variant"] == 0
    assert "".join(t["text"] for t in body["tokens"]) == turn["result"] and body["tokens"]
    for token in body["tokens"]:
        assert 0 < token["prob"] <= 1 and len(token["top"]) == 5
        probs = [alt["prob"] for alt in token["top"]]
        assert probs == sorted(probs, reverse=True) and token["prob"] <= probs[0] + 1e-6 and sum(probs) <= 1 + 1e-6
    if preset == "greedy":  # greedy wrote the most likely token (the stored reply lost the line breaks and
        # spaces cleanup trimmed, so a few tokens are measured in a slightly different context)
        firsts = [t["top"][0]["text"] == t["text"] for t in body["tokens"]]
        assert sum(firsts) >= 0.6 * len(firsts), body["tokens"]
    assert len(tokens(player, 0, top=2).json()["tokens"][0]["top"]) == 2
    assert tokens(player, 5).status_code == 404 and tokens(player, 0, variant=3).status_code == 400
    assert tokens(player, 0, top=0).status_code == 400


def test_beam_presets_say_they_have_no_token_probabilities(default_server):
    player = Player(default_server.url)
    player.new_game("Вы стоите у ворот замка.")
    play(player, "стучу")
    player._request("PATCH", f"/api/games/{player.game_id}", json={"preset": "gamio"}).raise_for_status()
    refused = tokens(player, 0)
    assert refused.status_code == 409 and refused.json()["code"] == "token_probs_unavailable"
    assert "лучами" in refused.json()["message"]


def test_ct2_and_transformers_give_the_same_probabilities(default_server, trained_artifacts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = trained_artifacts / "models" / "tiny"
    hf = HFEngine(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))
    ct2 = default_server.service.viewer.engine
    prompt, reply = "Вы стоите у ворот.\n> стучу\n", "Ворота открываются. Во дворе темно."
    a, b = reply_probs(ct2, prompt, reply), reply_probs(hf, prompt, reply)
    assert [t.text for t in a] == [t.text for t in b] and "".join(t.text for t in a) == reply
    assert max(abs(x.prob - y.prob) for x, y in zip(a, b)) < 0.05  # int8 against float32
    for odd in ("Дракон 🐉 спит.", "не\ufffdном", "\ufffd\ufffdа"):  # characters split across tokens, and the
        assert "".join(t.text for t in reply_probs(ct2, prompt, odd)) == odd  # replacement character itself
    continued = reply_probs(hf, "Вы стоите у ворот.", "Ворота открываются.")
    assert "".join(t.text for t in continued) == " Ворота открываются."  # a continuation's joining space
