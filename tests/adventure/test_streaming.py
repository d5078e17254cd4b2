"""Streaming a reply: the text is shown as it grows, token by token, and only ever grows, with at most one reset
at the end (cleanup dropped the unfinished tail), whatever the model writes and however the text arrives;
replaying the events gives the final result exactly, and the turn
pipeline streams with beam sampling, plain sampling and greedy decoding, and for an English model behind the tiny
translators."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from adventure.cleanup import clean_generation
from adventure.engines.hf import HFEngine
from adventure.generation import GenerationSettings
from adventure.streaming import ReplyStream, apply_events, settled
from adventure.text import normalize_result
from adventure.translation import Translator, Translators
from adventure.turns import TurnInput, TurnPipeline, TurnResult

pieces = st.sampled_from(["Он", " ушёл", ".", "..", "!", "?", " ", "  ", "\n", "\n\n", "»", "«", "3.14", "> идти",
                          "\n> бежать\n", "Мр.", " Да", "…", "\t", "ёж"])


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=40))
def test_the_shown_text_grows_and_at_most_one_reset_ends_it(chunks):
    events = []
    stream = ReplyStream(lambda kind, text: events.append((kind, text)))
    raw = ""
    for chunk in chunks:
        raw += chunk
        stream.feed(raw)
    final = normalize_result(clean_generation(raw).text)
    stream.finish(final)
    assert apply_events(events) == final
    assert all(kind == "token" for kind, _ in events[:-1])  # the shown text only grew while it was written
    if events and events[-1][0] == "reset":  # taken back once, at the end: the unfinished sentence cleanup dropped
        assert not final.startswith(apply_events(events[:-1]))


def test_a_reply_without_a_sentence_end_arrives_word_by_word():
    events = []
    stream = ReplyStream(lambda kind, text: events.append((kind, text)))
    raw = ""
    for word in ["Вы", " идёте", " по", " тёмному", " лесу", " и", " слышите", "\n> иду"]:
        raw += word
        stream.feed(raw)
    stream.feed(raw + "\ufffd")  # a character still being decoded is never shown
    stream.finish(normalize_result(clean_generation(raw).text))
    assert events == [("token", "Вы"), ("token", " идёте"), ("token", " по"), ("token", " тёмному"),
                      ("token", " лесу"), ("token", " и"), ("token", " слышите")]  # the invented action never shown


def test_an_unfinished_last_sentence_is_shown_then_taken_back_once():
    events = []
    stream = ReplyStream(lambda kind, text: events.append((kind, text)))
    for raw in ["Он ушёл.", "Он ушёл. Потом", "Он ушёл. Потом он"]:
        stream.feed(raw)
    stream.finish("Он ушёл.")
    assert events == [("token", "Он ушёл."), ("token", " Потом"), ("token", " он"), ("reset", "Он ушёл.")]


def test_held_back_until_a_sentence_end_is_followed_by_more_text():
    assert settled("Он ушёл. Потом", complete=False) == "Он ушёл."
    assert settled("Он ушёл.", complete=False) == ""  # may still become "ушёл..." or "ушёл.5"
    assert settled("Он ушёл", complete=True) == "Он ушёл"


@pytest.fixture(scope="module")
def engine(trained_artifacts):
    """The briefly trained tiny model: it writes sentences, so a stream has something to settle."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = trained_artifacts / "models" / "tiny"
    return HFEngine(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))


def streamed_run(pipeline, turns, seed=0):
    events: dict[int, list] = {}
    results = pipeline.run(turns, seed=seed, listener=lambda row, kind, text: events.setdefault(row, []).append(
        (kind, text)))
    return results, events


@pytest.mark.parametrize("preset", ["gamio", "gamio_sample", "greedy"])
def test_the_pipeline_streams_every_preset(engine, preset):
    settings_ = GenerationSettings.from_mapping({**vars(GenerationSettings.load(preset)), "max_new_tokens": 80,
                                                 "repetition_penalty": 1.3})
    pipeline = TurnPipeline(engine, settings_)
    turns = [TurnInput("Вы стоите у ворот замка.", (("стучу", "Тишина."),), "жду"), TurnInput("Лес.", (), "иду"),
             TurnInput("Деревня горит.", (), "бегу к колодцу")]
    progress = []
    original = engine.generate
    engine.generate = lambda prompts, s, **kw: original(prompts, s, **{**kw, "on_progress": lambda row, ids: (
        progress.append((row, len(ids))), kw["on_progress"](row, ids))})
    try:
        results, events = streamed_run(pipeline, turns, seed=2)
    finally:
        del engine.generate
    for row, result in enumerate(results):
        assert isinstance(result, TurnResult)
        assert apply_events(events.get(row, [])) == result.result
    # The engine reported every row's settled tokens as they grew, not once at the end.
    for row in range(len(turns)):
        lengths = [n for r, n in progress if r == row]
        assert len(lengths) >= 5 and lengths == sorted(lengths), (row, lengths)
    if preset == "gamio":  # this one writes whole sentences early: the player saw the reply grow
        assert max(sum(kind == "token" for kind, _ in row) for row in events.values()) >= 2, events


@pytest.mark.slow
def test_an_english_model_streams_sentence_by_sentence(engine, tiny_marian_artifacts):
    translators = Translators(Translator("tiny", "ru-en", tiny_marian_artifacts, num_beams=1, show_progress=False),
                              Translator("tiny", "en-ru", tiny_marian_artifacts, num_beams=1, show_progress=False))
    sample = GenerationSettings.from_mapping({**vars(GenerationSettings.load("gamio_sample")), "max_new_tokens": 40})
    pipeline = TurnPipeline(engine, sample, language="en", translators=translators)
    results, events = streamed_run(pipeline, [TurnInput("Тёмный лес.", (), "Я иду.")] * 3, seed=4)
    for row, result in enumerate(results):
        assert isinstance(result, TurnResult)
        assert apply_events(events.get(row, [])) == result.result


class SentenceTranslator:
    """en->ru by a table of sentences, cutting a text into sentences as the real translators do (each keeps its
    leading space), so a streamed piece and the whole reply translate alike."""

    table = {"The dog barks.": "Собака лает.", "The cat sleeps.": "Кот спит.", "A bird sings.": "Птица поёт."}

    def translate(self, texts):
        import re

        return ["".join(space + self.table[s] for space, s in re.findall(r"(\s*)(\S[^.]*\.)", t)) for t in texts]


def test_an_english_models_stream_never_shows_a_banned_word(engine):
    from adventure.steering import Steering
    from tests.helpers.streaming import scripted

    translators = Translators(SentenceTranslator(), SentenceTranslator())  # ru->en is never asked: all given
    pipeline = TurnPipeline(engine, GenerationSettings.load("greedy"), language="en", translators=translators)
    turn = TurnInput("Лес.", (), "жду", world_en="Forest.", action_en="wait", history_en=(),
                     steering_en=Steering(), steering=Steering(banned_words=("кот",)))
    with scripted(pipeline, "The dog barks. The cat sleeps. A bird sings.\n> go", delay_s=0):
        results, events = streamed_run(pipeline, [turn])
    assert results[0].result == "Собака лает."  # cut before the banned word, its sentence dropped
    assert events[0] == [("token", "Собака лает.")]  # nothing after it was ever shown
