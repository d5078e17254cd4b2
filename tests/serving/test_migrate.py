"""`python -m serving.migrate <sqlite> <postgresql url>` copies a SQLite game world exactly (games, turns with
their variants, votes, shares) into a real PostgreSQL server, verifies the counts, and refuses a database that
already holds games with one error line and exit 2."""
from __future__ import annotations

import subprocess
import sys

from adventure.paths import REPO_ROOT
from serving.storage import open_store
from serving.storage.story import StoryEditor


def sqlite_world(path):
    store = open_store(path)
    story = StoryEditor(store)
    games = []
    for i in range(3):
        game_id, token = store.create_game(f"Мир {i}", arena=i == 0, steering={"memory": f"память {i}"})
        for n in range(i + 1):
            job = store.add_job(game_id, "turn", f"ход {n}", arena=i == 0)
            store.claim([job])
            store.complete(job, variants=[{"text": f"ответ {n}а", "text_en": None, "model": "A"},
                                          {"text": f"ответ {n}б", "text_en": None, "model": "B"}], prompt="промпт")
        games.append((game_id, token))
    story.choose(games[0][0], 0, 1)  # an arena vote
    share = story.share(games[1][0])
    store.undo(games[2][0])  # kept for redo
    exports = {game_id: story.export(game_id) for game_id, _ in games}
    store.close()
    return games, exports, share


def test_migrate_copies_a_sqlite_world_exactly(postgres_server, tmp_path):
    games, exports, share = sqlite_world(tmp_path / "gamio.sqlite")
    url = postgres_server.fresh_url()
    run = [sys.executable, "-m", "serving.migrate", str(tmp_path / "gamio.sqlite"), url]
    done = subprocess.run(run, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 games, 5 turns, 1 votes, 1 shares" in done.stderr
    store = open_store(url)
    story = StoryEditor(store)
    try:
        for game_id, token in games:
            store.authorize(game_id, token)  # the same tokens open the same games
            assert story.export(game_id) == exports[game_id]
        assert story.shared_game(share) == games[1][0]
        assert store.game(games[2][0]).redo_depth == 1
        with store.database.read() as db:
            vote = db.execute("SELECT game_id, choice, model_a, model_b FROM votes").fetchone()
        assert tuple(vote.values()) == (games[0][0], "b", "A", "B")
    finally:
        store.close()
    again = subprocess.run(run, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    lines = again.stderr.strip().splitlines()
    assert again.returncode == 2 and lines[-1].startswith("error: ") and "already holds games" in lines[-1]
