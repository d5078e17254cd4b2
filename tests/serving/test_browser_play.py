"""The play page's moves and looks in headless Chromium at desktop (1280×800) and phone (390×844) sizes, on the
default server (ct2, the default preset, the tiny demo model): the demo-model notice and no arena checkbox, a
scenario from the start screen, «Продолжить» and Enter on an empty line, the Делать / Сказать / История modes,
the token view, the length control, the stop button; then the dark theme and its toggle, the greedy note, and
refusals and failures in Russian (a wrong game token, a network failure, a 429, a dead share link)."""
from __future__ import annotations

import json

import pytest

from tests.helpers.browser import PHONE, expect, needs_chromium, new_page, no_horizontal_overflow
from tests.helpers.serving import Gate

pytestmark = needs_chromium
DESKTOP = {"width": 1280, "height": 800}


def turns_written(page, count: int) -> None:
    expect(page.locator("#story .turn:not(.pending)")).to_have_count(count)
    expect(page.locator("#send")).to_be_enabled()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_scenario_continue_modes_tokens_length_and_stop(default_server, browser, viewport):
    page, console = new_page(browser, viewport=viewport)
    page.goto(default_server.url)
    expect(page.locator("#demo-notice")).to_be_visible()  # the tiny model writes nonsense, and the page says so
    expect(page.locator("#demo-notice")).to_contain_text("бессмыслица")
    assert not page.locator("#arena").is_visible()  # this server has no arena
    expect(page.locator("#scenario option")).to_have_count(13)
    page.select_option("#scenario", "sea_pomor")
    world = page.input_value("#world")
    assert world.startswith("Лето семь тысяч")
    page.click("#start")
    expect(page.locator("#story p.world")).to_have_text(world)

    page.click("#continue")  # the model goes on without a move of the player's
    turns_written(page, 1)
    assert page.locator("#story .turn p.action, #story .turn p.narration").count() == 0
    page.fill("#action", "")
    page.press("#action", "Enter")  # Enter on an empty line continues too
    turns_written(page, 2)
    page.select_option("#mode", "say")
    page.fill("#action", "Кто здесь?")
    page.press("#action", "Enter")
    turns_written(page, 3)
    expect(page.locator("#story .turn p.action").last).to_have_text("Вы говорите: «Кто здесь?»")
    page.select_option("#mode", "story")
    page.fill("#action", "Ветер стих, и над морем повисла тишина.")
    page.click("#send")
    turns_written(page, 4)
    expect(page.locator("#story .turn p.narration").last).to_have_text("Ветер стих, и над морем повисла тишина.")

    page.locator(".turn-tools .tool[title^='Вероятности']").last.click()  # the token view of the last reply
    tokens = page.locator(".token-view .tok")
    expect(tokens.first).to_be_visible()
    assert "".join(tokens.all_text_contents()).strip() == page.locator("#story p.result").last.inner_text().strip()
    tokens.first.click()
    expect(page.locator(".tok-detail")).to_contain_text("Варианты модели")
    assert no_horizontal_overflow(page)

    page.select_option("#length", "30")
    expect(page.locator("#status")).to_have_text("Длина следующих ответов: до 30 токенов.")
    gate = Gate(default_server.service.worker)  # hold the next batch: a turn to stop
    try:
        page.select_option("#mode", "do")
        page.fill("#action", "иду к берегу")
        page.click("#send")
        expect(page.locator("#stop")).to_be_visible()
        assert gate.entered.wait(60)
        assert gate.rows[-1][0].settings.max_new_tokens == 30
        page.click("#stop")
        expect(page.locator("#status")).to_have_text("Ход остановлен: ничего не записано.")
        turns_written(page, 4)
        expect(page.locator("#stop")).to_be_hidden()
    finally:
        gate.close()
    assert no_horizontal_overflow(page)
    console.assert_no_csp_violation()
    page.context.close()


def test_dark_theme_greedy_note_and_russian_failures(default_server, browser):
    page, console = new_page(browser, viewport=DESKTOP)
    page.emulate_media(color_scheme="dark")
    page.goto(default_server.url)
    background = "getComputedStyle(document.body).backgroundColor"
    dark = page.evaluate(background)
    assert dark == "rgb(27, 26, 23)"  # the system's dark scheme is followed
    expect(page.locator("#theme-toggle")).to_have_text("Светлая тема")
    page.click("#theme-toggle")
    assert page.evaluate(background) == "rgb(251, 248, 241)"
    page.reload()
    assert page.evaluate(background) == "rgb(251, 248, 241)"  # the choice is kept
    page.click("#theme-toggle")
    assert page.evaluate(background) == dark

    page.click("#start")
    expect(page.locator("#story p.world")).to_be_visible()
    page.click("#steering-panel > summary")
    page.select_option("#preset", "gamio")  # ct2 cannot stream beams: the page says the reply comes whole
    expect(page.locator("#preset-hint")).to_contain_text("Ответ появится целиком")
    page.select_option("#preset", "greedy")
    page.click("#steering-save")
    expect(page.locator("#steering-status")).to_contain_text("Сохранено")
    expect(page.locator("#greedy-hint")).to_be_visible()
    expect(page.locator("#greedy-hint")).to_contain_text("один и тот же ответ")

    page.route("**/turns", lambda route: route.abort())  # the network fails
    page.fill("#action", "иду")
    page.click("#send")
    expect(page.locator("#status.error")).to_have_text(
        "Нет связи с сервером. Проверьте подключение к интернету и попробуйте ещё раз.")
    page.unroute("**/turns")
    busy = {"error": "too many turns from your address (the limit is 30 a minute); try again in 12 s"}
    page.route("**/turns", lambda route: route.fulfill(status=429, headers={"Retry-After": "12"},
                                                       content_type="application/json", body=json.dumps(busy)))
    page.click("#send")  # a 429 without the server's message: the page names it itself, with the wait
    expect(page.locator("#status.error")).to_have_text("Слишком много запросов. Попробуйте снова через 12 с.")
    page.unroute("**/turns")

    page.evaluate("""localStorage.setItem("gamio.games", JSON.stringify([{id: "nope", token: "x", title: "w"}]));
                     localStorage.setItem("gamio.current", "nope")""")
    page.reload()  # a game the server no longer has: the server's Russian message
    expect(page.locator("#setup-status.error")).to_have_text(
        "Игру не открыть: Игра не найдена: возможно, она удалена после долгого перерыва.")
    missing = page.context.new_page()
    missing.goto(default_server.url + "s/no-such-share")
    expect(missing.locator("h2")).to_have_text("Страница не найдена")
    assert missing.evaluate(background) == dark  # the 404 page has the theme's palette too
    console.assert_no_csp_violation()
    page.context.close()
