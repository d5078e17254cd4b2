"""The one table from the game's errors (serving/errors.py) to HTTP: status code and headers. The game API
(serving/app.py) and the OpenAI / Kobold routes (compat/common.py) both answer through it."""
from __future__ import annotations

from serving.errors import (ApiError, BadRequest, Conflict, Forbidden, NotFound, TooLarge, TooManyRequests,
                            Unauthorized, Unavailable, UnsupportedMediaType)

STATUS = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,  # QueueFull too
    Unavailable: 503,
}


def http_status(exc: ApiError) -> int:
    """The status of the nearest listed class (400 for any other refusal)."""
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 400)


def http_headers(exc: ApiError) -> dict[str, str]:
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="gamio"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}
