"""A consistent copy (`python -m serving.backup <db> <out>`, serving/backup.py) of the game database, taken while the server runs.

Copying `gamio.sqlite` with cp or a backup tool may miss what still sits in its WAL and can catch pages
mid-write; SQLite's online backup API copies one consistent snapshot (WAL included) without stopping the
server: it copies in one step under a read snapshot, which in WAL mode blocks no writer (copying in several
steps would restart whenever the server writes in between, and might never finish on a busy server). The copy is written beside `<out>` and
renamed into place once complete and checked, so `<out>` is always a whole backup, never half of one, and it
is a single self-contained file (journal mode DELETE: no -wal to forget).

Restore: stop the server, replace the db file with the backup (and delete any stale `-wal`/`-shm` beside it),
start the server again.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from adventure.errors import GamioError
from serving.config import is_database_url
from serving.storage.database import describe
from serving.storage.sqlite import quick_check

LIVE_FILES = {"": "the database itself", "-wal": "the database's WAL file", "-shm": "the database's shared memory",
              "-journal": "the database's rollback journal"}


def backup(db: str | Path, out: str | Path) -> Path:
    """Copy the database `db` to `out` atomically; returns `out`. Raises GamioError with a one-line reason."""
    if is_database_url(str(db)):
        raise GamioError("db is a PostgreSQL database: back it up with pg_dump (pg_dump -Fc -f gamio.dump <url>; "
                         "restore with pg_restore -d <url> gamio.dump), see serving/README.md")
    db, out = Path(db).expanduser(), Path(out).expanduser()
    if not db.is_file():
        raise GamioError(f"no database file at {db}")
    if out.is_dir():
        out = out / db.name
    live = {Path(f"{db.resolve()}{suffix}"): what for suffix, what in LIVE_FILES.items()}
    if out.resolve() in live:  # replacing the WAL or shared memory of a running server loses or damages games
        raise GamioError(f"the backup would overwrite {live[out.resolve()]} ({out}); write it elsewhere")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise GamioError(f"cannot write a backup in {out.parent}: {exc.strerror or exc}") from None
    try:
        # mode=rw: never creates a database where there was none, and may make the -shm a live server shares.
        source = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=30)
        target = sqlite3.connect(tmp)
        try:
            source.backup(target)  # one step, one snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            problem = quick_check(target)
            if problem:
                raise GamioError(f"the copy of {db} fails its integrity check ({problem}); the database itself is "
                                 f"probably damaged")
        finally:
            target.close()
            source.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # game tokens are only hashes, but the stories are the players'
        os.replace(tmp, out)
        directory = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except sqlite3.Error as exc:
        raise GamioError(f"cannot back up {db}: {describe(exc)}") from None
    except OSError as exc:
        raise GamioError(f"cannot write the backup {out}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
