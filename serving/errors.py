"""Errors a client can cause, each with the HTTP status it answers with (the API contract's error list).

They are GamioErrors: the message names the problem, and the route layer turns one into `{"error": message}`.
"""
from __future__ import annotations

from adventure.errors import GamioError


class ApiError(GamioError):
    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str):
        super().__init__(message, {"WWW-Authenticate": 'Bearer realm="gamio"'})


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    """The game's state does not allow it now: a turn is pending, or there is no turn to undo/retry."""
    status = 409


class TooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    """429 with Retry-After: a rate limit, the client's share of the queue, or the whole queue is full."""
    status = 429

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message, {"Retry-After": str(max(1, int(retry_after_s)))})


class QueueFull(TooManyRequests):
    pass


class UnsupportedMediaType(ApiError):
    """A body that is not declared as JSON: also what stops a cross-site <form> from posting to the API."""
    status = 415


class Unavailable(ApiError):
    status = 503
