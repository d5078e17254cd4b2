"""A small Python client of the game API: what a script, the benchmark or a test uses to play.

It speaks only HTTP (requests), so it drives a server in another process exactly as a browser would.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests


def sse_events(response: requests.Response):
    """The Server-Sent Events of a streamed response as they arrive: {"event", "data", "id"} (the fields that were
    sent; data as text), and {"comment": text} for a comment line (a heartbeat)."""
    event: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if not line:  # a blank line ends an event
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = event[name] + "\n" + value if name == "data" and name in event else value
    if event:
        yield event


@dataclass
class Player:
    base_url: str
    game_id: str | None = None
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    statuses: list[int] = field(default_factory=list)  # every HTTP status this player received

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response = self.session.request(method, self.base_url.rstrip("/") + path, headers=headers,
                                        timeout=kwargs.pop("timeout", 120), **kwargs)
        self.statuses.append(response.status_code)
        return response

    def new_game(self, world: str | None = None) -> dict:
        response = self._request("POST", "/api/games", json={} if world is None else {"world": world})
        response.raise_for_status()
        data = response.json()
        self.game_id, self.token = data["game_id"], data["token"]
        return data

    def submit(self, action: str, *, max_retries: int = 100) -> dict:
        """POST a turn; on 429 wait as long as Retry-After says and try again. The 202 body."""
        for _ in range(max_retries):
            response = self._request("POST", f"/api/games/{self.game_id}/turns", json={"action": action})
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            return response.json()
        raise RuntimeError(f"queue still full after {max_retries} tries")

    def wait_job(self, job_id: str, timeout_s: float = 300.0, wait_s: int = 30) -> dict:
        """Long-poll the job until it is done, failed or cancelled."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            asked = time.monotonic()
            response = self._request("GET", f"/api/jobs/{job_id}", params={"wait": wait_s})
            response.raise_for_status()
            job = response.json()
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            if time.monotonic() - asked < 0.5:  # answered at once: the server's long-poll cap; do not spin
                time.sleep(1.0)
        raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")

    def stream_job(self, job_id: str, last_event_id: int | None = None, timeout_s: float = 300.0):
        """The job's SSE stream (GET /api/jobs/<id>/stream) as sse_events; closing the generator disconnects."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        with self._request("GET", f"/api/jobs/{job_id}/stream", headers=headers, stream=True,
                           timeout=timeout_s) as response:
            response.raise_for_status()
            yield from sse_events(response)

    def play(self, action: str, timeout_s: float = 300.0) -> dict:
        """One full turn: submit, then wait for the result. The finished job."""
        return self.wait_job(self.submit(action)["job_id"], timeout_s)

    def game(self) -> dict:
        response = self._request("GET", f"/api/games/{self.game_id}")
        response.raise_for_status()
        return response.json()
