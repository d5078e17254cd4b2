"""The play page's story tools in Chromium against the tiny untrained model: swipes between variants (n and
retry) that choose, editing a turn in place, undo and redo, the games kept in the browser, and a game opened while
its turn waits in the queue."""
from __future__ import annotations


from tests.helpers.browser import expect, needs_chromium, new_page, play, start_game
from tests.helpers.serving import Gate

pytestmark = needs_chromium


def test_swipes_choose_edit_undo_and_redo(server, browser):
    page, console = new_page(browser)
    start_game(page, server.url, "Заброшенная мельница у реки.")
    play(page, "захожу внутрь", 1, variants=2)
    result, count = page.locator("#story p.result"), page.locator(".swipe-count")
    expect(count).to_have_text("1/2")
    prev, nxt = page.locator(".swipes button").first, page.locator(".swipes button").last
    expect(prev).to_be_disabled()
    first = result.inner_text()
    nxt.click()
    expect(count).to_have_text("2/2")
    expect(nxt).to_be_disabled()
    second = result.inner_text()
    page.reload()  # the choice is the game's, not the page's
    expect(page.locator(".swipe-count")).to_have_text("2/2")
    assert result.inner_text() == second
    prev.click()
    expect(count).to_have_text("1/2")
    expect(result).to_have_text(first)

    page.click("#retry")  # one more variant, chosen
    expect(count).to_have_text("3/3")
    expect(page.locator("#send")).to_be_enabled()

    page.click(".turn-tools .tool[title^='Исправить']")
    page.fill(".turn-editor .edit-action", "осторожно захожу внутрь")
    page.fill(".turn-editor .edit-result", "Внутри темно и пахнет мукой.")
    page.click(".turn-editor .edit-save")
    expect(page.locator("#story p.action")).to_have_text(["осторожно захожу внутрь"])
    expect(result).to_have_text("Внутри темно и пахнет мукой.")
    expect(count).to_have_text("4/4")  # the edited reply is a variant of its own
    page.click(".turn-tools .tool[title^='Исправить']")  # an empty action is refused, the editor stays
    page.fill(".turn-editor .edit-action", "   ")
    page.click(".turn-editor .edit-save")
    expect(page.locator("#status.error")).to_have_text("Действие пустое: напишите, что делает ваш герой.")
    expect(page.locator(".turn-editor .edit-action")).to_have_value("   ")
    page.click(".turn-editor .edit-cancel")
    expect(page.locator("#story p.action")).to_have_text(["осторожно захожу внутрь"])

    expect(page.locator("#redo")).to_be_disabled()
    play(page, "поднимаюсь по лестнице", 2)
    page.click("#undo")
    expect(page.locator("#story .turn")).to_have_count(1)
    page.click("#undo")
    expect(page.locator("#story .turn")).to_have_count(0)
    expect(page.locator("#undo")).to_be_disabled()
    page.click("#redo")
    expect(page.locator("#story p.action")).to_have_text(["осторожно захожу внутрь"])
    expect(result).to_have_text("Внутри темно и пахнет мукой.")
    page.click("#redo")
    expect(page.locator("#story p.action")).to_have_text(["осторожно захожу внутрь", "поднимаюсь по лестнице"])
    expect(page.locator("#redo")).to_be_disabled()
    console.assert_no_csp_violation()
    page.context.close()


def test_games_list_resume_and_forget(server, browser):
    page, console = new_page(browser)
    start_game(page, server.url, "Маяк на скале.")
    play(page, "поднимаюсь к огню", 1)
    page.click("#new-game")
    expect(page.locator("#games-list li .game-title")).to_have_text(["Маяк на скале."])
    start_game(page, server.url, "Пещера под горой.")
    page.reload()  # the game played last opens again
    expect(page.locator("#story p.world")).to_have_text("Пещера под горой.")
    page.click("#new-game")
    titles = page.locator("#games-list li .game-title")
    expect(titles).to_have_text(["Пещера под горой.", "Маяк на скале."])  # the last played first
    page.locator("#games-list li", has_text="Маяк").locator("button.resume").click()
    expect(page.locator("#story p.world")).to_have_text("Маяк на скале.")
    expect(page.locator("#story p.action")).to_have_text(["поднимаюсь к огню"])
    play(page, "смотрю вниз", 2)  # a resumed game plays on
    page.click("#new-game")
    expect(titles).to_have_text(["Маяк на скале.", "Пещера под горой."])
    page.locator("#games-list li", has_text="Пещера").locator("button.forget").click()
    expect(titles).to_have_text(["Маяк на скале."])
    page.reload()  # forgotten for good; no game is current, so the list shows
    expect(titles).to_have_text(["Маяк на скале."])
    assert page.locator("#setup").is_visible()
    console.assert_no_csp_violation()
    page.context.close()


def test_a_reload_follows_the_turn_still_queued_or_written(server, browser):
    """The worker is held inside a batch: one game's turn is being written, another's waits in the queue."""
    gate = Gate(server.service.worker)  # opened at the end: later batches pass straight through
    try:
        writing, console = new_page(browser)
        start_game(writing, server.url, "Башня. Лестница уходит вверх.")
        writing.fill("#action", "поднимаюсь")
        writing.click("#send")
        assert gate.entered.wait(30)
        waiting, _ = new_page(browser)
        start_game(waiting, server.url, "Колодец во дворе.")
        waiting.fill("#action", "заглядываю в колодец")
        waiting.click("#send")
        expect(waiting.locator("#status")).to_have_text("В очереди: место 1")
        for page in (writing, waiting):
            page.reload()  # the game opens again and follows its pending turn
        expect(waiting.locator("#status")).to_have_text("В очереди: место 1")  # the stream's `queued` event
        expect(writing.locator("#status")).to_have_text("Модель пишет продолжение…")  # its `running` event
        for page in (writing, waiting):
            expect(page.locator("#send")).to_be_disabled()
            expect(page.locator("#undo")).to_be_disabled()
    finally:
        gate.opened.set()
    for page, turns in ((writing, 1), (waiting, 1)):
        expect(page.locator("#story .turn:not(.pending)")).to_have_count(turns)
        expect(page.locator("#send")).to_be_enabled()
        expect(page.locator("#status")).to_have_text("")
        page.context.close()
    console.assert_no_csp_violation()
