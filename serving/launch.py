"""Start a game server and learn its URL: in a subprocess (`python -m serving ...`) or in a thread.

Used by the benchmark, the tests and anyone scripting the server. With `port=0` the OS picks a free port and
the server logs its URL, which is read here: no port guessing, no races.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from adventure.paths import REPO_ROOT

_URL = re.compile(r"gamio is serving .* on (http://\S+/)")
# Load tests play many games from one address, which the per-client limits (rightly) treat as one client.
ONE_ADDRESS_MANY_PLAYERS = ["limits.games_per_minute=100000", "limits.turns_per_minute=100000",
                            "limits.max_queued_per_client=100000", "limits.max_long_polls_per_client=100000",
                            "limits.max_connections_per_client=100000"]


class ServerProcess:
    """`python -m serving <overrides>` in a subprocess; `.url` once it listens. Stop with .stop() or .kill()."""

    def __init__(self, overrides: list[str], *, log_path: Path, timeout_s: float = 300.0, env: dict | None = None):
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._start_offset = self._log.tell()  # a restart appends to the same log: look only at the new part
        self.process = subprocess.Popen([sys.executable, "-m", "serving", *overrides], cwd=REPO_ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.url = self._wait_for_url(timeout_s)

    def _wait_for_url(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._start_offset)
                text = fh.read().decode("utf-8", errors="replace")
            match = _URL.search(text)
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{text[-3000:]}")
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"the server did not start within {timeout_s} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the server can tell."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._log.close()


class ServerThread:
    """A waitress server for an existing Flask app, in a daemon thread of this process (port 0)."""

    def __init__(self, app, host: str = "127.0.0.1", threads: int = 48):
        from serving.server import create_waitress_server

        self.server = create_waitress_server(app, host, 0, threads)
        self.url = f"http://{host}:{int(self.server.effective_port)}/"
        self.thread = threading.Thread(target=self.server.run, name="gamio-test-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.close()
        for channel in list(getattr(self.server, "_map", {}).values()):  # an idle keep-alive connection would keep
            channel.close()                                               # waitress' loop (and this join) waiting
        self.thread.join(10)
