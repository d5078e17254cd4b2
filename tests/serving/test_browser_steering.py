"""The play page's steering panel, the context view ("Что видит модель"), import, export and sharing, in Chromium
against the tiny untrained model. The games are imported (a json export with a long history), so nothing here
waits for the model."""
from __future__ import annotations


from tests.helpers.browser import expect, export_file, needs_chromium, new_page

pytestmark = needs_chromium
WORLD = "Старый маяк на скале. Внизу шумит море."
HISTORY = [(f"поднимаюсь на {i}-й пролёт лестницы", f"Ступени скрипят. Это пролёт номер {i}.") for i in range(1, 13)]


def import_game(page, url, path):
    page.goto(url)
    page.set_input_files("#import-file", str(path))
    expect(page.locator("#story p.world")).to_have_text(WORLD)


def test_steering_save_refusals_and_what_the_model_sees(server, browser, tmp_path):
    page, console = new_page(browser)
    import_game(page, server.url, export_file(tmp_path, WORLD, HISTORY))
    expect(page.locator("#story p.action")).to_have_count(len(HISTORY))
    page.click("#steering-panel > summary")
    assert page.locator("#preset option").all_inner_texts() == ["Как в оригинале (лучи)", "Живой рассказ",
                                                                "Предсказуемо"]  # Russian names, in id order

    # A refused save (400: a world-info entry without keys) is shown, and what was typed stays.
    page.fill("#memory", "Я смотритель маяка.")
    page.fill("#authors-note", "Пиши мрачно.")
    page.fill("#note-depth", "2")
    page.select_option("#preset", "greedy")
    page.fill("#banned-words", "дракон, магия")
    page.fill("#stop-strings", "Конец.")
    page.click("#wi-add")
    page.locator(".wi-entry .wi-text").fill("Смотритель прячет ключ под лестницей.")
    page.click("#steering-save")
    expect(page.locator("#steering-status.error")).to_have_text(
        "Записи мир-инфо нужен хотя бы один ключ со словом (или отметка «Постоянная»).")
    assert page.input_value("#memory") == "Я смотритель маяка."
    assert page.locator(".wi-entry .wi-text").input_value() == "Смотритель прячет ключ под лестницей."

    # 413: memory that does not fit this model's context; still nothing lost.
    page.locator(".wi-entry .wi-keys").fill("смотритель, ключ")
    page.fill("#memory", "очень длинная память " * 95)
    page.click("#steering-save")
    expect(page.locator("#steering-status.error")).to_contain_text("Слишком длинный текст")
    assert page.input_value("#memory") == "очень длинная память " * 95

    page.fill("#memory", "Я смотритель маяка.")
    page.click("#wi-add")
    page.locator(".wi-entry .wi-keys").nth(1).fill("дракон")
    page.locator(".wi-entry .wi-text").nth(1).fill("Драконов тут не бывает.")
    page.click("#wi-add")
    page.locator(".wi-entry .wi-text").nth(2).fill("Это север.")
    page.locator(".wi-entry .wi-constant").nth(2).check()
    page.click("#steering-save")
    expect(page.locator("#steering-status")).to_contain_text("Сохранено")
    page.reload()  # saved on the server: the panel shows it again
    page.click("#steering-panel > summary")
    assert page.input_value("#memory") == "Я смотритель маяка."
    assert page.input_value("#authors-note") == "Пиши мрачно."
    assert page.input_value("#note-depth") == "2"
    assert page.input_value("#preset") == "greedy"
    assert page.input_value("#banned-words") == "дракон, магия"
    assert page.input_value("#stop-strings") == "Конец."
    assert page.locator(".wi-entry .wi-keys").first.input_value() == "смотритель, ключ"
    assert page.locator(".wi-entry .wi-constant").nth(2).is_checked()

    # Remove the dragon entry, then look at the prompt of the action "ищу ключ".
    page.locator(".wi-entry .wi-remove").nth(1).click()
    page.click("#steering-save")
    expect(page.locator("#steering-status")).to_contain_text("Сохранено")
    expect(page.locator(".wi-entry")).to_have_count(2)
    page.fill("#action", "ищу ключ")
    page.click("#context-panel > summary")  # opening it asks for the context
    parts = page.locator("#context-parts .part")
    expect(parts.last).to_have_class("part part-action")
    kinds = [c.split()[1] for c in parts.evaluate_all("ps => ps.map(p => p.className)")]
    assert kinds[:4] == ["part-memory", "part-world_info", "part-world_info", "part-world"]
    assert "part-authors_note" in kinds and kinds[-1] == "part-action"
    triggered = page.locator("#context-parts .part-world_info.triggered")
    expect(triggered).to_have_count(2)  # the constant one first, then the one whose key the action mentions
    expect(triggered.first.locator(".part-label")).to_have_text("Мир-инфо: запись 2 (постоянная)")
    expect(triggered.nth(1).locator(".part-label")).to_have_text("Мир-инфо: запись 1 (сработала)")
    expect(triggered.nth(1)).to_contain_text("Смотритель прячет ключ")
    # history_turns=10 keeps the last ten turns: the first two are greyed out, in their place.
    dropped = page.locator("#context-parts .part.dropped")
    expect(dropped).to_have_count(2)
    expect(dropped.first).to_contain_text(HISTORY[0][0])
    assert dropped.first.evaluate("p => getComputedStyle(p).opacity") != "1"
    assert "не поместилось" in dropped.first.locator(".part-tokens").inner_text()
    expect(page.locator("#context-summary")).to_contain_text("Не поместилось ходов: 2")
    expect(page.locator("#context-summary")).to_contain_text("из 457 доступных")
    expect(page.locator(".wi-entry.triggered")).to_have_count(2)  # marked in the panel too
    expect(page.locator(".wi-entry .wi-badge")).to_have_text([" — сработала", " — постоянная"])
    console.assert_no_csp_violation()
    page.context.close()


def test_export_share_and_the_read_only_page(server, browser, tmp_path):
    page, console = new_page(browser)
    import_game(page, server.url, export_file(tmp_path, WORLD, HISTORY[:2]))
    page.click("#tools-panel > summary")
    files = {}
    for fmt in ("txt", "md", "json"):
        with page.expect_download() as download:
            page.click(f"#export-{fmt}")
        assert download.value.suggested_filename == f"gamio.{fmt}"
        files[fmt] = open(download.value.path(), encoding="utf-8").read()
        assert WORLD in files[fmt]
    assert [line for line in files["txt"].splitlines() if line.startswith("> ")] == [f"> {a}" for a, _ in HISTORY[:2]]
    assert f"> **{HISTORY[1][0]}**" in files["md"] and '"gamio-game"' in files["json"]

    page.click("#share")
    link = page.locator("#share-link")
    expect(link).to_be_visible()
    url = link.get_attribute("href")
    assert "/s/" in url and link.inner_text() == url
    reader, reader_console = new_page(browser)
    reader.goto(url)
    expect(reader.locator("#story p.result")).to_have_count(2)
    assert reader.locator("#story p.action").all_inner_texts() == [a for a, _ in HISTORY[:2]]
    assert reader.locator("input, textarea, button, select").count() == 0  # nothing to play with there

    page.reload()  # the link is shown again for a shared game
    page.click("#tools-panel > summary")
    expect(page.locator("#share-link")).to_have_attribute("href", url)
    page.click("#unshare")
    expect(page.locator("#share")).to_be_visible()
    expect(page.locator("#share-box")).to_be_hidden()
    assert reader.goto(url).status == 404  # revoked
    console.assert_no_csp_violation()
    reader_console.assert_no_csp_violation()
    page.context.close()
    reader.context.close()
