"""The SQLite backend of the database interface (storage/database.py): opening (with an integrity check), adding columns to older databases,
transactions whose write failures become a 503 with a reason, WAL checkpoints and the write probe.

Why each piece exists:
- A damaged file must stop the server at start with one clear line, not a traceback or silently lost games:
  `open_database` runs `PRAGMA quick_check` and a probe write, and raises a GamioError naming the file.
- A failed write (disk full, read-only file, I/O error) must not look like a bug (500) nor leave the server
  saying "ok": every transaction that fails raises `StorageUnavailable` (503) with SQLite's reason and records
  it in `Database.write_error`, which /healthz reports until a write (a request's, or `probe()`) works again.
- With WAL, committed turns can sit in `gamio.sqlite-wal` for a long time, so a copy of `gamio.sqlite` alone (as
  backup tools take it) may hold nothing and a lost WAL drops games. `checkpoint()` moves the WAL into the main
  file; the worker calls it when the queue falls idle and the janitor at least every
  `storage.checkpoint_interval_s` while writes happen. It uses TRUNCATE (the WAL shrinks to 0 bytes, so the main
  file alone is the whole database) with a busy timeout of 0: it never waits for an outside reader such as a
  running backup; it then copies what it can, like PASSIVE, and the next tick finishes the job.
- Commits do not wait for the disk (synchronous=NORMAL, see `_open`): a request must not wait for an fsync that
  a busy engine can hold up for a second; the checkpoints are the points where the writes reach the disk.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from contextlib import contextmanager

from adventure.errors import GamioError
from serving.storage.database import Database, describe, set_meta
from serving.storage.schema import ADDED_COLUMNS, ADDED_COLUMNS_2, INDEXES, SQLITE_TYPES, TABLES

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 30_000


class DatabaseDamaged(GamioError):
    pass


def is_storage_fault(exc: BaseException) -> bool:
    """Disk full, read-only, I/O error, a damaged page: the database's fault. Constraint or API errors are bugs."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _write_access_problem(path: Path) -> str:
    """Why SQLite could not open or write `path`, when the file system can tell (SQLite's words are vague)."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return ": the file system is read-only"
    except OSError:
        return ""
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return ": the file or its folder is not writable"
    return ""


def quick_check(db: sqlite3.Connection) -> str | None:
    """None when `PRAGMA quick_check` finds nothing wrong, else its first complaint."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows[:3])


class SQLiteDatabase(Database):
    """One connection shared by every thread, serialised by an RLock (SQLite's own locking is per connection)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.label = str(self.path)
        self.lock = threading.RLock()
        try:
            self.conn = self._open()
        except sqlite3.Error as exc:
            reason = describe(exc)
            if isinstance(exc, sqlite3.OperationalError):
                reason += _write_access_problem(self.path)
                hint = "check that the file and its folder are writable and the disk has room"
            else:
                hint = "restore it from a backup (python -m serving.backup) or move it aside to start afresh"
            raise DatabaseDamaged(f"db={self.path}: cannot use this database ({reason}); {hint}") from None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            problem = quick_check(conn)  # also reads the header: "file is not a database" raises here
            if problem:
                raise sqlite3.DatabaseError(f"integrity check failed: {problem}")
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL, not FULL: a commit (a turn's 202, the worker's claim and result) never waits for a flush
            # to the disk; the checkpoints (queue idle, and every storage.checkpoint_interval_s) flush. With FULL
            # every commit waited for its fsync, and while engine=vllm keeps both cores busy the kernel finished
            # that fsync only when the generation ended (issue 25: a turn's POST took 0.7-1.2 s, 1 ms after the
            # long completion it should have joined). A process crash loses nothing either way (WAL); a power cut
            # loses at most the turns since the last checkpoint, the bound a copy of gamio.sqlite already has.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(TABLES.format(**SQLITE_TYPES))
            for table, column, declaration in ADDED_COLUMNS + ADDED_COLUMNS_2:  # databases written by an older version
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration.format(**SQLITE_TYPES)}")
            conn.executescript(INDEXES)
            set_meta(conn, "opened", str(time.time()))
        except BaseException:
            conn.close()
            raise
        return conn

    def transaction(self) -> "_Transaction":
        return _Transaction(self)

    @contextmanager
    def read(self):
        with self.lock:
            yield self.conn

    def is_storage_fault(self, exc: BaseException) -> bool:
        return is_storage_fault(exc)

    def close(self) -> None:
        """Checkpoint everything into the main file, then close (SQLite removes the -wal and -shm files)."""
        with self.lock:
            if self.closed:
                return
            try:
                self.checkpoint()
            finally:
                self.conn.close()
                self.closed = True

    # ---- durability ----------------------------------------------------------------------------------------

    def checkpoint(self) -> bool:
        """Copy the WAL into the main file (see the module doc); True when the WAL is now empty."""
        with self.lock:
            if self.closed:
                return False
            try:
                self.conn.execute("PRAGMA busy_timeout=0")
                try:
                    busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed (%s); the next one tries again", describe(exc))
                return False
            if not busy:
                self.writes_since_checkpoint = 0
            self.last_checkpoint = time.monotonic()
            return not busy


class _Transaction:
    """`with database.transaction() as conn:` one IMMEDIATE transaction under the lock. A SQLite error inside it
    or at COMMIT rolls back and becomes StorageUnavailable (recorded as the write error); a success clears it."""

    def __init__(self, database: Database):
        self.database = database

    def __enter__(self) -> sqlite3.Connection:
        self.database.lock.acquire()
        try:
            self.database.conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self.database.lock.release()
            if is_storage_fault(exc):
                raise self.database.refused(exc) from exc
            raise
        return self.database.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        database, conn = self.database, self.database.conn
        try:
            if exc_type is None:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as commit_error:  # SQLITE_FULL usually comes here
                    self._rollback()
                    raise database.refused(commit_error) from commit_error
                database.wrote()
                return
            self._rollback()
            if is_storage_fault(exc):
                raise database.refused(exc) from exc
        finally:
            database.lock.release()

    def _rollback(self) -> None:
        try:
            if self.database.conn.in_transaction:
                self.database.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite has already rolled back (e.g. after SQLITE_FULL)
