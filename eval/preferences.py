"""Player preferences from the game's blind arena: who wins, how sure we are, and a preference dataset.

The server (`python -m serving ... "arena.models=[...]"`) shows arena games two replies from two models in random
order, names hidden, and records each vote in its SQLite database (table `votes`: prompt, both texts, both model
names, which one the player chose, when). This module reads those votes:

    per model   wins, comparisons, win_rate, ci95 (Wilson score interval of the win rate)
    bradley_terry  scores from the Bradley-Terry model fitted by Hunter's MM algorithm, with one pseudo-win and
                   one pseudo-loss against a virtual average opponent so undefeated or winless models stay finite;
                   reported as log-strengths centred on 0 (a difference of 1 = e:1 odds of winning)
    dataset     the votes as a `datasets` preference set (prompt / chosen / rejected, plus the model names), the
                shape DPO-style trainers read
"""
from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path

from adventure.errors import GamioError

Z95 = 1.959963984540054
VOTE_COLUMNS = ("prompt", "text_a", "text_b", "model_a", "model_b", "choice", "created")


def read_votes(db: Path) -> list[dict]:
    """Every recorded vote, oldest first; a database without a votes table has none."""
    try:
        connection = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise GamioError(f"preferences={db}: cannot open the serving database ({exc})") from None
    try:
        has_table = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'votes'").fetchone()
        if not has_table:
            return []
        rows = connection.execute(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes ORDER BY created, rowid").fetchall()
    except sqlite3.Error as exc:
        raise GamioError(f"preferences={db}: cannot read its votes ({exc})") from None
    finally:
        connection.close()
    return [dict(zip(VOTE_COLUMNS, row)) for row in rows if row[5] in ("a", "b")]


def wilson(wins: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    p, z2 = wins / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def bradley_terry(pairs: list[tuple[str, str]], iterations: int = 1000) -> dict[str, float]:
    """Log-strengths (mean 0) from (winner, loser) pairs, by MM updates with a pseudo-game against an average
    opponent of strength 1 (which keeps every strength positive and finite)."""
    models = sorted({m for pair in pairs for m in pair})
    wins = Counter(winner for winner, _ in pairs)
    games = Counter(frozenset(pair) for pair in pairs if pair[0] != pair[1])
    strength = {m: 1.0 for m in models}
    for _ in range(iterations):
        updated = {}
        for m in models:
            denominator = 2 / (strength[m] + 1)  # one win and one loss against the virtual opponent
            for pair, n in games.items():
                if m in pair:
                    (other,) = pair - {m}
                    denominator += n / (strength[m] + strength[other])
            updated[m] = (wins[m] + 1) / denominator
        change = max(abs(math.log(updated[m] / strength[m])) for m in models) if models else 0.0
        strength = updated
        if change < 1e-12:
            break
    logs = {m: math.log(s) for m, s in strength.items()}
    mean = sum(logs.values()) / len(logs) if logs else 0.0
    return {m: v - mean for m, v in logs.items()}


def summarize(votes: list[dict]) -> dict:
    """The report's `preferences` section."""
    pairs = [(v["model_a"], v["model_b"]) if v["choice"] == "a" else (v["model_b"], v["model_a"]) for v in votes]
    wins = Counter(winner for winner, _ in pairs)
    comparisons = Counter(m for pair in pairs for m in pair)
    scores = bradley_terry(pairs)
    models = {m: {"wins": wins[m], "comparisons": comparisons[m], "win_rate": wins[m] / comparisons[m],
                  "ci95": wilson(wins[m], comparisons[m]), "bradley_terry": scores[m]}
              for m in sorted(comparisons)}
    return {"votes": len(votes), "models": models,
            "description": "blind arena votes of players: two replies from two models, names hidden"}


def preference_rows(votes: list[dict]) -> dict[str, list]:
    """Columns of the preference dataset (prompt / chosen / rejected and the models behind them)."""
    rows = {"prompt": [], "chosen": [], "rejected": [], "chosen_model": [], "rejected_model": []}
    for v in votes:
        won, lost = ("a", "b") if v["choice"] == "a" else ("b", "a")
        for key, value in (("prompt", v["prompt"]), ("chosen", v[f"text_{won}"]), ("rejected", v[f"text_{lost}"]),
                           ("chosen_model", v[f"model_{won}"]), ("rejected_model", v[f"model_{lost}"])):
            rows[key].append(value)
    return rows


def write_dataset(votes: list[dict], folder: Path) -> Path:
    """The votes as a datasets.Dataset saved to disk (load it with `datasets.load_from_disk`)."""
    from datasets import Dataset

    Dataset.from_dict(preference_rows(votes)).save_to_disk(str(folder))
    return folder
