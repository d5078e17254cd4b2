"""A polite HTTP client for crawling: one cookie session, timeouts, retries with backoff, delay, robots.txt.

Every request has a timeout (a hung server never hangs the crawl). 429, 5xx, timeouts and dropped
connections are retried with exponential backoff; a `Retry-After` header (seconds or an HTTP date) is
honoured as the wait when the server gives one. `delay` spaces consecutive requests, retries included.
"""
from __future__ import annotations

import email.utils
import logging
import time
import urllib.robotparser
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import requests

from adventure.errors import GamioError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "gamio-scraper/0.1 (research; a few requests per second at most)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(GamioError):
    """A request that failed for good (after retries), or that robots.txt forbids."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class ClientStats:
    requests: int = 0  # every HTTP request sent, retries and robots.txt included
    retries: int = 0
    waits: list[float] = field(default_factory=list)  # backoff sleeps, in seconds (Retry-After shows here)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    def __init__(self, *, user_agent: str = DEFAULT_USER_AGENT, timeout: float = 20.0, max_retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 60.0, delay: float = 1.0, respect_robots: bool = True,
                 sleep: Callable[[float], None] = time.sleep):
        if timeout <= 0:
            raise GamioError(f"source.timeout must be > 0 seconds, got {timeout}")
        if delay < 0 or backoff < 0 or max_retries < 0:
            raise GamioError("source.delay, source.backoff and source.max_retries must not be negative")
        self.user_agent, self.timeout, self.max_retries = user_agent, float(timeout), int(max_retries)
        self.backoff, self.max_backoff, self.delay = float(backoff), float(max_backoff), float(delay)
        self.respect_robots, self._sleep = respect_robots, sleep
        self.session = self._new_session()
        self.stats = ClientStats()
        self._last_request = float("-inf")
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = self.user_agent
        return session

    def reset_session(self) -> None:
        """Forget cookies (a new viewer session), keeping settings and counters."""
        self.session.close()
        self.session = self._new_session()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------------------------------------------
    def get(self, url: str) -> requests.Response:
        return self.request("GET", url)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.request("POST", url, data=data)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """Send with retries; returns the final response (a 4xx other than 429 is returned, not raised)."""
        if self.respect_robots and not self.allowed(url):
            raise FetchError(f"robots.txt of {urlsplit(url).netloc} disallows {url} "
                             f"(set source.respect_robots=false only for a site you run yourself)")
        attempt = 0
        while True:
            self._wait_for_turn()
            self.stats.requests += 1
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                problem, status, hint = f"{type(exc).__name__}: {exc}", None, None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem, status = f"HTTP {response.status_code}", response.status_code
                hint = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt >= self.max_retries:
                raise FetchError(f"{method} {url} failed after {attempt + 1} attempt(s): {problem}", status)
            wait = hint if hint is not None else self.backoff * (2 ** attempt)
            wait = min(wait, self.max_backoff)
            log.warning("%s %s: %s; retry %d/%d in %.1f s", method, url, problem, attempt + 1, self.max_retries,
                        wait)
            self.stats.retries += 1
            self.stats.waits.append(wait)
            self._sleep(wait)
            attempt += 1

    def _wait_for_turn(self) -> None:
        pause = self.delay - (time.monotonic() - self._last_request)
        if pause > 0:
            self._sleep(pause)
        self._last_request = time.monotonic()

    # ------------------------------------------------------------------------------------------------------
    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our user agent fetch `url` (read once per site, with our own timeouts)."""
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self._robots:
            self._robots[site] = self._read_robots(urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", "")))
        parser = self._robots[site]
        return True if parser is None else parser.can_fetch(self.user_agent, url)

    def _read_robots(self, robots_url: str) -> urllib.robotparser.RobotFileParser | None:
        # urllib's own RobotFileParser.read() has no timeout; fetch with requests and hand it the lines.
        parser = urllib.robotparser.RobotFileParser(robots_url)
        self._wait_for_turn()
        self.stats.requests += 1
        try:
            response = self.session.get(robots_url, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("could not read %s (%s); crawling as if it allowed everything", robots_url, exc)
            return None
        if response.status_code in (401, 403):
            parser.disallow_all = True  # the convention urllib's parser follows too
        elif response.status_code >= 400:
            return None  # no robots.txt: everything is allowed
        else:
            parser.parse(response.text.splitlines())
        return parser
