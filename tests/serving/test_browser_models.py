"""The play page with real replies, in Chromium: a reply streamed into place as the briefly trained tiny model
writes it (it writes sentences, so a stream has something to settle), and blind arena turns against a second
model. One server for both: the trained tiny model, with a copy of the untrained one as its arena rival
(`arena.rate=1`: every turn of an arena game is a comparison; other games play normally). Replies are sampled
without beams and with a mild repetition penalty: the seed's penalty of 5.0 keeps the tiny model from ending
more than one sentence, and a stream shows a reply sentence by sentence."""
from __future__ import annotations

import shutil

import pytest

from tests.helpers.browser import expect, needs_chromium, new_page, play, served, start_game

pytestmark = needs_chromium
WORLD = ("Вы стоите на опушке старого леса. Позади догорает деревня, впереди темнеет тропа, а в кармане у вас лишь "
         "медный ключ и письмо без подписи.")
RECORD_LENGTHS = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const reply = document.querySelector("#story .result.streaming");
    if (reply) window.__lengths.push(reply.textContent.length);
  }).observe(document.getElementById("story"), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def rival(tiny_untrained_dir, tmp_path_factory):
    """The untrained tiny model under another folder name: a second model for the arena."""
    return shutil.copytree(tiny_untrained_dir, tmp_path_factory.mktemp("arena") / "tiny-rival")


@pytest.fixture(scope="module")
def server(trained_artifacts, rival, tmp_path_factory):
    with served(trained_artifacts / "models" / "tiny", tmp_path_factory, "engine=hf",
                "generation=gamio_sample", "generation.max_new_tokens=160", "generation.repetition_penalty=1.3",
                f"arena.models=[{rival}]", "arena.rate=1") as server:
        yield server


def streamed(page, go) -> tuple[list[int], str]:
    """The lengths the reply element had while `go()`'s reply was written, and the reply once done."""
    page.evaluate(RECORD_LENGTHS)
    go()
    expect(page.locator("#story .result.streaming")).to_have_count(0)
    expect(page.locator("#send")).to_be_enabled()
    return [n for n in page.evaluate("window.__lengths") if n], page.locator("#story p.result").last.inner_text()


def test_the_reply_grows_in_place_while_it_is_written(server, browser):
    page, console = new_page(browser)
    start_game(page, server.url, WORLD)
    attempts = [streamed(page, lambda: play(page, "иду по тропе", 1))]
    # The tiny model ends a sentence now and then; retries (each a new seed) until a reply had two to settle.
    while len(set(attempts[-1][0])) < 2 and len(attempts) < 4:
        attempts.append(streamed(page, lambda: page.click("#retry")))
    for lengths, final in attempts:  # what was shown only grew (then at most one take-back), into the final reply
        assert lengths[:-1] == sorted(lengths[:-1]) and (not lengths or lengths[-1] == len(final)), (lengths, final)
    assert len(set(attempts[-1][0])) > 1, attempts  # seen at more than one length before it was done
    if len(attempts) > 1:  # every retry's reply is kept as a variant
        expect(page.locator(".swipe-count")).to_have_text(f"{len(attempts)}/{len(attempts)}")
    assert page.locator("#status").inner_text() == ""
    console.assert_no_csp_violation()
    page.context.close()


def test_arena_turns_show_both_replies_and_reveal_the_models_after_the_vote(server, browser):
    page, console = new_page(browser)
    page.goto(server.url)
    expect(page.locator("#setup .hint").first).to_contain_text("две разные модели, их имена скрыты, пока вы не "
                                                               "выберете")
    start_game(page, server.url, WORLD, arena=True)
    play(page, "стучу в ворота", 1)
    options = page.locator(".arena-choice .arena-option")
    expect(options).to_have_count(2)
    assert page.locator(".arena-option .arena-label").all_inner_texts() == ["Ответ А", "Ответ Б"]
    assert page.locator("#story .models").count() == 0
    assert "tiny" not in page.locator("#story").inner_text()  # no names before the vote
    second = options.nth(1).locator("p.variant").inner_text()
    options.nth(1).locator("button").click()
    expect(page.locator("#status")).to_have_text("Ваш выбор записан: ответ Б лучше.")
    expect(page.locator(".arena-choice")).to_have_count(0)
    expect(page.locator("#story p.result")).to_have_text(second)
    models = page.locator("#story .models")
    expect(models).to_contain_text("В истории — ответ Б.")
    text = models.inner_text()
    assert "tiny-rival" in text and ("— tiny," in text or "— tiny." in text), text
    page.reload()  # the vote and the revealed names are the game's
    expect(page.locator("#story .models")).to_have_text(text)
    console.assert_no_csp_violation()
    page.context.close()
