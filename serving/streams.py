"""What each job's reply looked like while it was written: the events a stream (SSE) replays.

The worker publishes `token` / `reset` events (adventure/streaming.py) and finally `done` or `failed`; a stream
reads them from any point (an SSE `Last-Event-ID`), so a client that disconnects loses nothing and a reconnect
resumes. Event ids count from 1 per job. Events of finished jobs are kept for `keep_s` seconds (at most
`max_jobs` jobs), long enough for a reconnect; after that a stream of a done job gets its result in one `reset`.
The hub also times each job's first token (time to first token, in /healthz).

A job that runs again (the database refused its result and it went back to the queue) starts its text anew: its
second `running` comes with a `reset` to "", so the replay never glues two attempts together.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class JobEvents:
    created: float  # when the job was accepted (wall clock), for time to first token
    events: list[tuple[int, str, dict]] = field(default_factory=list)
    finished: float | None = None


class StreamHub:
    def __init__(self, keep_s: float = 600.0, max_jobs: int = 2000):
        self.keep_s, self.max_jobs = keep_s, max_jobs
        self._jobs: OrderedDict[str, JobEvents] = OrderedDict()
        self._changed = threading.Condition()
        self._queue_changes = 0  # bumped by notify(): waiting streams look at their queue position again
        self.first_token_s: deque[float] = deque(maxlen=2000)

    def open(self, job_id: str, created: float) -> None:
        with self._changed:
            self._jobs.setdefault(job_id, JobEvents(created))
            self._forget_old()

    def publish(self, job_id: str, kind: str, data: dict) -> None:
        with self._changed:
            job = self._jobs.setdefault(job_id, JobEvents(time.time()))
            wrote = any(k in ("token", "reset") for _, k, _ in job.events)
            if kind in ("token", "reset") and not wrote:
                self.first_token_s.append(time.time() - job.created)
            if kind == "running" and wrote:  # a second attempt: what the first one showed is taken back
                job.events.append((len(job.events) + 1, "reset", {"text": ""}))
            job.events.append((len(job.events) + 1, kind, data))
            if kind in ("done", "failed"):
                job.finished = time.monotonic()
            self._changed.notify_all()

    def known(self, job_id: str) -> bool:
        with self._changed:
            return job_id in self._jobs

    def wait(self, job_id: str, after: int, timeout_s: float) -> tuple[list[tuple[int, str, dict]], bool]:
        """(events with id > after, finished?), waiting up to `timeout_s` for one when there is none yet; also
        returns (empty) when the queue changed, so that a waiting stream can say its new position at once."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            queue_changes = self._queue_changes
            while True:
                job = self._jobs.get(job_id)
                events = [e for e in job.events if e[0] > after] if job else []
                finished = bool(job and job.finished is not None)
                remaining = deadline - time.monotonic()
                if events or finished or remaining <= 0 or self._queue_changes != queue_changes:
                    return events, finished
                self._changed.wait(remaining)

    def notify(self) -> None:
        """Wake the streams: a queue position may have changed."""
        with self._changed:
            self._queue_changes += 1
            self._changed.notify_all()

    def _forget_old(self) -> None:
        now = time.monotonic()
        while self._jobs:
            job_id, job = next(iter(self._jobs.items()))
            expired = job.finished is not None and now - job.finished > self.keep_s
            if not expired and len(self._jobs) <= self.max_jobs:
                return
            del self._jobs[job_id]
