"""Errors a client can cause, in the game's own terms: what went wrong, never how HTTP says it.

They are GamioErrors: the message names the problem. web/errors.py is the one table that turns each kind into a
status code and headers (the API contract's error list); compat/ answers them in its clients' shapes from it.
"""
from __future__ import annotations

from adventure.errors import GamioError


class ApiError(GamioError):
    """A request the game refuses; `message` is shown to the client as it is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    """A malformed request: a wrong type, a value out of range, an unknown field."""


class Unauthorized(ApiError):
    """No credentials where some are needed (a game token, an API key)."""


class Forbidden(ApiError):
    """Credentials that do not open this game."""


class NotFound(ApiError):
    """No such game, turn, job or share."""


class Conflict(ApiError):
    """The game's state does not allow it now: a turn is pending, or there is no turn to undo/retry."""


class TooLarge(ApiError):
    """A field, a list or a body over its limit."""


class TooManyRequests(ApiError):
    """A rate limit, the client's share of the queue, or the whole queue is full: try again in `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))


class QueueFull(TooManyRequests):
    pass


class UnsupportedMediaType(ApiError):
    """A body that is not declared as JSON: also what stops a cross-site <form> from posting to the API."""


class Unavailable(ApiError):
    """The server cannot do it now (the database refuses writes, the worker stopped, the model did not answer)."""
