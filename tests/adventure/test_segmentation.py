"""Segmentation for translation: pieces always reassemble to the exact input; Russian sentences are cut with
razdel (abbreviations, initials, dialogue), English ones by rule; every piece to translate fits the limit."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adventure.parallel import load_parallel_texts
from adventure.segmentation import plan_text, sentence_parts, split_sentences
from tests.helpers.real_data import REAL_TREES_DIR


def words_plus_one(text: str) -> int:
    return len(text.split()) + 1


def test_plans_reassemble_every_corpus_text_exactly():
    texts = [t.en for t in load_parallel_texts()] + [t.ru for t in load_parallel_texts()]
    texts.append("> Open the door\n\nIt creaks.  A draft!\n  > \n***\r\n> Run, run, run, run, run away now")
    if REAL_TREES_DIR.is_dir():  # real page texts: runs of blank lines, trailing spaces, curly quotes
        import json

        for path in sorted(REAL_TREES_DIR.glob("*.json")):
            texts.append(json.loads(path.read_text(encoding="utf-8"))["first_story_block"])
    for text in texts:
        for language in ("ru", "en", None):
            plan = plan_text(text, words_plus_one, 6, language)
            assert "".join(piece for _, piece in plan) == text
            assert all(words_plus_one(piece) <= 6 for translate, piece in plan if translate)
            assert not any(translate and piece.lstrip().startswith(">") for translate, piece in plan)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("Аб вГ.!?…—«»\"' \n\t,Ёё>aB1")), max_size=120))
def test_any_text_reassembles_exactly(text):
    for language in ("ru", "en"):
        assert "".join(sentence_parts(text, language)) == text
        assert "".join(piece for _, piece in plan_text(text, words_plus_one, 4, language)) == text


def test_english_sentences_respect_dialogue_and_abbreviations():
    assert split_sentences('Mr. Smith waits. "Stop!" he says. Then he runs... Away!') == [
        "Mr. Smith waits.", '"Stop!" he says.', "Then he runs...", "Away!"]


def test_russian_sentences_respect_dialogue_abbreviations_and_initials():
    assert split_sentences("«Стой!» — крикнул он. — Кто там? Он ушёл.") == [
        "«Стой!» — крикнул он.", "— Кто там?", "Он ушёл."]
    assert split_sentences("Т. е. никто не пришёл. Мистер Х. Смит ждал до 5 ч. утра. Потом ушёл.") == [
        "Т. е. никто не пришёл.", "Мистер Х. Смит ждал до 5 ч. утра.", "Потом ушёл."]
    assert sentence_parts("Раз.   Два!\tТри?", "ru") == ["Раз.", "   ", "Два!", "\t", "Три?"]
