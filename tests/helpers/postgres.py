"""A real PostgreSQL server for the tests, started once per test session in a temporary directory.

Debian's `postgresql` package (installed by `make test`, like Chromium) puts `initdb` / `pg_ctl` off PATH:
`pg_config --bindir` or /usr/lib/postgresql/<version>/bin. `initdb` refuses root, so as root the server runs as
the `postgres` user (`runuser -u postgres --`); the data and socket directories are in a fresh temporary
directory it may use; the port is a free one. Each test gets a database of its own (`fresh_url`).
Where the server cannot be installed or started, the tests that need it skip with the reason.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl): `make test` installs Debian's "
                              "postgresql package; apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`initdb` + `pg_ctl start` in a temporary directory; `.stop()` stops it and removes the directory."""

    def __init__(self):
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="gamio-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        self.port = free_port()
        self.prefix: list[str] = []
        self.user = "postgres"
        if os.geteuid() == 0:  # initdb refuses root: the server runs as postgres, which must own its folders
            self.prefix = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        else:
            self.user = os.environ.get("USER") or "postgres"
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                   "--no-locale", "--no-sync"])
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c full_page_writes=off -c max_connections=200")
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-o",
                   options, "-w", "-t", "60", "start"])

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self.prefix + command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {(result.stderr or result.stdout)[-800:]}"
                                      f"{log[-800:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def fresh_url(self) -> str:
        """A new empty database on this server: each test gets its own game world."""
        import psycopg

        name = "gamio_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
