"""The pages a player opens (not the JSON API): the play page, and a Russian 404 page for a share link that is
missing or revoked and for any unknown page URL. JSON routes (/api/, /v1/, /healthz) keep answering JSON."""
from __future__ import annotations

from flask import request, send_from_directory

from serving.web.http import STATIC_DIR

JSON_PREFIXES = ("/api/", "/v1/", "/healthz")


def wants_page() -> bool:
    """Whether an unknown URL is a page a browser opened (answered as HTML) rather than an API route."""
    return request.method in ("GET", "HEAD") and not request.path.startswith(JSON_PREFIXES)


def not_found_page():
    """The Russian 404 page (status 404, text/html)."""
    response = send_from_directory(STATIC_DIR, "not_found.html", max_age=0)
    response.status_code = 404
    return response
