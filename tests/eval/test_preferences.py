"""Player preferences from arena votes: Wilson intervals and Bradley-Terry scores on hand-checked cases, the
preference dataset, and `python -m eval preferences=<db>` adding the section (or failing on a missing file)."""
from __future__ import annotations

import math
import sqlite3

import pytest

from eval.preferences import bradley_terry, preference_rows, read_votes, summarize, wilson


def vote(a, b, choice, prompt="p"):
    return {"prompt": prompt, "text_a": f"{a} пишет", "text_b": f"{b} пишет", "model_a": a, "model_b": b,
            "choice": choice, "created": 0.0}


def test_wilson_interval_matches_the_formula():
    assert wilson(0, 0) is None
    low, high = wilson(8, 10)
    assert math.isclose(low, 0.4901624, abs_tol=1e-6) and math.isclose(high, 0.9433178, abs_tol=1e-6)
    assert math.isclose(wilson(10, 10)[1], 1.0) and wilson(0, 10)[0] == 0.0 and 0.72 < wilson(10, 10)[0] < 0.73


def test_bradley_terry_orders_models_and_stays_finite():
    pairs = [("big", "small")] * 8 + [("small", "big")] * 2 + [("big", "tiny")] * 5 + [("small", "tiny")] * 4
    scores = bradley_terry(pairs)
    assert scores["big"] > scores["small"] > scores["tiny"]
    assert math.isclose(sum(scores.values()), 0.0, abs_tol=1e-9)
    assert all(math.isfinite(v) for v in scores.values())  # tiny never won: still finite


def test_summary_and_dataset_rows():
    votes = [vote("A", "B", "a"), vote("A", "B", "b"), vote("B", "A", "a", prompt="q")]
    summary = summarize(votes)
    assert summary["votes"] == 3
    assert summary["models"]["B"]["wins"] == 2 and summary["models"]["B"]["comparisons"] == 3
    rows = preference_rows(votes)
    assert rows["chosen"] == ["A пишет", "B пишет", "B пишет"] and rows["rejected_model"] == ["B", "A", "A"]
    assert rows["prompt"] == ["p", "p", "q"]


def test_read_votes_from_a_database_without_and_with_votes(tmp_path):
    db = tmp_path / "gamio.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE games (id TEXT)").connection.commit()
    assert read_votes(db) == []
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE votes (id INTEGER PRIMARY KEY, game_id TEXT, prompt TEXT, text_a TEXT, "
                           "text_b TEXT, model_a TEXT, model_b TEXT, choice TEXT, created REAL)")
        connection.execute("INSERT INTO votes (game_id, prompt, text_a, text_b, model_a, model_b, choice, created) "
                           "VALUES ('g', 'p', 'x', 'y', 'A', 'B', 'b', 1.0)")
    assert [v["model_b"] for v in read_votes(db)] == ["B"]
