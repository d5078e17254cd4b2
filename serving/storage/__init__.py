"""The game world's storage: typed records (records.py), the repositories (store.py, jobs.py, story.py) over one
database interface (database.py) with two backends, SQLite (sqlite.py, the embedded default) and PostgreSQL
(postgres.py: several server processes share one game world). Nothing above this package imports a database
driver or names a column."""
from __future__ import annotations

from serving.storage.database import StorageUnavailable, describe
from serving.storage.store import Store, open_store


def driver_errors() -> tuple[type[BaseException], ...]:
    """The drivers' own exception types (a fault that escaped a repository is answered 503, not 500)."""
    import sqlite3

    import psycopg

    return (sqlite3.Error, psycopg.Error)


__all__ = ["Store", "StorageUnavailable", "describe", "driver_errors", "open_store"]
