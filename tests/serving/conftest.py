"""Fixtures of the serving tests: a server and Chromium per browser test module (test_browser*.py), an app
factory per module (`make_app(*overrides)`: a test client and its service on the tiny model), and the
storage backends (one real PostgreSQL server per session)."""
from __future__ import annotations

import pytest

from tests.helpers.browser import chromium, served
from tests.helpers.serving import AppFactory


@pytest.fixture(scope="module")
def server(tiny_untrained_dir, tmp_path_factory):
    """A server on the tiny untrained model with short replies (a module may override it with its own)."""
    with served(tiny_untrained_dir, tmp_path_factory, "generation.max_new_tokens=6") as server:
        yield server


@pytest.fixture(scope="session")
def default_server(trained_artifacts, tmp_path_factory):
    """`make demo`'s server settings (engine ct2, the default preset, 55 new tokens) on the briefly trained tiny
    model, over real HTTP: one per session, shared by the modules that play on the defaults."""
    with served(trained_artifacts / "models" / "tiny", tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def make_app(tiny_untrained_dir, tmp_path_factory):
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole session (tests/helpers/postgres.py), stopped at the end."""
    from tests.helpers.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL tests need a PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """`db=` of each backend: a SQLite file, and a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "gamio.sqlite")
    return request.getfixturevalue("postgres_server").fresh_url()
