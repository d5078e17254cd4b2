"""The play page in headless Chromium (Debian's, driven by Playwright): start a game, play two turns against the
tiny model, and see that an action containing <script> is shown as text and never runs. The page runs under its
Content-Security-Policy (no inline script, no eval), so the waits use locators, which need no eval in the page,
and the console must show no CSP violation."""
from __future__ import annotations

import shutil

import pytest

from serving.app import create_app
from serving.config import compose_serving_config
from serving.launch import ServerThread

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if shutil.os.path.exists("/usr/bin/chromium") else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (run `make browser`)")
def test_play_page_two_turns_shows_script_literally(tiny_untrained_dir, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    cfg = compose_serving_config([f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}",
                                  "generation.max_new_tokens=6"])
    app = create_app(cfg)
    server = ServerThread(app)
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> открываю дверь'
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(120_000)
            sync_api.expect.set_options(timeout=120_000)
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            response = page.goto(server.url)
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert page.locator("html").get_attribute("lang") == "ru"
            assert page.locator("#start").inner_text() == "Начать игру"
            page.fill("#world", "Старый маяк на скале. Внизу шумит море.")
            page.click("#start")
            page.wait_for_selector("#story p.world")
            assert page.locator("#story p.world").inner_text() == "Старый маяк на скале. Внизу шумит море."

            for turn, action in enumerate([evil, "поднимаюсь по лестнице"], start=1):
                page.fill("#action", action)
                page.click("#send")
                sync_api.expect(page.locator("#story p.result")).to_have_count(turn)
                sync_api.expect(page.locator("#send")).to_be_enabled()
            actions = page.locator("#story p.action").all_inner_texts()
            assert actions == [evil, "поднимаюсь по лестнице"]  # shown literally, as text
            assert page.locator("#story script, #story img").count() == 0
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#status").inner_text() == ""

            page.click("#undo")
            sync_api.expect(page.locator("#story p.result")).to_have_count(1)
            page.reload()  # the game is kept in this browser and loaded again
            sync_api.expect(page.locator("#story p.action")).to_have_count(1)
            assert page.locator("#story p.action").inner_text() == evil
            assert not [m for m in console if "Content Security Policy" in m], console
            browser.close()
    finally:
        server.stop()
        app.extensions["gamio"].close()
