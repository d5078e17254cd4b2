"""The game world's repository: games, their turns, and the jobs of the queue, as typed records (records.py).

Every accepted job is a row before the client hears "202", and a finished turn is written in the same
transaction that marks its job done, so a crash (kill -9 included) loses nothing accepted. A game's `version`
counts its changes; a job remembers the version it was accepted against, which is how a stale job is
recognised. A turn row remembers the job that wrote its result, so a job shows its own turn, or that it was
undone (or replaced by a retry).

One process (SQLite): at start, `recover()` puts queued and running jobs back in the queue, or fails them with a
reason when their game changed. Several processes (PostgreSQL): a worker claims a job (`claim`, `claim_next`:
exactly one claim wins) with a lease that its process renews; the jobs of a process that died (kill -9) go back
to the others once their lease runs out. Only the claim's owner may finish a job.

The job queue's claims and completion are storage/jobs.py; story editing is storage/story.py.
Tokens are stored as sha256 hashes only and compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import socket
import time
import uuid
from pathlib import Path

from serving.errors import Conflict, Forbidden, NotFound, QueueFull, TooManyRequests, Unauthorized
from serving.storage.database import Database
from serving.storage.jobs import JobQueue
from serving.storage.records import Game, Job, JobContext, Turn, Variant


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def turn_record(row) -> Turn:
    """A turn row as a record (an older row's one result is its only variant)."""
    raw = row["variants"]
    variants = tuple(Variant.from_dict(v) for v in json.loads(raw)) if raw else \
        (Variant(row["result"], row["result_en"]),)
    return Turn(index=row["idx"], action=row["action"], result=row["result"], action_en=row["action_en"],
                result_en=row["result_en"], variants=variants, chosen=row["chosen"] or 0, arena=row["arena"] or 0,
                prompt=row["prompt"], job_id=row["job_id"], mode=_column(row, "mode"))


def job_record(row, turn: Turn | None = None) -> Job:
    return Job(id=row["id"], game_id=row["game_id"], kind=row["kind"], action=row["action"], status=row["status"],
               error=row["error"], n=int(row["n"] or 1), arena=bool(row["arena"]), created=row["created"],
               started=row["started"], turn=turn, mode=_column(row, "mode"),
               max_new_tokens=_column(row, "max_new_tokens"))


def _column(row, name: str):
    """A column added in schema version 2 (a redo stack written before it lacks it)."""
    try:
        return row[name]
    except (KeyError, IndexError):
        return None


def new_game_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Store(JobQueue):
    """Thread-safe access to one database (either backend) for the request threads and the worker."""

    def __init__(self, database: Database):
        self.database = database
        self.path = getattr(database, "path", None)  # SQLite: the file (backups, tests)
        # This process's name on the claims it makes (unique even when a pid is reused on another host).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    @property
    def shared(self) -> bool:
        return self.database.shared

    def close(self) -> None:
        self.database.close()

    def _transaction(self):
        return self.database.transaction()

    # ---- games -------------------------------------------------------------------------------------------

    def create_game(self, world: str, *, arena: bool = False, steering: dict | None = None,
                    preset: str | None = None) -> tuple[str, str]:
        """A new game: (game_id, token). The token is returned once and only its hash is kept."""
        game_id, token = new_game_id(), new_token()
        with self._transaction() as db:
            self._insert_game(db, game_id, token, world, arena=arena, steering=steering, preset=preset)
        return game_id, token

    @staticmethod
    def _insert_game(db, game_id: str, token: str, world: str, *, arena: bool, steering: dict | None,
                     preset: str | None) -> None:
        now = time.time()
        db.execute("INSERT INTO games (id, token_sha256, world, created, touched, arena, steering, preset) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (game_id, token_hash(token), world, now, now, int(arena),
                                                        json.dumps(steering) if steering else None, preset))

    def authorize(self, game_id: str, token: str | None) -> None:
        """NotFound for an unknown game, Unauthorized without a token, Forbidden for a wrong one (constant time)."""
        with self.database.read() as db:
            row = db.execute("SELECT token_sha256 FROM games WHERE id = ?", (game_id,)).fetchone()
        if row is None:
            raise NotFound(f"no game {game_id!r}")
        if not token:
            raise Unauthorized("this game needs its token: send the header 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(token_hash(token), row["token_sha256"]):
            raise Forbidden("wrong token for this game")

    def game(self, game_id: str) -> Game:
        with self.database.read() as db:
            return self._game(db, game_id)

    def _game(self, db, game_id: str) -> Game:
        game = db.execute("SELECT * FROM games WHERE id = ?", (game_id,)).fetchone()
        if game is None:
            raise NotFound(f"no game {game_id!r}")
        turns = db.execute("SELECT * FROM turns WHERE game_id = ? ORDER BY idx", (game_id,)).fetchall()
        pending = db.execute("SELECT id FROM jobs WHERE game_id = ? AND status IN ('queued', 'running')",
                             (game_id,)).fetchone()
        return Game(id=game["id"], world=game["world"], world_en=game["world_en"], version=game["version"],
                    turns=tuple(turn_record(t) for t in turns), pending_job=pending["id"] if pending else None,
                    steering=json.loads(game["steering"] or "{}"), preset=game["preset"], arena=bool(game["arena"]),
                    share_id=game["share_id"], redo_depth=len(json.loads(game["redo"] or "[]")),
                    max_new_tokens=game["max_new_tokens"])

    def undo(self, game_id: str) -> None:
        """Drop the last turn (kept for redo); refused while a job of the game is pending or with no turn."""
        with self._transaction() as db:
            self._refuse_if_pending(db, game_id)
            last = db.execute("SELECT MAX(idx) AS last FROM turns WHERE game_id = ?", (game_id,)).fetchone()["last"]
            if last is None:
                raise Conflict("there is no turn to undo")
            undone = dict(db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ?", (game_id, last)).fetchone())
            redo = json.loads(db.execute("SELECT redo FROM games WHERE id = ?", (game_id,)).fetchone()["redo"] or "[]")
            db.execute("DELETE FROM turns WHERE game_id = ? AND idx = ?", (game_id, last))
            db.execute("UPDATE games SET version = version + 1, touched = ?, redo = ? WHERE id = ?",
                       (time.time(), json.dumps(redo + [undone], ensure_ascii=False), game_id))

    def _refuse_if_pending(self, db, game_id: str, lock: bool = True) -> None:
        """Conflict while a job of the game is queued or running; also takes the game's lock (PostgreSQL), so
        that every change of one game is serialised across processes."""
        if lock:
            self.database.lock_game(db, game_id)
        pending = db.execute("SELECT id FROM jobs WHERE game_id = ? AND status IN ('queued', 'running')",
                             (game_id,)).fetchone()
        if pending is not None:
            raise Conflict(f"a turn of this game is still being generated (job {pending['id']}); "
                           f"wait for it before the next turn, undo or retry")

    # ---- accepting jobs ----------------------------------------------------------------------------------

    def add_job(self, game_id: str, kind: str, action: str | None = None, *, n: int = 1, arena: bool = False,
                client: str | None = None, max_per_client: int | None = None, mode: str | None = None,
                max_new_tokens: int | None = None) -> str:
        """Accept a job: a new turn with `action` (`n` variants; `arena`: two models, blind), or a retry (one more
        variant of the last turn). One pending job per game; with `max_per_client`, the client's share of the
        queue is counted here, in the same transaction (so it holds across server processes)."""
        job_id = secrets.token_urlsafe(16)  # job ids are capabilities (GET /api/jobs has no token): unguessable
        with self._transaction() as db:
            action, mode = self._check_job(db, game_id, kind, action, mode=mode)
            if client is not None and max_per_client is not None:
                self.database.lock_key(db, f"client:{client}")
                self._refuse_over_share(db, client, max_per_client)
            version = db.execute("SELECT version FROM games WHERE id = ?", (game_id,)).fetchone()["version"]
            now = time.time()
            db.execute("INSERT INTO jobs (id, game_id, kind, action, game_version, status, created, n, arena, client, "
                       "mode, max_new_tokens) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                       (job_id, game_id, kind, action, version, now, n, int(arena), client, mode, max_new_tokens))
            db.execute("UPDATE games SET touched = ? WHERE id = ?", (now, game_id))
            self.database.notify(db, f"queued {job_id}")
        return job_id

    def check_job(self, game_id: str, kind: str) -> None:
        """Raise what `add_job` would (409) without adding anything."""
        with self.database.read() as db:
            self._check_job(db, game_id, kind, "", lock=False)

    def _check_job(self, db, game_id: str, kind: str, action: str | None, lock: bool = True,
                   mode: str | None = None) -> tuple[str, str | None]:
        """(action, mode) of the job: a retry's are its last turn's."""
        self._refuse_if_pending(db, game_id, lock)
        if kind == "retry":
            last = db.execute("SELECT action, mode FROM turns WHERE game_id = ? ORDER BY idx DESC LIMIT 1",
                              (game_id,)).fetchone()
            if last is None:
                raise Conflict("there is no turn to retry")
            action, mode = last["action"], last["mode"]
        return action, mode

    def cancel(self, job_id: str) -> None:
        """End a queued or running job as `cancelled`: nothing of it is stored (its result, should the batch still
        finish it, is refused by `complete`), and its game takes a new turn at once. Conflict when it is over."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            if row["status"] not in ("queued", "running"):
                raise Conflict(f"job {job_id} is already {row['status']}; only a queued or running job can be "
                               f"cancelled")
            db.execute("UPDATE jobs SET status = 'cancelled', error = 'cancelled by the player', finished = ? "
                       "WHERE id = ?", (time.time(), job_id))
            self.database.notify(db, f"cancelled {job_id}")

    def set_max_new_tokens(self, game_id: str, max_new_tokens: int | None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE games SET max_new_tokens = ?, touched = ? WHERE id = ?",
                       (max_new_tokens, time.time(), game_id))

    def pending_of(self, client: str) -> int:
        """The client's jobs queued or running, in every process."""
        with self.database.read() as db:
            return self._pending_of(db, client)

    @staticmethod
    def _pending_of(db, client: str) -> int:
        return db.execute("SELECT COUNT(*) AS n FROM jobs WHERE client = ? AND status IN ('queued', 'running')",
                          (client,)).fetchone()["n"]

    def _refuse_over_share(self, db, client: str, max_per_client: int) -> None:
        mine = self._pending_of(db, client)
        if mine >= max_per_client:
            raise QueueFull(f"you already have {mine} turns waiting or being generated (the limit per client is "
                            f"{max_per_client}); wait for them first", 5)

    # ---- reading jobs ------------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        with self.database.read() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            turn = None
            if row["status"] == "done":
                turn = db.execute("SELECT * FROM turns WHERE job_id = ?", (job_id,)).fetchone()
                if turn is None and row["kind"] == "retry":  # a retry's turn holds the variant it added
                    turn = db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ?",
                                      (row["game_id"], row["turn_idx"])).fetchone()
                    if turn is not None and not any(v.job == job_id for v in turn_record(turn).variants):
                        turn = None
                elif turn is None:  # a turn written before turns had job_id: the game's turn at its index
                    turn = db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ? AND job_id IS NULL",
                                      (row["game_id"], row["turn_idx"])).fetchone()
            return job_record(row, turn_record(turn) if turn else None)  # no turn: undone or replaced since

    def job_context(self, job_id: str) -> JobContext:
        job = self.job(job_id)
        return JobContext(job=job, game=self.game(job.game_id))

    # ---- per-client rate limits shared by processes ------------------------------------------------------

    def take_token(self, key: str, per_minute: float, what: str) -> None:
        """A token of the client's bucket `key` (`per_minute` tokens, refilled evenly; a minute's worth may come
        at once), counted in the database so that every process sees the same bucket; TooManyRequests beyond."""
        capacity, rate = float(per_minute), per_minute / 60.0
        with self._transaction() as db:
            now = time.time()
            db.execute("INSERT INTO rate_limits (key, tokens, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
                       (key, capacity, now))
            row = db.execute(f"SELECT tokens, updated FROM rate_limits WHERE key = ?{self.database.for_update}",
                             (key,)).fetchone()
            tokens = min(capacity, row["tokens"] + max(0.0, now - row["updated"]) * rate)
            if tokens < 1:
                wait = math.ceil((1 - tokens) / rate)
                raise TooManyRequests(f"too many {what} from your address (the limit is {capacity:g} a minute); "
                                      f"try again in {wait} s", wait)
            db.execute("UPDATE rate_limits SET tokens = ?, updated = ? WHERE key = ?", (tokens - 1, now, key))

    # ---- housekeeping ------------------------------------------------------------------------------------

    def expire(self, older_than_s: float, batch: int = 500) -> int:
        """Delete the games (with their turns and jobs) that nothing touched for `older_than_s` seconds; a game
        with a queued or running job is never expired. Short transactions of `batch` games each."""
        cutoff, removed = time.time() - older_than_s, 0
        while True:
            with self._transaction() as db:
                db.execute("UPDATE games SET touched = created WHERE touched IS NULL")  # older databases
                ids = [row["id"] for row in db.execute(
                    "SELECT id FROM games g WHERE touched < ? AND NOT EXISTS (SELECT 1 FROM jobs j "
                    "WHERE j.game_id = g.id AND j.status IN ('queued', 'running')) LIMIT ?", (cutoff, batch))]
                if ids:
                    marks = ",".join("?" * len(ids))
                    for table, column in (("turns", "game_id"), ("jobs", "game_id"), ("games", "id")):
                        db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
                db.execute("DELETE FROM rate_limits WHERE updated < ?", (time.time() - 3600,))  # full again by now
            removed += len(ids)
            if len(ids) < batch:
                return removed


def open_store(db: str | Path) -> Store:
    """The store of `db=`: a postgresql:// URL, or a SQLite file."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        from serving.storage.postgres import PostgresDatabase

        return Store(PostgresDatabase(text))
    from serving.storage.sqlite import SQLiteDatabase

    return Store(SQLiteDatabase(Path(text).expanduser()))
