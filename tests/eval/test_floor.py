"""The untrained floor of a report is the trained model's own starting point: its tokenizer and architecture, and
the initial weights of its training seed (adventure.models.build_floor)."""
from __future__ import annotations

import shutil

import yaml

from adventure.models import FLOOR_KEY_FILE, build_floor, resolve_model_spec


def test_the_floor_shares_the_trained_tokenizer_and_training_seed_and_follows_a_retrained_model(trained_artifacts,
                                                                                               tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from adventure.tiny import TinyShape, build_tiny_gpt2

    trained = tmp_path / "models" / "tiny"
    shutil.copytree(trained_artifacts / "models" / "tiny", trained)
    (trained / "gamio.json").write_text('{"language": "ru"}', encoding="utf-8")
    (trained / "training_config.yaml").write_text(yaml.safe_dump({"train": {"seed": 7}}), encoding="utf-8")
    floor = resolve_model_spec("tiny-untrained", tmp_path).location
    tokenizer = AutoTokenizer.from_pretrained(floor)
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(trained).get_vocab()
    config = AutoConfig.from_pretrained(trained)
    expected = build_tiny_gpt2(tokenizer, TinyShape(config.n_layer, config.n_embd, config.n_head, config.n_positions,
                                                    config.vocab_size), seed=7)
    got = AutoModelForCausalLM.from_pretrained(floor)
    from adventure.model_language import detect_language

    assert detect_language(resolve_model_spec("tiny-untrained", tmp_path)) == ("ru", "gamio.json")  # as declared
    for name, weight in expected.state_dict().items():
        assert torch.equal(weight, got.state_dict()[name]), name

    # A retrained model with another tokenizer gets a new floor; an unchanged one keeps it.
    key = (tmp_path / "models" / "tiny-untrained" / FLOOR_KEY_FILE).read_text()
    build_floor(tmp_path / "models" / "tiny-untrained", trained)
    assert (tmp_path / "models" / "tiny-untrained" / FLOOR_KEY_FILE).read_text() == key
    (trained / "training_config.yaml").write_text(yaml.safe_dump({"train": {"seed": 8}}), encoding="utf-8")
    resolve_model_spec("tiny-untrained", tmp_path)
    assert (tmp_path / "models" / "tiny-untrained" / FLOOR_KEY_FILE).read_text() != key
    reseeded = AutoModelForCausalLM.from_pretrained(floor)
    assert not torch.equal(reseeded.state_dict()["transformer.wte.weight"], got.state_dict()["transformer.wte.weight"])
