"""Abuse and fairness: who the client is, per-client rate limits, and the cap on long-polls.

- A client is the TCP peer's address (`request.remote_addr`). Behind a reverse proxy every request comes from
  the proxy, so `limits.trusted_proxies` names the proxies whose `X-Forwarded-For` is believed: the client is the
  rightmost address in it that is not a trusted proxy (a client can prepend anything, never append).
- Game creation and turns are rate limited per client with token buckets (`limits.games_per_minute`,
  `limits.turns_per_minute`; a full minute's allowance may come as a burst): beyond, 429 with Retry-After.
  With a shared (PostgreSQL) database the buckets and the client's share of the queue are counted in the
  database, so the limits hold across server processes.
- Long-polls (`GET /api/jobs/<id>?wait=`) each hold a request thread. At most `limits.max_long_polls` wait at
  once (below the thread count, so /healthz and the page always find a thread), and at most
  `limits.max_long_polls_per_client` per client; a request beyond that is answered at once with the job's
  current state, exactly as `wait=0` would be, so a well-behaved client just polls again.
"""
from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

from serving.errors import TooManyRequests


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxies) -> str:
    """The client of a request: the peer, or behind trusted proxies the last untrusted X-Forwarded-For hop."""
    peer = remote_addr or "unknown"
    if not trusted_proxies or not _in(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def parse_networks(addresses) -> list:
    return [ipaddress.ip_network(str(a), strict=False) for a in addresses]


class RateLimit:
    """A token bucket per client: `per_minute` tokens, refilled evenly; each accepted request takes one."""

    MAX_CLIENTS = 10_000  # buckets of clients that are back to full are dropped beyond this

    def __init__(self, per_minute: int, what: str, clock=time.monotonic):
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self.what, self.clock = what, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Take a token, or raise 429 with the seconds until the next one."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1:
                wait = math.ceil((1 - tokens) / self.rate)
                self._buckets[client] = (tokens, now)
                raise TooManyRequests(f"too many {self.what} from your address (the limit is "
                                      f"{self.capacity:g} a minute); try again in {wait} s", wait)
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for client, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self.rate >= self.capacity:
                del self._buckets[client]


class LongPolls:
    """Counts the long-polls waiting now, in total and per client."""

    def __init__(self, max_total: int, max_per_client: int):
        self.max_total, self.max_per_client = max_total, max_per_client
        self._per_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        with self._lock:
            return sum(self._per_client.values())

    @contextmanager
    def slot(self, client: str) -> Iterator[bool]:
        """`with polls.slot(client) as granted:` wait only if granted; the slot is freed on exit."""
        with self._lock:
            granted = (sum(self._per_client.values()) < self.max_total
                       and self._per_client[client] < self.max_per_client)
            if granted:
                self._per_client[client] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._per_client[client] -= 1
                    if not self._per_client[client]:
                        del self._per_client[client]


class SharedRateLimit:
    """The same token bucket, counted in the database (PostgreSQL): every server process sees one bucket per
    client (storage Store.take_token)."""

    def __init__(self, store, per_minute: int, what: str):
        self.store, self.per_minute, self.what = store, per_minute, what

    def take(self, client: str) -> None:
        self.store.take_token(f"{self.what}:{client}", self.per_minute, self.what)


class ClientLimits:
    """Everything per client that the routes consult, built from the `limits` config. With `store` (a database
    several processes share) the rate limits are counted there; long-polls hold this process's threads, so they
    are counted here."""

    def __init__(self, limits, store=None):
        self.trusted_proxies = parse_networks(limits.trusted_proxies)
        bucket = RateLimit if store is None else (lambda per_minute, what: SharedRateLimit(store, per_minute, what))
        self.games = bucket(int(limits.games_per_minute), "new games")
        self.turns = bucket(int(limits.turns_per_minute), "turns")
        self.tools = bucket(int(limits.tools_per_minute), "token counts, context views and steering changes")
        self.long_polls = LongPolls(int(limits.max_long_polls), int(limits.max_long_polls_per_client))

    def client(self, request) -> str:
        return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), self.trusted_proxies)
