"""Tiny models as the tests build them (real transformers models of small shape, never mocks)."""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from adventure.paths import SAMPLE_STORIES_DIR

# The tiny Marian translators as the tests build them: trained long enough to have learnt the target language
# (the tests check the loss fell and the output language), short enough for CI. The default build
# (adventure.tiny_marian, for `translation=tiny` outside tests) trains longer; bench/ records its BLEU.
QUICK_MARIAN = {"steps": 300}


def install_tiny_marians(artifacts: Path) -> Path:
    """Put both tiny Marian translators into `<artifacts>/models/` (built once, then copied from the build cache)."""
    from adventure.tiny_marian import DIRECTIONS, ensure_tiny_marian

    for direction in DIRECTIONS:
        ensure_tiny_marian(artifacts, direction, **QUICK_MARIAN)
    return artifacts


def split_by_story(tree_ids: list[str]) -> dict[str, list[str]]:
    """Deterministic story-level split: 2 test stories, 1 validation story, the rest train."""
    ids = sorted(tree_ids)
    return {"test": ids[:2], "validation": ids[2:3], "train": ids[3:]}


def build_dataset(artifacts: Path) -> Path:
    """<artifacts>/data/dataset as a DatasetDict of Sample.to_dict() rows, split by story."""
    from datasets import Dataset, DatasetDict

    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    trees = load_trees(SAMPLE_STORIES_DIR)
    splits = split_by_story([t.tree_id for t in trees])
    data = DatasetDict({name: Dataset.from_list([s.to_dict() for s in samples_from_trees(
        [t for t in trees if t.tree_id in ids])]) for name, ids in splits.items()})
    out = artifacts / "data" / "dataset"
    data.save_to_disk(str(out))
    return out


@contextlib.contextmanager
def one_thread():
    """Tiny models run ~10x faster on one thread when the 2 cores are shared (as in CI); restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_tiny(artifacts: Path, steps: int = 30) -> Path:
    """<artifacts>/models/tiny: tiny-untrained trained for `steps` steps on the train split (transformers Trainer)."""
    import torch
    from datasets import load_from_disk
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    from adventure.models import resolve_model_spec
    from adventure.tiny import save_model_folder

    base = resolve_model_spec("tiny-untrained", artifacts).location
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    train = load_from_disk(str(artifacts / "data" / "dataset"))["train"]
    texts = train.map(lambda row: tokenizer(row["prompt"] + row["target"] + tokenizer.eos_token, truncation=True,
                                            max_length=128), remove_columns=train.column_names)
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(artifacts / "tmp-train"), max_steps=steps, per_device_train_batch_size=8,
                             learning_rate=3e-3, warmup_steps=5, logging_steps=1000, save_strategy="no",
                             report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=texts,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)).train()
    shutil.rmtree(artifacts / "tmp-train", ignore_errors=True)
    return save_model_folder(model, tokenizer, artifacts / "models" / "tiny")


def build_english_tiny(out_dir: Path, language_note: bool = True) -> Path:
    """An untrained tiny GPT-2 with a tokenizer built on the English side of the parallel set."""
    from adventure.parallel import load_sentence_pairs
    from adventure.tiny import TinyShape, build_tiny_gpt2, build_tiny_tokenizer, save_model_folder

    tokenizer = build_tiny_tokenizer([en for en, _ in load_sentence_pairs()], vocab_size=800)
    model = build_tiny_gpt2(tokenizer, TinyShape(n_layer=1, n_embd=64, n_head=2, n_positions=512), seed=1)
    save_model_folder(model, tokenizer, out_dir)
    if language_note:
        (out_dir / "gamio.json").write_text(json.dumps({"language": "en"}), encoding="utf-8")
    return out_dir
