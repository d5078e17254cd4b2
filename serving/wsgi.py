"""WSGI entry point for production servers:

    GAMIO_SERVING_ARGS="model=best paths.artifacts=artifacts" \
        waitress-serve --listen=127.0.0.1:5000 --threads=64 --call serving.wsgi:create_app_from_env

GAMIO_SERVING_ARGS holds the same overrides as `python -m serving` (host/port are the WSGI server's business).
Under waitress-serve, keep `limits.max_long_polls` below its `--threads`; waitress' own errors (malformed
requests) are then its plain text, and SIGTERM ends the process without the final checkpoint (nothing is lost:
SQLite replays the WAL at the next start). `python -m serving` does all three itself.
"""
from __future__ import annotations

import logging
import os
import shlex

from flask import Flask

from serving.app import create_app
from serving.config import compose_serving_config


def create_app_from_env() -> Flask:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    return create_app(compose_serving_config(shlex.split(os.environ.get("GAMIO_SERVING_ARGS", ""))))
