"""The PostgreSQL backend of the database interface: `db=postgresql://user@host:port/name`.

Several `python -m serving` processes, each with its own engine, share one game world through it:
- a pool of connections (psycopg 3), one per transaction, READ COMMITTED; the changes of one game are
  serialised by a row lock on the game (`SELECT ... FOR UPDATE`), a client's share of the queue by an advisory
  lock on the client (`pg_advisory_xact_lock`);
- the queue's claims use `FOR UPDATE SKIP LOCKED`, so one job is claimed by exactly one worker (storage/store.py);
- `notify()` sends `NOTIFY gamio '<event> <job id>'` at commit, and `listen()` runs one thread per process that
  hears every process's notifications (LISTEN), so a long-poll or stream on one process sees a job another
  process finished at once;
- the schema is created and migrated at start, versioned in `meta.schema_version` (storage/schema.py), under an
  advisory lock so that two processes starting together do not migrate twice.
Backups: `pg_dump` (see serving/README.md); there is no WAL file of ours to checkpoint.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from adventure.errors import GamioError
from serving.storage.database import NOTIFY_CHANNEL, Database, describe, set_meta
from serving.storage.schema import SCHEMA_VERSION, postgres_migrations

log = logging.getLogger(__name__)
MIGRATION_LOCK = 7_104_305  # pg_advisory_xact_lock key while the schema is created or migrated


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Row(dict):
    """A row that answers `row["column"]` and `row[0]`, like sqlite3.Row."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


def _row_factory(cursor):
    names = [c.name for c in cursor.description] if cursor.description else []
    return lambda values: Row(zip(names, values))


class _Connection:
    """A pooled connection that takes the repositories' `?` placeholders."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresDatabase(Database):
    shared = True
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, pool_size: int = 16, connect_timeout_s: float = 10.0):
        super().__init__()
        self.url, self.label = url, without_password(url)
        self._listeners: list = []
        self._listen_thread: threading.Thread | None = None
        try:  # one connection first: a wrong URL or a server that is down is one clear line, at once
            with psycopg.connect(url, connect_timeout=int(connect_timeout_s), autocommit=True) as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise GamioError(f"db={self.label}: cannot use this PostgreSQL database ({describe(exc)}); check the "
                             f"URL and that the server runs and accepts this user") from None
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True, timeout=30,
                                   kwargs={"row_factory": _row_factory, "connect_timeout": int(connect_timeout_s)},
                                   name="gamio")

    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise GamioError(f"db={self.label}: the database has schema version {current}, newer than this "
                                 f"gamio's {SCHEMA_VERSION}; upgrade gamio")
            for version, sql in postgres_migrations():
                if version > current:
                    log.info("migrating the PostgreSQL schema to version %d", version)
                    conn.execute(sql)
            set_meta(_Connection(conn), "schema_version", str(SCHEMA_VERSION))
            set_meta(_Connection(conn), "opened", str(time.time()))

    # ---- transactions --------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        with self.guarded():
            with self.pool.connection() as conn:  # commits on success, rolls back on an exception
                yield _Connection(conn)
        self.wrote()

    @contextmanager
    def read(self):
        with self.guarded():
            with self.pool.connection() as conn:
                yield _Connection(conn)

    def is_storage_fault(self, exc: BaseException) -> bool:
        return isinstance(exc, (psycopg.OperationalError, psycopg.errors.DiskFull, psycopg.errors.ReadOnlySqlTransaction)) \
            or type(exc).__name__ == "PoolTimeout"

    def lock_game(self, db, game_id: str) -> None:
        db.execute("SELECT 1 FROM games WHERE id = ? FOR UPDATE", (game_id,))

    def lock_key(self, db, key: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def notify(self, db, payload: str) -> None:
        db.execute("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, payload))

    # ---- notifications -----------------------------------------------------------------------------------

    def listen(self, callback) -> None:
        self._listeners.append(callback)
        if self._listen_thread is None:
            self._listen_thread = threading.Thread(target=self._listen_loop, name="gamio-db-listen", daemon=True)
            self._listen_thread.start()

    def _listen_loop(self) -> None:
        """One connection LISTENs for the process; a lost connection is opened again (a missed notification
        costs at most a poll interval: waiters also look at the database now and then)."""
        while not self.closed:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self.closed:
                        for note in conn.notifies(timeout=1.0):
                            for callback in list(self._listeners):
                                callback(note.payload)
            except psycopg.Error as exc:
                if not self.closed:
                    log.warning("listening for other processes failed (%s); again in 1 s", describe(exc))
                    time.sleep(1.0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pool.close()
        if self._listen_thread is not None:
            self._listen_thread.join(5)
