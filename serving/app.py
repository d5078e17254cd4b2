"""The Flask app factory, shared by `python -m serving` and any WSGI server (see serving/wsgi.py).

Every error is JSON `{"error": message, "code", "message"}` (English for API users; a stable code and a Russian
message for players: web/messages.py), except a 404 of a page URL (an unknown one, a missing share): a Russian
HTML page (web/pages.py). The API's own errors with their status, Werkzeug's (unknown route,
wrong method, body over the size limit) with theirs, a database that fails under a request 503. Anything else
is a bug, logged with its traceback and answered 500 without details; the tests check that no client input
gets there. Werkzeug's redirects (`//path` -> `/path`, trailing slashes) are off: they echoed the Host header.
Every response carries the security headers below; the page has no inline script or style, so the
Content-Security-Policy can forbid both.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request, send_from_directory
from omegaconf import DictConfig
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from serving.compat.common import error_body
from serving.compat.kobold import kobold_api
from serving.compat.openai import openai_api
from serving.errors import ApiError
from serving.game.tier import GameTier
from serving.service import build_service
from serving.storage import describe, driver_errors
from serving.web.games import api
from serving.web.errors import http_headers, http_status
from serving.web.http import STATIC_DIR
from serving.web.messages import for_player
from serving.web.pages import not_found_page, wants_page
from serving.web.server_info import info_api
from serving.web.tokens import tokens_api
from serving.web.steering import steering_api
from serving.web.story import story_api
from serving.web.stream import stream_api

log = logging.getLogger(__name__)
IMPORT_ENDPOINT = "story_api.import_game"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(cfg: DictConfig, service: GameTier | None = None) -> Flask:
    """The app for a serving config (model loaded, worker started); `service` to reuse an existing one."""
    service = service or build_service(cfg)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = service.limits.max_body_bytes
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # Russian stays readable in responses
    app.extensions["gamio"] = service
    app.url_map.merge_slashes = False  # no 308 from //path to a Location built from the Host header
    for blueprint in (api, steering_api, story_api, stream_api, info_api, tokens_api, openai_api, kobold_api):
        app.register_blueprint(blueprint)

    @app.before_request
    def import_body_limit():
        if request.endpoint == IMPORT_ENDPOINT:  # whatever gamio exports, it imports: its own, larger limit
            request.max_content_length = service.limits.max_import_bytes

    @app.after_request
    def security_headers(response):
        if 300 <= response.status_code < 400 and "Location" in response.headers:
            # Werkzeug's routing redirects (//x -> /x, "" -> /) build Location from the Host header; the app
            # itself never redirects, so any redirect is answered as the unknown path it is.
            response = jsonify({"error": "no such page"})
            response.status_code = 404
        response.headers.update(SECURITY_HEADERS)
        if response.mimetype == "application/json":
            response.headers["Cache-Control"] = "no-store"  # tokens and games are nobody else's to keep
        return response

    @app.get("/")
    def play_page():
        return send_from_directory(STATIC_DIR, "index.html")

    def game_error(status: int, message: str, headers: dict | None = None) -> dict:
        """The game API's error: `error` (English, for API users), a stable `code` and a Russian `message`."""
        code, russian = for_player(status, message, (headers or {}).get("Retry-After"))
        return {"error": message, "code": code, "message": russian}

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        status, headers = http_status(exc), http_headers(exc)
        if status == 404 and wants_page():  # /s/<id> of a missing or revoked share
            return not_found_page()
        return jsonify(game_error(status, exc.message, headers)), status, headers

    def error(status: int, message: str):
        """The game API's error; under the OpenAI / Kobold routes (an unknown one too) the shape their clients
        read."""
        return jsonify(error_body(request.path, status, message) or game_error(status, message)), status

    def database_error(exc: Exception):
        log.error("database error under a request: %s", describe(exc))
        return error(503, f"the game database is unavailable right now ({describe(exc)}); try again later")

    for driver_error in driver_errors():
        app.register_error_handler(driver_error, database_error)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = exc.description or exc.name
        if isinstance(exc, RequestEntityTooLarge):
            key = "max_import_bytes" if request.endpoint == IMPORT_ENDPOINT else "max_body_bytes"
            message = (f"the request body is over the limit of {request.max_content_length} bytes "
                       f"(limits.{key})")
        if exc.code == 404 and wants_page():  # an unknown page URL: a Russian page, not JSON
            return not_found_page()
        return error(exc.code or 500, message)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("internal error")
        return error(500, "internal server error")

    return app
