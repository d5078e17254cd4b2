import pytest

from adventure.generation import GenerationSettings


def test_gamio_preset_is_the_seed_settings():
    s = GenerationSettings.load("gamio")
    assert (s.max_new_tokens, s.repetition_penalty, s.temperature, s.num_beams, s.top_k, s.top_p, s.do_sample) == \
        (55, 5.0, 0.9, 2, 50, 0.95, True)
    assert s == GenerationSettings()  # the dataclass defaults are the seed's too


def test_greedy_preset_and_generation_config(tiny_untrained_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_untrained_dir)
    cfg = GenerationSettings.load("greedy").to_generation_config(tok)
    assert cfg.do_sample is False and cfg.num_beams == 1 and cfg.eos_token_id == tok.eos_token_id


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown generation setting"):
        GenerationSettings.from_mapping({"temprature": 0.9})
    with pytest.raises(ValueError, match="top_p"):
        GenerationSettings.from_mapping({"top_p": 1.5})
    with pytest.raises(FileNotFoundError, match="choices"):
        GenerationSettings.load("nope")
