import pytest

from adventure.config import ConfigError
from adventure.generation import GenerationSettings, preset_names


def test_gamio_preset_is_the_seed_settings():
    s = GenerationSettings.load("gamio")
    assert (s.max_new_tokens, s.repetition_penalty, s.temperature, s.num_beams, s.top_k, s.top_p, s.do_sample) == \
        (55, 5.0, 0.9, 2, 50, 0.95, True)
    assert {"gamio", "greedy"} <= set(preset_names())


def test_greedy_preset_and_generation_config(tiny_untrained_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_untrained_dir)
    cfg = GenerationSettings.load("greedy").to_generation_config(tok)
    assert cfg.do_sample is False and cfg.num_beams == 1 and cfg.eos_token_id == tok.eos_token_id


@pytest.mark.parametrize("change, message", [
    ({"temprature": 0.9}, "temprature"), ({"top_p": 1.5}, r"top_p=1\.5: must be <= 1"),
    ({"num_beams": 0}, "num_beams=0: must be >= 1"), ({"max_new_tokens": "many"}, "max_new_tokens"),
])
def test_bad_settings_are_named(change, message):
    values = {**vars(GenerationSettings.load("gamio")), **change}
    with pytest.raises(ConfigError, match=message):
        GenerationSettings.from_mapping(values)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="choices: .*gamio"):
        GenerationSettings.load("nope")
