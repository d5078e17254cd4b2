"""The one database interface under the repositories, with two backends: SQLite (embedded, one process:
storage/sqlite.py) and PostgreSQL (several server processes share one game world: storage/postgres.py).

The repositories write their SQL once, in the dialect both understand (`?` placeholders, `ON CONFLICT`, no
`INSERT OR REPLACE`); what differs is here as hooks: how a transaction starts, row locks (`FOR UPDATE`, which
SQLite does not need: one writer at a time), notifications between processes, checkpoints.

Write failures: every transaction that fails with a database fault (disk full, read-only, connection lost)
raises `StorageUnavailable` (503) with the database's reason and records it in `write_error`, which /healthz
reports until a write (a request's, or `probe()`) works again.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from serving.errors import Unavailable

log = logging.getLogger(__name__)
NOTIFY_CHANNEL = "gamio"


class StorageUnavailable(Unavailable):
    """A write the database refused (disk full, read-only, I/O error, connection lost): 503 until writes work."""


def describe(exc: BaseException) -> str:
    """The database's own words ("database or disk is full"): never a path, never a traceback."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Database:
    """The interface; `transaction()` yields a connection whose `execute(sql, params)` takes `?` placeholders
    and returns a cursor whose rows answer both `row["column"]` and `row[0]`."""

    shared = False  # True: other server processes use the same database (claims, leases, notifications)
    label = ""  # how errors name the database: a path, or a URL without its password
    for_update = ""  # appended to a SELECT that the transaction will update (row locks where they matter)
    skip_locked = ""  # appended to the SELECT that claims queued jobs: rows another process claims are skipped

    def __init__(self):
        self.write_error: str | None = None  # the reason while writes fail; None once one works again
        self.writes_since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self._last_probe = 0.0
        self.closed = False

    # ---- per backend -------------------------------------------------------------------------------------

    def transaction(self):
        raise NotImplementedError

    def read(self):
        """A connection for reads (no transaction bookkeeping)."""
        raise NotImplementedError

    def is_storage_fault(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def lock_game(self, db, game_id: str) -> None:
        """Serialise the changes of one game within this transaction (SQLite: every write transaction is)."""

    def lock_key(self, db, key: str) -> None:
        """Serialise transactions about `key` (a client's share of the queue) across processes."""

    def notify(self, db, payload: str) -> None:
        """Tell the other server processes (at commit): `<event> <job id>`."""

    def listen(self, callback) -> None:
        """Call `callback(payload)` for every notification of any process, this one included (PostgreSQL)."""

    def checkpoint(self) -> bool:
        """Make every committed write durable in the main store (SQLite: the WAL into the file); True when done."""
        self.writes_since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        return True

    def checkpoint_due(self, interval_s: float, idle: bool) -> bool:
        """Whether a checkpoint is due: writes are waiting and the queue is idle or the interval has passed."""
        return self.writes_since_checkpoint > 0 and (idle or time.monotonic() - self.last_checkpoint >= interval_s)

    # ---- shared bookkeeping ------------------------------------------------------------------------------

    def refused(self, exc: BaseException) -> StorageUnavailable:
        reason = describe(exc)
        if self.write_error is None:
            log.error("the database refused a write: %s", reason)
        self.write_error = reason
        return StorageUnavailable(f"the game database cannot be written right now ({reason}); try again later")

    def wrote(self) -> None:
        if self.write_error is not None:
            log.warning("the database takes writes again")
        self.write_error = None
        self.writes_since_checkpoint += 1

    @contextmanager
    def guarded(self):
        """Driver faults inside become StorageUnavailable (recorded); anything else passes through."""
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            if self.is_storage_fault(exc):
                raise self.refused(exc) from exc
            raise

    def probe(self, min_interval_s: float = 1.0) -> str | None:
        """While writes fail: try one small write (at most every `min_interval_s`); the reason if it still fails."""
        if self.write_error is None or time.monotonic() - self._last_probe < min_interval_s:
            return self.write_error
        self._last_probe = time.monotonic()
        try:
            with self.transaction() as db:
                set_meta(db, "probe", str(time.time()))
        except StorageUnavailable:
            pass
        return self.write_error


def set_meta(db, key: str, value: str) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (key, value))
