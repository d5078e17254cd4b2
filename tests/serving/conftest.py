"""Fixtures of the browser tests (test_browser*.py): one server and one Chromium per test module."""
from __future__ import annotations

import pytest

from tests.helpers.browser import chromium, served


@pytest.fixture(scope="module")
def server(tiny_untrained_dir, tmp_path_factory):
    """A server on the tiny untrained model with short replies (a module may override it with its own)."""
    with served(tiny_untrained_dir, tmp_path_factory, "generation.max_new_tokens=6") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser
