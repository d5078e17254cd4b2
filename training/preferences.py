"""The arena's votes as DPO pairs: read, checked against the SFT model, and split into train / held-out by game.

`preferences=` is either the serving database (SQLite, table `votes`: one row per blind vote, with its game, the
prompt the main model was asked, both replies and both models' names) or a saved preference dataset (eval's
`reports/<name>/preferences/`: prompt / chosen / rejected / chosen_model / rejected_model).

A vote is usable for the SFT model when one of its two replies is that model's: the prompt was built for it and one
side is its own text. Votes between two other models are foreign (dpo.foreign_votes=error refuses them, skip leaves
them out). Held-out votes are whole games (a game's turns share its world and history, so splitting within a game
would leak), chosen by a hash of the game id and the seed: stable as votes accumulate.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import zlib
from collections import Counter
from pathlib import Path

from adventure.errors import GamioError

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("prompt", "chosen", "rejected", "chosen_model", "rejected_model", "game")


def read_pairs(source: Path) -> list[dict]:
    """Every vote of `source` as {prompt, chosen, rejected, chosen_model, rejected_model, game}."""
    source = Path(source)
    if source.is_dir():
        return _dataset_pairs(source)
    if not source.is_file():
        raise GamioError(f"preferences={source}: no such file or folder (the serving database, e.g. "
                         f"<artifacts>/serving/gamio.sqlite, or a saved preference dataset)")
    return _database_pairs(source)


def _database_pairs(db: Path) -> list[dict]:
    try:
        connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "votes" not in tables:
                return []
            rows = connection.execute("SELECT game_id, prompt, text_a, text_b, model_a, model_b, choice FROM votes "
                                      "WHERE choice IN ('a', 'b') ORDER BY created, id").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise GamioError(f"preferences={db}: not a readable serving database ({exc})") from None
    pairs = []
    for game, prompt, text_a, text_b, model_a, model_b, choice in rows:
        won, lost = ((text_a, model_a), (text_b, model_b)) if choice == "a" else ((text_b, model_b), (text_a, model_a))
        pairs.append({"prompt": prompt, "chosen": won[0], "rejected": lost[0], "chosen_model": won[1],
                      "rejected_model": lost[1], "game": game})
    return pairs


def _dataset_pairs(folder: Path) -> list[dict]:
    from datasets import load_from_disk

    try:
        data = load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise GamioError(f"preferences={folder}: not a saved preference dataset ({exc})") from None
    missing = [c for c in PAIR_COLUMNS[:5] if c not in data.column_names]
    if missing:
        raise GamioError(f"preferences={folder}: the dataset lacks column(s) {missing} (it has {data.column_names})")
    rows = data.to_dict()
    # eval's export has no game ids: a game is known by its world, the prompt's first paragraph (conservative:
    # two games in one world count as one, so nothing of a held-out game can be in training)
    games = rows.get("game") or [p.split("\n\n", 1)[0][:300] for p in rows["prompt"]]
    return [{**{c: rows[c][i] for c in PAIR_COLUMNS[:5]}, "game": games[i]} for i in range(len(games))]


def usable_pairs(pairs: list[dict], model_name: str, *, foreign: str, min_votes: int, source) -> list[dict]:
    """The votes DPO can learn from for `model_name`, or a GamioError that says why there are not enough."""
    own = [p for p in pairs if model_name in (p["chosen_model"], p["rejected_model"])]
    others = [p for p in pairs if p not in own]
    if others and foreign == "error":
        seen = Counter(f"{p['chosen_model']} vs {p['rejected_model']}" for p in others)
        raise GamioError(f"preferences={source}: {len(others)} of {len(pairs)} votes are between other models "
                         f"({', '.join(sorted(seen))}), not the SFT model {model_name!r}: their prompts and replies "
                         f"were not made with it. Pass dpo.model_name=<its name in the arena> if it was served under "
                         f"another name, or dpo.foreign_votes=skip to train on its own {len(own)} vote(s) only")
    if others:
        log.warning("left out %d vote(s) between other models than %r", len(others), model_name)
    usable = [p for p in own if p["prompt"] and p["chosen"] != p["rejected"]]
    if len(usable) < min_votes:
        raise GamioError(f"preferences={source}: {len(usable)} usable vote(s) for model {model_name!r} (of "
                         f"{len(pairs)} recorded), and DPO needs at least dpo.min_votes={min_votes}: let players "
                         f"vote more in the arena (python -m serving model=<sft> \"arena.models=[...]\")")
    return usable


def split_by_game(pairs: list[dict], share: float, seed: int, source) -> tuple[list[dict], list[dict]]:
    """(train, held-out): about `share` of the games, at least one, are held out whole."""
    games = sorted({str(p["game"]) for p in pairs}, key=lambda g: (zlib.crc32(f"{seed}/{g}".encode()), g))
    if len(games) < 2:
        raise GamioError(f"preferences={source}: all {len(pairs)} votes come from one game; a held-out split by "
                         f"game needs votes from at least 2 games")
    held = set(games[:min(len(games) - 1, max(1, math.ceil(share * len(games))))])
    train = [p for p in pairs if str(p["game"]) not in held]
    heldout = [p for p in pairs if str(p["game"]) in held]
    log.info("votes: %d for training (%d games), %d held out (%d games)", len(train), len(games) - len(held),
             len(heldout), len(held))
    return train, heldout
