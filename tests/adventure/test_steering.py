"""Story steering in the prompt: world-info keys understand Russian word forms (and never fire on false friends),
memory survives any history, the author's note stands exactly `depth` turns before the action, world info keeps to
its own budget in priority order, and a banned word cannot reach the player in any inflection."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adventure.budget import Steered, build_prompt
from adventure.engines.hf import HFEngine
from adventure.generation import GenerationSettings
from adventure.steering import (Steering, WorldInfoEntry, banned_token_sequences, first_banned, inflections,
                                triggered_world_info)
from adventure.text import normalize_action, normalize_result
from adventure.turns import TurnInput, TurnPipeline, TurnResult


def fires(key: str, sentence: str) -> bool:
    return triggered_world_info([WorldInfoEntry((key,), "x")], [sentence]) == [0]


@pytest.mark.parametrize("key, sentence", [
    ("кот", "Старик гладил рыжего кота у камина."),
    ("кот", "Дети играли с котом во дворе."),
    ("кот", "Во дворе было пять котов."),
    ("кот", "КОТЫ спали на печи."),
    ("ведьма", "Все деревенские боялись ведьмы из чащи."),
    ("ведьма", "Он отдал письмо ведьме."),
    ("старый замок", "Мы заночевали в старом замке на холме."),
    ("ёж", "Под кустом мы нашли ежа."),
    ("еж", "Ёж свернулся клубком."),
    ("Санкт-Петербург", "Поезд пришёл в Санкт-Петербург на рассвете."),
    ("идти", "Вы идёте дальше, не оглядываясь."),
    ("dragon", "The dragon sleeps."),
])
def test_keys_fire_on_word_forms(key, sentence):
    assert fires(key, sentence)


@pytest.mark.parametrize("key, sentence", [
    ("кот", "Это был человек, который всё знал."),
    ("кот", "Крестьяне пригнали скот к реке."),
    ("кот", "На огне кипел котёл."),
    ("старый замок", "Старый мастер вошёл в замок."),  # the words, but not as a sequence
    ("ведьма", "Ведомость лежала на столе."),
    ("лес", "Лестница вела наверх."),
])
def test_keys_never_fire_on_false_friends(key, sentence):
    assert not fires(key, sentence)


def test_priority_constant_first_then_most_recent():
    entries = [WorldInfoEntry(("кот",), "кот"), WorldInfoEntry(("меч",), "меч"),
               WorldInfoEntry(("небо",), "небо", constant=True), WorldInfoEntry(("дракон",), "дракон")]
    order = triggered_world_info(entries, ["Вы видите кота.", "Дракон взлетел.", "Меч лежит рядом."])
    assert order == [2, 1, 3, 0]


@pytest.fixture(scope="module")
def tokenizer(tiny_untrained_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_untrained_dir)


texts = st.lists(st.sampled_from(["дверь ", "Кот спит. ", "> ", "\n", "длинный ответ " * 5, "ёж"]), max_size=30).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(st.tuples(texts, texts), max_size=30), depth=st.integers(0, 20),
       context=st.integers(min_value=200, max_value=512))
def test_memory_survives_any_history_and_the_note_stands_at_its_depth(tokenizer, history, depth, context):
    steered = Steered(memory="Вы — рыцарь без коня.", authors_note="[Примечание автора: мрачно]",
                      authors_note_depth=depth, world_info=[(0, "Кот — хранитель дома.")])
    history = [(normalize_action(a), normalize_result(r)) for a, r in history]  # as the turn pipeline passes it
    p = build_prompt(tokenizer, "Мир.", history, "иду", context_length=context, max_new_tokens=55, steered=steered)
    assert p.text.startswith("Вы — рыцарь без коня.\n\n") and len(p.input_ids) <= context - 55
    after_note = p.text.split("[Примечание автора: мрачно]")[1]
    assert after_note.count("\n> ") == min(depth, p.turns_used) + 1  # depth turns, then the new action
    assert p.text == "".join(part.text for part in p.parts if not part.dropped)
    assert [part.kind for part in p.parts if part.kind == "memory"] == ["memory"]


def test_world_info_keeps_to_its_budget_in_priority_order(tokenizer):
    entries = [(i, f"Запись номер {i}: " + "очень длинное описание " * 6) for i in range(6)]
    p = build_prompt(tokenizer, "Мир.", [], "иду", context_length=512, max_new_tokens=55,
                     steered=Steered(world_info=entries, world_info_budget=128))
    assert p.world_info_used == list(range(len(p.world_info_used))) and 0 < len(p.world_info_used) < 6
    dropped = [part.index for part in p.parts if part.kind == "world_info" and part.dropped]
    assert dropped == list(range(len(p.world_info_used), 6))


def test_banned_words_cover_every_inflection(tokenizer):
    assert {"кот", "кота", "котом", "котов", "коты"} <= inflections("кот")
    assert first_banned("Рыжего Котом звали.", ["кот"]) == 7
    assert first_banned("Который час?", ["кот"]) is None
    assert first_banned("Там был старый замок.", ["старый замок"]) == 8
    sequences = banned_token_sequences(tokenizer, ["кот"])
    assert [tokenizer.encode(" котом")] and any(s == tokenizer.encode(" котом") for s in sequences)


@pytest.fixture(scope="module")
def pipeline(tiny_untrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    engine = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_untrained_dir),
                      AutoTokenizer.from_pretrained(tiny_untrained_dir))
    sample = GenerationSettings.from_mapping({**vars(GenerationSettings.load("gamio_sample")), "max_new_tokens": 40,
                                              "repetition_penalty": 1.0, "temperature": 1.5})
    return TurnPipeline(engine, sample)


def test_the_model_cannot_write_a_banned_word(pipeline):
    # The untrained tiny model writes the corpus' most frequent words; find ones it writes, then ban them.
    turn = TurnInput("Вы в лесу.", (), "смотрю")
    seen = " ".join(out.result for out in pipeline.run([turn] * 4, seed=3) if isinstance(out, TurnResult))
    written = [w for w in dict.fromkeys(seen.lower().replace(".", " ").split()) if len(w) > 3][:5]
    assert written, seen
    banned = TurnInput("Вы в лесу.", (), "смотрю", steering=Steering(banned_words=tuple(written)))
    for out in pipeline.run([banned] * 4, seed=3):
        assert isinstance(out, TurnResult) and first_banned(out.result, written) is None


def test_stop_strings_end_the_reply(pipeline):
    turn = TurnInput("Вы в лесу.", (), "смотрю")
    first = pipeline.run([turn], seed=5)[0].model_text
    stop = first.split()[len(first.split()) // 2]
    stopped = pipeline.run([TurnInput("Вы в лесу.", (), "смотрю", steering=Steering(stop=(stop,)))], seed=5)[0]
    assert stop not in stopped.model_text
