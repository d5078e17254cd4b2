"""Copy a SQLite game world into PostgreSQL (`python -m serving.migrate <sqlite file> <postgresql url>`, thin
caller: serving/migrate.py): games, turns (variants included), votes and shares (a game's share id), as they are.

Jobs are not copied: a finished job is only a receipt, and a pending one belongs to the server that accepted it
(stop it first: its jobs then have their turns written or are lost with it, as after any stop). Rate-limit
buckets are fresh. The copy is one transaction into a database that holds no games yet, so a failure leaves
nothing half-copied; afterwards the counts of both sides are compared, and any difference is an error.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from tqdm import tqdm

from adventure.errors import GamioError
from serving.storage.database import describe
from serving.storage.postgres import PostgresDatabase
from serving.storage.sqlite import SQLiteDatabase

log = logging.getLogger(__name__)
TABLES = {  # table -> the columns copied (every column the schema has, but the queue's)
    "games": ("id", "token_sha256", "world", "world_en", "version", "created", "touched", "steering", "preset",
              "arena", "share_id", "redo"),
    "turns": ("game_id", "idx", "action", "result", "action_en", "result_en", "created", "job_id", "variants",
              "chosen", "arena", "prompt"),
    "votes": ("game_id", "turn_idx", "prompt", "text_a", "text_b", "model_a", "model_b", "choice", "created"),
}


def counts(conn, read) -> dict[str, int]:
    out = {table: read(conn, f"SELECT COUNT(*) AS n FROM {table}") for table in TABLES}
    out["shares"] = read(conn, "SELECT COUNT(*) AS n FROM games WHERE share_id IS NOT NULL")
    return out


def migrate(sqlite_path: str | Path, url: str, batch: int = 1000) -> dict[str, int]:
    """Copy the world; the counts copied ({games, turns, votes, shares}). GamioError with a one-line reason."""
    path = Path(sqlite_path).expanduser()
    if not path.is_file():
        raise GamioError(f"no SQLite database at {path}")
    source = SQLiteDatabase(path)  # checks its integrity and brings an old file's columns up to date
    target = PostgresDatabase(url)
    try:
        with source.read() as src, target.transaction() as dst:
            if dst.execute("SELECT COUNT(*) AS n FROM games").fetchone()["n"]:
                raise GamioError(f"{target.label} already holds games: migrate into an empty database")
            for table, columns in TABLES.items():
                total = src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                cursor = src.execute(f"SELECT {', '.join(columns)} FROM {table}")
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                with tqdm(total=total, desc=table, unit="row", disable=total < batch) as progress:
                    while rows := cursor.fetchmany(batch):
                        dst.executemany(insert, [tuple(row) for row in rows])
                        progress.update(len(rows))
        with source.read() as src, target.read() as dst:
            copied = counts(src, lambda c, sql: c.execute(sql).fetchone()[0])
            found = counts(dst, lambda c, sql: c.execute(sql).fetchone()["n"])
        if copied != found:
            raise GamioError(f"the copy does not match: {path} has {copied}, {target.label} has {found}")
        return found
    except sqlite3.Error as exc:
        raise GamioError(f"cannot read {path}: {describe(exc)}") from None
    finally:
        source.close()
        target.close()
