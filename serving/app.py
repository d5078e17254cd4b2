"""The Flask app factory, shared by `python -m serving` and any WSGI server (see serving/wsgi.py).

Every error is JSON `{"error": message}`: the API's own errors with their status, Werkzeug's (unknown route,
wrong method, body over the size limit) with theirs. Anything else is a bug, logged with its traceback and
answered 500 without details; the tests check that no client input gets there.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, jsonify, send_from_directory
from omegaconf import DictConfig
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from serving.api import api
from serving.errors import ApiError
from serving.service import GameService, build_service

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(cfg: DictConfig, service: GameService | None = None) -> Flask:
    """The app for a serving config (model loaded, worker started); `service` to reuse an existing one."""
    service = service or build_service(cfg)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = service.limits.max_body_bytes
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # Russian stays readable in responses
    app.extensions["gamio"] = service
    app.register_blueprint(api)

    @app.get("/")
    def play_page():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify({"error": exc.message}), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = exc.description or exc.name
        if isinstance(exc, RequestEntityTooLarge):
            message = f"the request body is over the limit of {service.limits.max_body_bytes} bytes"
        return jsonify({"error": message}), exc.code or 500

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("internal error")
        return jsonify({"error": "internal server error"}), 500

    return app
