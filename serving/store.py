"""The server's state in SQLite (WAL): games, their turns, and the jobs of the queue.

Every accepted job is a row before the client hears "202", and a finished turn is written in the same
transaction that marks its job done, so a crash (kill -9 included) loses nothing accepted: at start,
`recover()` puts queued and running jobs back in the queue, or fails them with a reason when their game has
changed since they were accepted. A game's `version` counts its changes; a job remembers the version it was
accepted against, which is how a stale job is recognised. A turn row remembers the job that wrote its result,
so a job shows its own turn, or that it was undone (or replaced by a retry).

Opening, integrity, write failures (503) and WAL checkpoints are serving/database.py's business.
Tokens are stored as sha256 hashes only and compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from pathlib import Path

from serving.database import Database
from serving.errors import Conflict, Forbidden, NotFound, Unauthorized

PENDING = ("queued", "running")
FINAL = ("done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    world TEXT NOT NULL,
    world_en TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    game_id TEXT NOT NULL REFERENCES games(id),
    idx INTEGER NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    action_en TEXT,
    result_en TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (game_id, idx)
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    game_id TEXT NOT NULL REFERENCES games(id),
    kind TEXT NOT NULL,              -- turn | retry
    action TEXT NOT NULL,
    game_version INTEGER NOT NULL,   -- the game's version when the job was accepted
    status TEXT NOT NULL,            -- queued | running | done | failed
    error TEXT,
    turn_idx INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    game_id TEXT NOT NULL,
    turn_idx INTEGER NOT NULL,
    prompt TEXT NOT NULL,            -- what the main model was asked (eval's preference set keeps it)
    text_a TEXT NOT NULL,            -- the variant shown first
    text_b TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    choice TEXT NOT NULL,            -- a | b
    created REAL NOT NULL
);
"""
# Columns added after the first release: (table, column, declaration). A database written by an older version
# gets them at start; new ones go here (not into _SCHEMA), so that both kinds of database end up alike.
_ADDED_COLUMNS = (
    ("turns", "job_id", "TEXT"),      # the job whose result the turn holds (its turn job, or the last retry)
    ("games", "touched", "REAL"),     # the last change (created, turn accepted or written, undo): for expiry
    ("games", "steering", "TEXT"),    # JSON: memory, author's note, world info, banned words, stop strings
    ("games", "preset", "TEXT"),      # a generation preset name; NULL: the server's
    ("games", "arena", "INTEGER"),    # 1: the player agreed to blind two-model turns
    ("games", "share_id", "TEXT"),    # a read-only link's id; NULL: not shared
    ("games", "redo", "TEXT"),        # JSON stack of undone turns (a new turn clears it)
    ("turns", "variants", "TEXT"),    # JSON [{text, text_en, model}]; NULL (older rows): the one result
    ("turns", "chosen", "INTEGER"),   # the variant `result` holds
    ("turns", "arena", "INTEGER"),    # 1: two models' blind variants; 2: voted
    ("turns", "prompt", "TEXT"),      # the prompt the (main) model was asked: what a vote is about
    ("jobs", "n", "INTEGER"),         # variants asked for
    ("jobs", "arena", "INTEGER"),     # 1: generate this turn with two models, blind
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_game ON jobs (game_id, status);
CREATE INDEX IF NOT EXISTS turns_by_job ON turns (job_id);
CREATE INDEX IF NOT EXISTS games_by_touched ON games (touched);
CREATE UNIQUE INDEX IF NOT EXISTS games_by_share ON games (share_id);
"""


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def turn_row(row) -> dict:
    """A turn as a dict, with its variants decoded (an older row's one result is its only variant)."""
    turn = dict(row)
    raw = turn.get("variants")
    turn["variants"] = json.loads(raw) if raw else [{"text": turn["result"], "text_en": turn.get("result_en"),
                                                     "model": None}]
    turn["chosen"] = turn.get("chosen") or 0
    return turn


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Store:
    """Thread-safe access to the database: one connection shared by the request threads and the worker."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.database = Database(self.path, _SCHEMA, _ADDED_COLUMNS, _INDEXES)
        self._lock = self.database.lock

    @property
    def _db(self):
        return self.database.conn

    def close(self) -> None:
        self.database.close()

    def _transaction(self):
        return self.database.transaction()

    # ---- games -------------------------------------------------------------------------------------------

    def create_game(self, world: str, *, arena: bool = False, steering: dict | None = None,
                    preset: str | None = None) -> tuple[str, str]:
        """A new game: (game_id, token). The token is returned once and only its hash is kept."""
        game_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(32)  # 256 random bits
        with self._transaction() as db:
            now = time.time()
            db.execute("INSERT INTO games (id, token_sha256, world, created, touched, arena, steering, preset) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (game_id, token_hash(token), world, now, now, int(arena),
                                                            json.dumps(steering) if steering else None, preset))
        return game_id, token

    def authorize(self, game_id: str, token: str | None) -> None:
        """404 for an unknown game, 401 without a token, 403 for a wrong one (constant-time comparison)."""
        with self._lock:
            row = self._db.execute("SELECT token_sha256 FROM games WHERE id = ?", (game_id,)).fetchone()
        if row is None:
            raise NotFound(f"no game {game_id!r}")
        if not token:
            raise Unauthorized("this game needs its token: send the header 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(token_hash(token), row["token_sha256"]):
            raise Forbidden("wrong token for this game")

    def game(self, game_id: str) -> dict:
        with self._lock:
            game = self._db.execute("SELECT * FROM games WHERE id = ?", (game_id,)).fetchone()
            if game is None:
                raise NotFound(f"no game {game_id!r}")
            turns = self._db.execute("SELECT * FROM turns WHERE game_id = ? ORDER BY idx", (game_id,)).fetchall()
            pending = self._db.execute("SELECT id FROM jobs WHERE game_id = ? AND status IN ('queued', 'running')",
                                       (game_id,)).fetchone()
        return {"id": game["id"], "world": game["world"], "world_en": game["world_en"], "version": game["version"],
                "turns": [turn_row(t) for t in turns], "pending_job": pending["id"] if pending else None,
                "steering": json.loads(game["steering"] or "{}"), "preset": game["preset"],
                "arena": bool(game["arena"]), "share_id": game["share_id"],
                "redo": len(json.loads(game["redo"] or "[]"))}

    def undo(self, game_id: str) -> None:
        """Drop the last turn; refused while a job of the game is pending or when there is no turn."""
        with self._transaction() as db:
            self._refuse_if_pending(db, game_id)
            last = db.execute("SELECT MAX(idx) FROM turns WHERE game_id = ?", (game_id,)).fetchone()[0]
            if last is None:
                raise Conflict("there is no turn to undo")
            undone = dict(db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ?", (game_id, last)).fetchone())
            redo = json.loads(db.execute("SELECT redo FROM games WHERE id = ?", (game_id,)).fetchone()[0] or "[]")
            db.execute("DELETE FROM turns WHERE game_id = ? AND idx = ?", (game_id, last))
            db.execute("UPDATE games SET version = version + 1, touched = ?, redo = ? WHERE id = ?",
                       (time.time(), json.dumps(redo + [undone], ensure_ascii=False), game_id))

    # ---- jobs --------------------------------------------------------------------------------------------

    def add_job(self, game_id: str, kind: str, action: str | None = None, *, n: int = 1, arena: bool = False) -> str:
        """Accept a job: a new turn with `action` (`n` variants; `arena`: two models, blind), or a retry (one more
        variant of the last turn). One pending job per game."""
        job_id = secrets.token_urlsafe(16)  # job ids are capabilities (GET /api/jobs has no token): unguessable
        with self._transaction() as db:
            action = self._check_job(db, game_id, kind, action)
            version = db.execute("SELECT version FROM games WHERE id = ?", (game_id,)).fetchone()[0]
            now = time.time()
            db.execute("INSERT INTO jobs (id, game_id, kind, action, game_version, status, created, n, arena) "
                       "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                       (job_id, game_id, kind, action, version, now, n, int(arena)))
            db.execute("UPDATE games SET touched = ? WHERE id = ?", (now, game_id))
        return job_id

    def check_job(self, game_id: str, kind: str) -> None:
        """Raise what `add_job` would (409) without adding anything."""
        with self._lock:
            self._check_job(self._db, game_id, kind, "")

    def _check_job(self, db, game_id: str, kind: str, action: str | None) -> str:
        self._refuse_if_pending(db, game_id)
        if kind == "retry":
            last = db.execute("SELECT action FROM turns WHERE game_id = ? ORDER BY idx DESC LIMIT 1",
                              (game_id,)).fetchone()
            if last is None:
                raise Conflict("there is no turn to retry")
            action = last["action"]
        return action

    @staticmethod
    def _refuse_if_pending(db, game_id: str) -> None:
        pending = db.execute("SELECT id FROM jobs WHERE game_id = ? AND status IN ('queued', 'running')",
                             (game_id,)).fetchone()
        if pending is not None:
            raise Conflict(f"a turn of this game is still being generated (job {pending['id']}); "
                           f"wait for it before the next turn, undo or retry")

    def job(self, job_id: str) -> dict:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            job = dict(row)
            job["turn"] = None
            if job["status"] == "done":
                turn = self._db.execute("SELECT * FROM turns WHERE job_id = ?", (job_id,)).fetchone()
                if turn is None and job["kind"] == "retry":  # a retry's turn holds the variant it added
                    turn = self._db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ?",
                                            (job["game_id"], job["turn_idx"])).fetchone()
                    if turn is not None and not any(v.get("job") == job_id for v in turn_row(turn)["variants"]):
                        turn = None
                elif turn is None:  # a turn written before turns had job_id: the game's turn at its index
                    turn = self._db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ? AND job_id IS NULL",
                                            (job["game_id"], job["turn_idx"])).fetchone()
                job["turn"] = turn_row(turn) if turn else None  # None: undone (or replaced by a retry) since
        return job

    def job_context(self, job_id: str) -> dict:
        """What the worker needs to generate a job: the job, its game's world and turns."""
        job = self.job(job_id)
        game = self.game(job["game_id"])
        return {"job": job, "world": game["world"], "world_en": game["world_en"], "turns": game["turns"],
                "steering": game["steering"], "preset": game["preset"]}

    def mark_running(self, job_ids: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE jobs SET status = 'running', started = ? WHERE id = ? AND status = 'queued'",
                           [(time.time(), job_id) for job_id in job_ids])

    def complete(self, job_id: str, *, variants: list[dict] | None = None, result: str | None = None,
                 result_en: str | None = None, action_en: str | None = None, world_en: str | None = None,
                 prompt: str | None = None) -> bool:
        """Write the job's turn and mark it done in one transaction; False (job failed) if the game changed.
        `variants`: [{text, text_en, model}]. A turn job's turn gets them (the first chosen); a retry adds them to
        the last turn and chooses the first new one, so no earlier variant is lost. Each variant remembers its job."""
        if variants is None:  # one result (the turn of an older caller)
            variants = [{"text": result, "text_en": result_en, "model": None}]
        variants = [dict(v, job=job_id) for v in variants]
        with self._transaction() as db:
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None or job["status"] not in PENDING:
                return False
            version = db.execute("SELECT version FROM games WHERE id = ?", (job["game_id"],)).fetchone()[0]
            if version != job["game_version"]:
                self._fail(db, job_id, "the game changed while this turn was being generated")
                return False
            if world_en is not None:
                db.execute("UPDATE games SET world_en = ? WHERE id = ? AND world_en IS NULL", (world_en, job["game_id"]))
            now = time.time()
            if job["kind"] == "retry":
                last = db.execute("SELECT * FROM turns WHERE game_id = ? ORDER BY idx DESC LIMIT 1",
                                  (job["game_id"],)).fetchone()
                idx, kept = last["idx"], turn_row(last)["variants"]
                chosen = len(kept)
                all_variants = kept + variants
                db.execute("UPDATE turns SET result = ?, result_en = ?, variants = ?, chosen = ?, created = ? "
                           "WHERE game_id = ? AND idx = ?",
                           (all_variants[chosen]["text"], all_variants[chosen].get("text_en"), dumps(all_variants),
                            chosen, now, job["game_id"], idx))
                redo_change = ""
            else:
                idx = db.execute("SELECT COUNT(*) FROM turns WHERE game_id = ?", (job["game_id"],)).fetchone()[0]
                db.execute("INSERT INTO turns (game_id, idx, action, result, action_en, result_en, created, job_id, "
                           "variants, chosen, arena, prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                           (job["game_id"], idx, job["action"], variants[0]["text"], action_en,
                            variants[0].get("text_en"), now, job_id, dumps(variants), job["arena"] or 0, prompt))
                redo_change = ", redo = NULL"  # a new turn clears what undo kept for redo
            db.execute(f"UPDATE games SET version = version + 1, touched = ?{redo_change} WHERE id = ?",
                       (now, job["game_id"]))
            db.execute("UPDATE jobs SET status = 'done', turn_idx = ?, finished = ? WHERE id = ?", (idx, now, job_id))
        return True

    def fail(self, job_id: str, reason: str) -> None:
        with self._transaction() as db:
            self._fail(db, job_id, reason)

    @staticmethod
    def _fail(db, job_id: str, reason: str) -> None:
        db.execute("UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ? "
                   "AND status IN ('queued', 'running')", (reason, time.time(), job_id))

    def recover(self) -> list[str]:
        """At start: jobs left queued or running by a crash, in acceptance order, are queued again; those whose
        game changed since they were accepted fail with that reason. Returns the ids to queue."""
        with self._transaction() as db:
            rows = db.execute("SELECT j.id, j.game_version, g.version FROM jobs j JOIN games g ON g.id = j.game_id "
                              "WHERE j.status IN ('queued', 'running') ORDER BY j.seq").fetchall()
            again = []
            for row in rows:
                if row["game_version"] != row["version"]:
                    self._fail(db, row["id"], "the game changed while the server was down; send the turn again")
                else:
                    db.execute("UPDATE jobs SET status = 'queued', started = NULL WHERE id = ?", (row["id"],))
                    again.append(row["id"])
        return again

    # ---- housekeeping ----------------------------------------------------------------------------------------

    def expire(self, older_than_s: float, batch: int = 500) -> int:
        """Delete the games (with their turns and jobs) that nothing touched for `older_than_s` seconds; a game
        with a queued or running job is never expired. Short transactions of `batch` games each."""
        cutoff, removed = time.time() - older_than_s, 0
        while True:
            with self._transaction() as db:
                db.execute("UPDATE games SET touched = created WHERE touched IS NULL")  # older databases
                ids = [row[0] for row in db.execute(
                    "SELECT id FROM games g WHERE touched < ? AND NOT EXISTS (SELECT 1 FROM jobs j "
                    "WHERE j.game_id = g.id AND j.status IN ('queued', 'running')) LIMIT ?", (cutoff, batch))]
                marks = ",".join("?" * len(ids))
                for table, column in (("turns", "game_id"), ("jobs", "game_id"), ("games", "id")):
                    db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
            removed += len(ids)
            if len(ids) < batch:
                return removed
