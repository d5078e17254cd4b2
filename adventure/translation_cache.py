"""A persistent translation cache in SQLite, keyed by (model key, sha256 of the source text).

Translating a corpus takes hours with opus-mt on a CPU; the cache makes a rerun, or a run resumed after a
crash, translate nothing it has already translated. WAL mode lets readers (a report, another stage) look at
the file while a translation run writes it, and each `put_many` is one committed transaction.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    model_key TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    translation TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model_key, source_sha256)
)
"""
_CHUNK = 500  # SQLite limits the number of bound parameters per statement


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SQLiteTranslationCache:
    """`get_many(model_key, texts) -> {text: translation}` and `put_many(model_key, {text: translation})`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the threads of a process (the game server's worker), guarded by a lock.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, model_key: str, texts: list[str]) -> dict[str, str]:
        by_hash = {text_sha256(text): text for text in texts}
        hashes = list(by_hash)
        found: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(hashes), _CHUNK):
                chunk = hashes[i: i + _CHUNK]
                rows = self._db.execute(
                    f"SELECT source_sha256, translation FROM translations WHERE model_key = ? "
                    f"AND source_sha256 IN ({','.join('?' * len(chunk))})", [model_key, *chunk])
                found.update((by_hash[digest], translation) for digest, translation in rows)
        return found

    def put_many(self, model_key: str, translations: dict[str, str]) -> None:
        now = time.time()
        rows = [(model_key, text_sha256(source), source, translation, now)
                for source, translation in translations.items()]
        with self._lock, self._db:  # one transaction, committed on exit
            self._db.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SQLiteTranslationCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
