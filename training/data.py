"""From the scraping stage's DatasetDict to model inputs, in one of two shapes.

    loss_on=all     every sample rendered as prompt + result + EOS, concatenated and cut into `block_size`
                    blocks (run_clm's group_texts): no padding at all, the model learns the whole story text.
    loss_on=result  one row per sample: the prompt fitted into the block with adventure.budget.build_prompt
                    (the very function serving uses, so training and serving prompts cannot drift), then the
                    result; labels are -100 everywhere but on the result tokens. Batches are padded.
"""
from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path

from adventure.budget import build_prompt, encode_text
from adventure.errors import GamioError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation")
REQUIRED_COLUMNS = ("world", "history", "action", "prompt", "target")
LOSS_MODES = ("all", "result")
IGNORE_INDEX = -100  # labels the loss skips (PyTorch CrossEntropyLoss' ignore_index)


def load_story_dataset(dataset_dir: Path):
    """The DatasetDict `python -m scraping` saved, checked for the splits and columns training reads."""
    from datasets import load_from_disk

    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise GamioError(f"no training dataset in {dataset_dir}: run `python -m scraping` first "
                         f"(with the same paths.artifacts), or pass dataset_dir=<a saved DatasetDict>")
    data = load_from_disk(str(dataset_dir))
    for split in SPLITS:
        if split not in data:
            raise GamioError(f"the dataset in {dataset_dir} has no {split!r} split (it has {sorted(data)}); "
                             f"rerun `python -m scraping`")
        missing = [c for c in REQUIRED_COLUMNS if c not in data[split].column_names]
        if missing:
            raise GamioError(f"the {split!r} split of {dataset_dir} lacks column(s) {missing}; "
                             f"rerun `python -m scraping`")
        if len(data[split]) == 0:
            raise GamioError(f"the {split!r} split of {dataset_dir} is empty: scrape more stories")
    return data


def tokenizer_corpus(train_split) -> list[str]:
    """Texts to train the tiny model's tokenizer on: each world once, then each turn once.

    Prompts repeat up to 10 turns of history, which would weight deep branches' text ~10x in the BPE merges.
    """
    worlds = list(dict.fromkeys(train_split["world"]))
    turns = [f"\n> {a}\n{t}" for a, t in zip(train_split["action"], train_split["target"])]
    return worlds + turns


def _packed(split, tokenizer, block_size: int):
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        texts = [p + t for p, t in zip(batch["prompt"], batch["target"])]
        return {"input_ids": [ids + [eos] for ids in encode_text(tokenizer, texts)]}

    def group_texts(batch):  # run_clm: concatenate a map batch, drop the remainder shorter than a block
        joined = list(chain.from_iterable(batch["input_ids"]))
        total = len(joined) // block_size * block_size
        blocks = [joined[i:i + block_size] for i in range(0, total, block_size)]
        return {"input_ids": blocks, "attention_mask": [[1] * block_size for _ in blocks],
                "labels": [list(b) for b in blocks]}

    # keep_in_memory: never write cache files into the scraping stage's dataset folder.
    ids = split.map(tokenize, batched=True, remove_columns=split.column_names, keep_in_memory=True,
                    desc="tokenizing")
    return ids.map(group_texts, batched=True, remove_columns=ids.column_names, keep_in_memory=True,
                   desc=f"packing into {block_size}-token blocks")


def _result_only(split, tokenizer, block_size: int, history_turns: int):
    eos = tokenizer.eos_token_id
    max_result = block_size // 2  # the rest of the block is the prompt's; serving generates far fewer tokens

    def encode(batch):
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for world, history, action, target in zip(batch["world"], batch["history"], batch["action"],
                                                  batch["target"]):
            result = (encode_text(tokenizer, target) + [eos])[:max_result]
            prompt = build_prompt(tokenizer, world, [tuple(turn) for turn in history], action,
                                  context_length=block_size, max_new_tokens=len(result),
                                  max_turns=history_turns)
            ids = prompt.input_ids + result
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["labels"].append([IGNORE_INDEX] * len(prompt.input_ids) + result)
        return out

    return split.map(encode, batched=True, remove_columns=split.column_names, keep_in_memory=True,
                     desc="fitting prompts (build_prompt) and masking")


def prepare_split(split, tokenizer, *, loss_on: str, block_size: int, history_turns: int, name: str):
    if loss_on not in LOSS_MODES:
        raise GamioError(f"loss_on={loss_on!r} is not one of {list(LOSS_MODES)}")
    if loss_on == "all":
        prepared = _packed(split, tokenizer, block_size)
    else:
        prepared = _result_only(split, tokenizer, block_size, history_turns)
    if len(prepared) == 0:
        raise GamioError(f"the {name} split has fewer tokens than one block (block_size={block_size}): "
                         f"lower train.block_size or scrape more stories")
    return prepared


def data_collator(tokenizer, loss_on: str):
    """Packed blocks are already rectangular; result rows are padded per batch (labels with -100)."""
    from transformers import DataCollatorForSeq2Seq, default_data_collator

    if loss_on == "all":
        return default_data_collator
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def count_tokens(split, tokenizer) -> int:
    """Tokens of prompt + result + EOS over a raw split: what packing could use at most."""
    texts = [p + t for p, t in zip(split["prompt"], split["target"])]
    return sum(len(ids) + 1 for ids in encode_text(tokenizer, texts))
