from hypothesis import given, strategies as st

from adventure.text import normalize_action, normalize_result, normalize_text


def test_normalisation_of_real_layout_quirks():
    raw = "  \u201cHello,\u201d   she said\u2026  \r\n\r\n\r\n\r\nNext\u00a0page\u2019s  text...  \n"
    assert normalize_text(raw) == "\"Hello,\" she said...\n\nNext page's text..."


def test_russian_quotes_and_dashes_are_kept():
    assert normalize_text("«Стой!» — крикнул он…") == "«Стой!» — крикнул он..."


@given(st.text(alphabet=st.sampled_from(list("аб c\n\t.…\u201c\u201d«»>\u00a0\r")), max_size=80))
def test_normalisation_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert normalize_action(normalize_action(text)) == normalize_action(text)
    assert normalize_result(normalize_result(text)) == normalize_result(text)


def test_actions_are_one_line_without_marker():
    assert normalize_action(">  > Открыть\n дверь ") == "Открыть дверь"


def test_results_never_hold_action_lines():
    assert normalize_result("Дверь открыта.\n> Войти\nТишина.") == "Дверь открыта.\nВойти\nТишина."
