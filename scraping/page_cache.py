"""The raw-page cache: content-addressed HTML files on disk plus an SQLite index keyed by (story_id, link_id).

    <cache_dir>/pages/<sha256[:2]>/<sha256>.html   the page exactly as the server sent it
    <cache_dir>/index.sqlite                       pages(story_id, link_id, sha256, url, fetched)

`link_id` is "" for a story's start page and the followed link's id otherwise. A page file is written
(temp file, fsync, rename) before its index row is committed, one transaction per page, in WAL mode: a
crawler killed with `kill -9` at any moment leaves every page it had fetched usable and at worst one
orphan file, so a rerun fetches nothing twice. The same folder is what `source=snapshot` reads offline.
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from adventure.errors import GamioError
from adventure.publish import write_file

START_LINK = ""  # the index key of a story's start page
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    story_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    url TEXT NOT NULL,
    fetched REAL NOT NULL,
    PRIMARY KEY (story_id, link_id)
)
"""


class PageCache:
    def __init__(self, cache_dir: str | Path, *, read_only: bool = False):
        self.dir = Path(cache_dir)
        self.read_only = read_only
        index = self.dir / "index.sqlite"
        if read_only:
            if not index.is_file():
                raise GamioError(f"no page cache in {self.dir} (expected {index}); crawl with source=cys first")
            # immutable=1: no WAL/shm files are created, so a snapshot shipped read-only still opens.
            self._db = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        else:
            (self.dir / "pages").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(index, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut), which is the case to cover here.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()

    def _blob_path(self, digest: str) -> Path:
        return self.dir / "pages" / digest[:2] / f"{digest}.html"

    def get(self, story_id: str, link_id: str) -> str | None:
        row = self._db.execute("SELECT sha256 FROM pages WHERE story_id = ? AND link_id = ?",
                               (str(story_id), str(link_id))).fetchone()
        if row is None:
            return None
        path = self._blob_path(row[0])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise GamioError(f"page cache {self.dir} is damaged: {path} is indexed but missing") from None
        if hashlib.sha256(data).hexdigest() != row[0]:
            raise GamioError(f"page cache {self.dir} is damaged: {path} does not match its sha256")
        return data.decode("utf-8")

    def put(self, story_id: str, link_id: str, html: str, url: str) -> str:
        """Store one fetched page and commit its index row; returns the page's sha256."""
        if self.read_only:
            raise GamioError(f"page cache {self.dir} is opened read-only")
        data = html.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        path = self._blob_path(digest)
        if not path.exists():
            write_file(path, data)
        with self._db:  # one committed transaction per page
            self._db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)",
                             (str(story_id), str(link_id), digest, url, time.time()))
        return digest

    def story_ids(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT story_id FROM pages WHERE link_id = ?", (START_LINK,))
        return sorted((r[0] for r in rows), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "PageCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
