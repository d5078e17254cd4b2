"""Driving the play page in headless Chromium (Debian's, through Playwright) against a real server in a thread.

One server and one browser per test module (`served`, `chromium`); every test opens its own browser context, so
its localStorage (the games list) starts empty. The page runs under its Content-Security-Policy (no inline script,
no eval): waits use locators, and `page.evaluate` runs through the DevTools protocol, which the policy does not
govern. `Console.assert_no_csp_violation()` checks that nothing the page itself did was refused.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from serving.launch import ONE_ADDRESS_MANY_PLAYERS

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}

needs_chromium = [pytest.mark.slow,
                  pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (run `make browser`)")]


def sync_api():
    return pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")


@contextlib.contextmanager
def served(model_dir, tmp_path_factory, *overrides: str):
    """A waitress server on the tiny model (`generation.max_new_tokens` and the rest from `overrides`); all
    requests come from one address, so the per-client limits are lifted. `.url`, and `.service` to reach in."""
    from serving.app import create_app
    from serving.config import compose_serving_config
    from serving.launch import ServerThread

    cfg = compose_serving_config([f"model={model_dir}", f"paths.artifacts={tmp_path_factory.mktemp('serving')}",
                                  *ONE_ADDRESS_MANY_PLAYERS, *overrides])
    app = create_app(cfg)
    server = ServerThread(app)
    server.service = app.extensions["gamio"]
    try:
        yield server
    finally:
        server.stop()
        app.extensions["gamio"].close()


@contextlib.contextmanager
def chromium():
    api = sync_api()
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        api.expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    def __init__(self, page):
        self.messages: list[str] = []
        page.on("console", lambda message: self.messages.append(message.text))

    def assert_no_csp_violation(self) -> None:
        assert not [m for m in self.messages if "Content Security Policy" in m], self.messages


def new_page(browser, viewport: dict | None = None, init_script: str | None = None):
    """(page, console) in a fresh context (empty localStorage)."""
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, Console(page)


def expect(locator):
    return sync_api().expect(locator)


def start_game(page, url: str, world: str, arena: bool = False) -> None:
    page.goto(url)
    page.fill("#world", world)
    if arena:
        page.check("#arena")
    page.click("#start")
    expect(page.locator("#story p.world")).to_have_text(world)


def play(page, action: str, turns_after: int, variants: int = 1) -> None:
    """Send a turn and wait until it is written (the story shows `turns_after` turns, the form is usable)."""
    page.select_option("#variants", str(variants))
    page.fill("#action", action)
    page.click("#send")
    expect(page.locator("#story .turn:not(.pending)")).to_have_count(turns_after)
    expect(page.locator("#send")).to_be_enabled()


def export_file(tmp_path: Path, world: str, turns: list[tuple[str, str]], **extra) -> Path:
    """A json export (the import format) of a game with `turns` as (action, result)."""
    data = {"format": "gamio-game", "version": 1, "world": world, **extra,
            "turns": [{"action": a, "chosen": 0, "variants": [{"text": r, "model": "tiny"}]} for a, r in turns]}
    path = tmp_path / "game.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
