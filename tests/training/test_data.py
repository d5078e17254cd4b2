"""The two training-row shapes: packed blocks (loss_on=all) and masked, budget-fitted samples (loss_on=result)."""
from __future__ import annotations

import pytest
from tests.helpers.training import build_story_dataset

from adventure.budget import build_prompt, encode_text
from adventure.errors import GamioError
from adventure.tiny import build_tiny_tokenizer
from training.data import IGNORE_INDEX, data_collator, load_story_dataset, prepare_split, tokenizer_corpus


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_story_dataset(build_story_dataset(tmp_path_factory.mktemp("artifacts")))


@pytest.fixture(scope="module")
def tokenizer(dataset):
    return build_tiny_tokenizer(tokenizer_corpus(dataset["train"]), 500)


def test_packed_blocks_are_the_concatenated_samples_separated_by_eos(dataset, tokenizer):
    split = dataset["validation"]
    blocks = prepare_split(split, tokenizer, loss_on="all", block_size=64, history_turns=10, name="validation")
    assert all(len(b) == 64 for b in blocks["input_ids"])
    assert blocks["labels"] == blocks["input_ids"]  # the model shifts labels itself
    stream = [t for b in blocks["input_ids"] for t in b]
    expected = [t for p, r in zip(split["prompt"], split["target"])
                for t in encode_text(tokenizer, p + r) + [tokenizer.eos_token_id]]
    assert len(expected) - len(stream) < 64  # only the last partial block is dropped
    assert stream == expected[:len(stream)]
    batch = data_collator(tokenizer, "all")([blocks[i] for i in range(3)])
    assert tuple(batch["input_ids"].shape) == (3, 64) and int(batch["attention_mask"].sum()) == 3 * 64


def test_result_rows_mask_all_but_the_result_and_fit_prompts_like_serving(dataset, tokenizer):
    split = dataset["validation"].select(range(6))
    rows = prepare_split(split, tokenizer, loss_on="result", block_size=96, history_turns=10, name="validation")
    assert len(rows) == len(split)
    for row, world, history, action, target in zip(rows, split["world"], split["history"], split["action"],
                                                  split["target"]):
        result = (encode_text(tokenizer, target) + [tokenizer.eos_token_id])[:48]
        prompt = build_prompt(tokenizer, world, [tuple(t) for t in history], action, context_length=96,
                              max_new_tokens=len(result))
        assert row["input_ids"] == prompt.input_ids + result
        assert row["labels"] == [IGNORE_INDEX] * len(prompt.input_ids) + result
        assert len(row["input_ids"]) <= 96
        assert tokenizer.decode(prompt.input_ids).endswith(f"> {action}\n")
    batch = data_collator(tokenizer, "result")([rows[i] for i in range(len(rows))])
    width = max(len(r) for r in rows["input_ids"])
    assert tuple(batch["labels"].shape) == (len(rows), width)
    pads = batch["attention_mask"] == 0
    assert bool((batch["labels"][pads] == IGNORE_INDEX).all())


def test_bad_loss_mode_and_too_little_validation_text_are_named(dataset, tokenizer):
    with pytest.raises(GamioError, match="loss_on='everything'.*'all', 'result'"):
        prepare_split(dataset["validation"], tokenizer, loss_on="everything", block_size=64, history_turns=10,
                      name="validation")
    tiny = dataset["validation"].select(range(1))
    with pytest.raises(GamioError, match="fewer tokens than one block"):
        prepare_split(tiny, tokenizer, loss_on="all", block_size=4096, history_turns=10, name="validation")
