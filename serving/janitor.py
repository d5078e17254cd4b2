"""Housekeeping beside the model worker, in its own small thread so that a long batch never delays it:

- WAL checkpoints at least every `storage.checkpoint_interval_s` while writes happen (the worker adds one each
  time the queue falls idle), so that a copy of `gamio.sqlite` alone holds every turn finished more than that
  long ago, and a lost WAL loses at most that much;
- the write probe while the database refuses writes, so /healthz turns back to ok without a restart even when
  no request writes;
- a shared (PostgreSQL) database: this process's claims on running jobs renewed every third of their lease, so
  they lapse (and other processes take the jobs over) only when this process is gone or stuck;
- expiry of abandoned games (`games.expire_after_days`) every `games.expire_every_s`, and once at start.
"""
from __future__ import annotations

import logging
import threading
import time

from serving.storage import Store, StorageUnavailable

log = logging.getLogger(__name__)
DAY_S = 86400.0


class Janitor:
    def __init__(self, store: Store, *, checkpoint_interval_s: float, expire_after_days: float | None,
                 expire_every_s: float):
        self.store = store
        self.checkpoint_interval_s = checkpoint_interval_s
        self.expire_after_s = None if expire_after_days is None else expire_after_days * DAY_S
        self.expire_every_s = expire_every_s
        self.expired = 0  # games deleted since start (/healthz)
        self._next_expiry = time.monotonic() + expire_every_s
        self._next_renewal = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.expire()  # at start: whatever went stale while the server was down
        self._thread = threading.Thread(target=self._loop, name="gamio-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def expire(self) -> int:
        if self.expire_after_s is None:
            return 0
        try:
            removed = self.store.expire(self.expire_after_s)
        except StorageUnavailable as exc:
            log.warning("expiry of abandoned games postponed: %s", exc)
            return 0
        if removed:
            log.info("expired %d game(s) untouched for %.4g days", removed, self.expire_after_s / DAY_S)
        self.expired += removed
        return removed

    def tick(self) -> None:
        """One round of housekeeping (the thread's loop body; tests call it directly)."""
        database = self.store.database
        database.probe()
        if self.store.shared and time.monotonic() >= self._next_renewal:
            self._next_renewal = time.monotonic() + self.store.lease_s / 3
            try:
                self.store.renew_leases()
            except StorageUnavailable as exc:
                log.warning("cannot renew the claims on running jobs: %s", exc)
        if database.checkpoint_due(self.checkpoint_interval_s, idle=False):
            database.checkpoint()
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + self.expire_every_s
            self.expire()

    def _loop(self) -> None:
        # A quarter of the interval: a write waits at most interval + 1/4 for its checkpoint.
        period = min(1.0, self.checkpoint_interval_s / 4)
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - housekeeping must never stop; the next tick tries again
                log.exception("housekeeping failed")
