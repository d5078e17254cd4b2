"""method=dpo end to end: a real server with an arena of two tiny models, players voting over HTTP with a consistent
preference, DPO of the SFT model on those votes (held-out games), and eval comparing the result with its parent."""
from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
import requests
from tests.helpers.serving import live_server
from tests.helpers.training import compose_training, evaluate_models, read_metrics, run_training

from adventure.errors import GamioError
from adventure.models import resolve_model_spec
from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from training.train import train

GAMES, TURNS = 8, 3
ACTIONS = ("осмотреться", "идти на север", "открыть дверь")
FAST = ("dpo.max_length=128", "dpo.batch_size=4")


def play_and_vote(url: str, db, prefer: str) -> None:
    """Arena games over HTTP; the player always votes for `prefer`'s reply (the names are hidden from the page, so
    the test reads which model wrote which variant from the database, as a player with a taste would tell)."""
    for _ in range(GAMES):
        game = requests.post(url + "api/games", json={"arena": True}, timeout=60).json()
        auth = {"Authorization": f"Bearer {game['token']}"}
        for idx, action in enumerate(ACTIONS[:TURNS]):
            job = requests.post(url + f"api/games/{game['game_id']}/turns", json={"action": action}, headers=auth,
                                timeout=60).json()
            for _ in range(60):
                done = requests.get(url + f"api/jobs/{job['job_id']}?wait=10", headers=auth, timeout=60).json()
                if done["status"] in ("done", "failed"):
                    break
            assert done["status"] == "done" and len(done["turn"]["variants"]) == 2, done
            with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
                (variants,) = connection.execute("SELECT variants FROM turns WHERE game_id = ? AND idx = ?",
                                                 (game["game_id"], idx)).fetchone()
            choice = [v["model"] for v in json.loads(variants)][:2].index(prefer)
            vote = requests.post(url + f"api/games/{game['game_id']}/turns/{idx}/choose", json={"variant": choice},
                                 headers=auth, timeout=60).json()
            assert vote["vote"] == "ab"[choice]


@pytest.fixture(scope="module")
def arena_votes(trained_artifacts, tmp_path_factory):
    """(artifacts with the SFT model `tiny` and the dataset, the serving database holding GAMES x TURNS votes in
    which players preferred `tiny` over `tiny-untrained`)."""
    artifacts = tmp_path_factory.mktemp("dpo")
    shutil.copytree(trained_artifacts / "models" / "tiny", artifacts / "models" / "tiny")
    shutil.copytree(trained_artifacts / "data", artifacts / "data")
    untrained = resolve_model_spec("tiny-untrained", artifacts).location
    with live_server([f"model={artifacts / 'models' / 'tiny'}", f"paths.artifacts={artifacts}", "engine=hf",
                      "generation=gamio_sample", "generation.max_new_tokens=12", f"arena.models=[{untrained}]",
                      "arena.rate=1", *ONE_ADDRESS_MANY_PLAYERS]) as (url, service):
        db = service.store.path
        play_and_vote(url, db, prefer="tiny")
    return artifacts, db


@pytest.mark.slow
def test_dpo_on_arena_votes_raises_the_heldout_margin_and_eval_compares_it(arena_votes):
    artifacts, db = arena_votes
    sft = artifacts / "models" / "tiny"
    parent_weights = (sft / "model.safetensors").read_bytes()
    run_training(artifacts, "method=dpo", f"preferences={db}", f"model.path={sft}", *FAST, timeout=900)
    out = artifacts / "models" / "tiny-dpo"
    metrics = read_metrics(out)
    assert metrics["votes_used"] == GAMES * TURNS == metrics["votes_train"] + metrics["votes_heldout"]
    assert metrics["games_heldout"] >= 1 and metrics["games_train"] + metrics["games_heldout"] == GAMES
    # The SFT model's own margin first, then DPO's: the chosen-minus-rejected log-likelihood rises on held-out games.
    assert metrics["heldout_logp_margin_end"] > metrics["heldout_logp_margin_start"]
    assert (metrics["heldout_reward_accuracy_start"], metrics["heldout_reward_margin_start"]) == (0.0, 0.0)
    assert metrics["heldout_reward_margin_end"] > 0 and metrics["heldout_reward_accuracy_end"] > 0.5
    assert [step["stage"] for step in metrics["lineage"]] == ["base", "sft", "dpo"]
    assert metrics["eval_loss_history"][0]["step"] == 0 and len(metrics["train_loss_history"]) >= 1
    card = (out / "MODEL_CARD.md").read_text()
    assert "sft: `tiny` -> dpo: `tiny-dpo` (24 votes)" in card and str(artifacts) not in card
    assert (sft / "model.safetensors").read_bytes() == parent_weights  # the SFT parent is kept as it was

    report = evaluate_models(artifacts, "dpo", "models=auto")
    assert {"tiny", "tiny-dpo"} <= set(report["model_order"])
    assert report["results"]["test"]["tiny-dpo"]["bits_per_char"] > 0


@pytest.mark.parametrize("overrides, message", [
    (("dpo.min_votes=1000",), r"24 usable vote\(s\) for model 'tiny'.*dpo.min_votes=1000"),
    (("dpo.model_name=rugpt3small",), r"24 of 24 votes are between other models \(tiny vs tiny-untrained\), not "
                                      r"the SFT model 'rugpt3small'"),
    (("dpo.model_name=rugpt3small", "dpo.foreign_votes=skip"), r"0 usable vote\(s\) for model 'rugpt3small'"),
    (("model.path=null",), "method=dpo needs model.path="),
])
def test_bad_preference_input_is_refused_before_anything_is_written(arena_votes, overrides, message, tmp_path):
    artifacts, db = arena_votes
    cfg = compose_training(tmp_path, "method=dpo", f"preferences={db}", f"model.path={artifacts / 'models' / 'tiny'}",
                           *overrides)
    with pytest.raises(GamioError, match=message):
        train(cfg)
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()


def test_missing_or_foreign_preference_files_are_named(tmp_path, arena_votes):
    artifacts, _ = arena_votes
    (tmp_path / "notes.txt").write_text("not a database")
    for source, message in ((tmp_path / "nothing.db", "no such file"), (tmp_path / "notes.txt", "not a readable")):
        cfg = compose_training(tmp_path, "method=dpo", f"preferences={source}",
                               f"model.path={artifacts / 'models' / 'tiny'}")
        with pytest.raises(GamioError, match=message):
            train(cfg)
