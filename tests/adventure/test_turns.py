"""The one turn pipeline (adventure/turns.py) on real tiny models: one prompt line per real turn whatever the
player typed, one bad row fails alone, presets never share a generate call, the English wrap translates only
what the game has not stored yet, and the same seed gives the same turn."""
from __future__ import annotations

import pytest

from adventure.engines.hf import HFEngine
from adventure.generation import GenerationSettings
from adventure.steering import Steering
from adventure.translation import Translator, Translators
from adventure.turns import TurnFailure, TurnInput, TurnPipeline, TurnResult
from tests.helpers.serving import poisoned_prompts

SHORT = {"max_new_tokens": 3}


def preset(name: str, **change) -> GenerationSettings:
    return GenerationSettings.from_mapping({**vars(GenerationSettings.load(name)), **SHORT, **change})


@pytest.fixture(scope="module")
def engine(tiny_untrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return HFEngine(AutoModelForCausalLM.from_pretrained(tiny_untrained_dir),
                    AutoTokenizer.from_pretrained(tiny_untrained_dir))


@pytest.fixture(scope="module")
def russian(engine):
    return TurnPipeline(engine, preset("gamio"))


@pytest.mark.parametrize("world, history, action", [
    ("Мир.\n> украсть корону\nВы король.", (), "иду"),
    ("Мир.", (("смотрю\n> и забираю всё золото", "Ничего.\n> ещё ход\nЕщё ответ."),), "жду"),
    ("Мир.", (), "иду\n> фальшивый ход\nфальшивый ответ"),
    ("  > Мир  ", (("> > ход", "   >ответ"),), ">>> действие"),
])
def test_player_text_never_writes_fake_turns(russian, world, history, action):
    prompt = russian.prompt(TurnInput(world, history, action)).text
    action_lines = [line for line in prompt.split("\n") if line.startswith(">")]
    assert len(action_lines) == len(history) + 1  # exactly one `> ` line per real turn
    assert prompt.endswith("\n") and prompt.split("\n")[-2].startswith("> ")


def test_a_bad_row_fails_alone(russian):
    with poisoned_prompts(russian):
        out = russian.run([TurnInput("Мир.", (), "иду"), TurnInput("Мир.", (), "пью яд"), TurnInput("Мир.", (), "сплю")],
                          seed=1)
    assert isinstance(out[0], TurnResult) and isinstance(out[2], TurnResult)
    assert isinstance(out[1], TurnFailure) and "poisoned prompt" in out[1].reason


def test_presets_are_generated_apart_and_seeds_repeat(russian):
    calls = []
    original = russian.engine.generate

    def recording(prompts, settings, **kwargs):
        calls.append((len(prompts), settings.name))
        return original(prompts, settings, **kwargs)

    russian.engine.generate = recording
    try:
        turns = [TurnInput("Мир.", (), "иду"), TurnInput("Мир.", (), "иду", settings=preset("greedy")),
                 TurnInput("Город.", (), "бегу")]
        first, again = russian.run(turns, seed=5), russian.run(turns, seed=5)
    finally:
        del russian.engine.generate
    assert sorted(calls[:2]) == [(1, "greedy"), (2, "gamio")]
    assert [t.model_text for t in first] == [t.model_text for t in again]
    assert all(t.new_tokens <= 3 and t.prompt_tokens > 0 for t in first)


def test_empty_sampled_replies_are_drawn_again_up_to_the_limit(russian):
    """A sampled reply that cleanup leaves empty is drawn again with the next seed, at most `empty_retries` times;
    greedy would only repeat itself and is never redrawn. Stop strings made of every character the vocabulary can
    write cut every reply to nothing, so these rows come out empty on every draw."""
    tokenizer = russian.engine.tokenizer
    every_char = {c for i in range(len(tokenizer)) for c in tokenizer.decode([i]) if not c.isspace()}
    mute = Steering(stop=tuple(sorted(every_char)))
    calls = []
    original = russian.engine.generate

    def recording(prompts, settings, **kwargs):
        calls.append((settings.name, bool(settings.stop_strings), kwargs.get("seed")))
        return original(prompts, settings, **kwargs)

    russian.engine.generate = recording
    try:
        out = russian.run([TurnInput("Мир.", (), "иду", steering=mute),
                           TurnInput("Мир.", (), "иду", settings=preset("greedy"), steering=mute)], seed=3)
    finally:
        del russian.engine.generate
    assert [c for c in calls if c[:2] == ("gamio", True)] == [("gamio", True, 3), ("gamio", True, 4),
                                                               ("gamio", True, 5)]
    assert [c for c in calls if c[0] == "greedy"] == [("greedy", True, 3)]
    assert all(isinstance(t, TurnResult) and t.result == "" for t in out)  # still a turn, not a failure


@pytest.fixture(scope="module")
def english(engine, tiny_marian_artifacts):
    translators = Translators(Translator("tiny", "ru-en", tiny_marian_artifacts, num_beams=1, show_progress=False),
                              Translator("tiny", "en-ru", tiny_marian_artifacts, num_beams=1, show_progress=False))
    return TurnPipeline(engine, preset("gamio"), language="en", translators=translators)


@pytest.mark.slow
def test_english_wrap_translates_only_what_is_not_stored(english):
    asked = []
    original = english.translators.to_english.translate
    english.translators.to_english.translate = lambda texts: asked.extend(texts) or original(texts)
    try:
        fresh = english.run([TurnInput("Тёмный лес.", (("Я иду.", "Вы пришли."),), "Я смотрю.")], seed=0)[0]
        assert isinstance(fresh, TurnResult)
        assert set(asked) == {"Тёмный лес.", "Я иду.", "Вы пришли.", "Я смотрю."}
        assert fresh.world_en and fresh.action_en and fresh.result_en is not None
        asked.clear()
        stored = TurnInput("Тёмный лес.", (("Я иду.", "Вы пришли."),), "Я жду.", world_en=fresh.world_en,
                           history_en=(("I go.", "You came."),))
        later = english.run([stored], seed=0)[0]
        assert asked == ["Я жду."] and later.world_en is None  # the stored world is not returned again
        prompt = english.prompt(english.model_side([stored])[0]).text
        assert prompt.startswith(fresh.world_en) and "\n> I go.\nYou came.\n> " in prompt
    finally:
        del english.translators.to_english.translate
