"""The play page in headless Chromium (Debian's, driven by Playwright): start a game, play two turns against the
tiny model, and see that an action containing <script> is shown as text and never runs; the page on a phone.
The page runs under its Content-Security-Policy (no inline script, no eval), so the waits use locators, which need
no eval in the page, and the console must show no CSP violation. More of the page: test_browser_*.py."""
from __future__ import annotations


from tests.helpers.browser import PHONE, expect, needs_chromium, new_page, no_horizontal_overflow, play, start_game

pytestmark = needs_chromium


def test_play_page_two_turns_shows_script_literally(server, browser):
    page, console = new_page(browser)
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> открываю дверь'
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
        expect(page.locator("#story p.result")).to_have_count(turn)
        expect(page.locator("#send")).to_be_enabled()
    actions = page.locator("#story p.action").all_inner_texts()
    assert actions == [evil, "поднимаюсь по лестнице"]  # shown literally, as text
    assert page.locator("#story script, #story img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#status").inner_text() == ""

    page.click("#undo")
    expect(page.locator("#story p.result")).to_have_count(1)
    page.reload()  # the game is kept in this browser and loaded again
    expect(page.locator("#story p.action")).to_have_count(1)
    assert page.locator("#story p.action").inner_text() == evil
    console.assert_no_csp_violation()
    page.context.close()


def test_long_poll_when_the_browser_has_no_event_source_or_the_stream_fails(server, browser):
    page, console = new_page(browser, init_script="delete window.EventSource")
    start_game(page, server.url, "Подвал. Капает вода.")
    assert page.evaluate("typeof EventSource") == "undefined"
    play(page, "зажигаю свечу", 1)
    play(page, "иду к двери", 2)
    assert page.locator("#story p.action").all_inner_texts() == ["зажигаю свечу", "иду к двери"]
    assert page.locator("#status").inner_text() == ""
    page.context.close()

    page, console = new_page(browser)
    streams, polls = [], []
    page.route("**/stream", lambda route: (streams.append(route.request.url), route.abort()))
    page.on("request", lambda request: polls.append(request.url) if "?wait=" in request.url else None)
    start_game(page, server.url, "Подвал. Капает вода.")
    play(page, "зажигаю свечу", 1)
    assert len(streams) == 1 and polls, (streams, polls)  # the failed stream was not retried: the long-poll took over
    assert page.locator("#status").inner_text() == ""
    console.assert_no_csp_violation()
    page.context.close()


def test_phone_viewport_panels_collapse_and_nothing_scrolls_sideways(server, browser):
    page, console = new_page(browser, viewport=PHONE)
    long_word = "Ааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааа"
    start_game(page, server.url, "Маяк. " + long_word)
    assert no_horizontal_overflow(page)
    play(page, "смотрю на море " + long_word, 1)
    for panel in ("#steering-panel", "#context-panel", "#tools-panel"):  # collapsed until opened
        assert page.locator(panel).get_attribute("open") is None
        assert not page.locator(panel + " button").first.is_visible()
    box = page.locator("#send").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    for panel in ("#steering-panel", "#context-panel", "#tools-panel"):
        page.click(panel + " > summary")
    page.click("#wi-add")
    page.locator(".wi-entry .wi-keys").fill("море")
    page.locator(".wi-entry .wi-text").fill("Море здесь холодное и серое. " + long_word)
    page.fill("#memory", "Я смотритель маяка.")
    page.click("#steering-save")
    expect(page.locator("#steering-status")).to_contain_text("Сохранено")
    page.fill("#action", "иду к морю")
    page.click("#context-refresh")
    expect(page.locator("#context-parts .part-world_info.triggered")).to_have_count(1)
    page.click("#share")
    expect(page.locator("#share-link")).to_be_visible()
    assert no_horizontal_overflow(page)
    for button in page.locator("#game button:visible").all():  # every visible control fits the screen's width
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, button.inner_text()

    page.click("#new-game")  # the start screen with the games list
    expect(page.locator("#games-list li")).to_have_count(1)
    assert no_horizontal_overflow(page)
    console.assert_no_csp_violation()
    page.context.close()
