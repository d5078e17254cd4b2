"""Tiny offline GPT-2: a byte-level BPE tokenizer trained on the embedded corpus and a small GPT-2.

Real transformers models of small shape (not mocks): they save and load as standard Hugging Face folders,
train in minutes on 2 cores, and let every stage run end to end without downloading anything.
Everything is deterministic for a given corpus, shape and seed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from adventure.generation import GenerationSettings
from adventure.paths import SAMPLE_STORIES_DIR
from adventure.publish import publish_folder

log = logging.getLogger(__name__)
EOS = "<|endoftext|>"


@dataclass(frozen=True)
class TinyShape:
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 512
    vocab_size: int = 2000


def corpus_texts(stories_dir: Path = SAMPLE_STORIES_DIR) -> list[str]:
    """Every story of the embedded corpus rendered in the `> action` format (what the model will see)."""
    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    return [s.prompt + s.target for s in samples_from_trees(load_trees(stories_dir), history_turns=1)]


def build_tiny_tokenizer(texts: Iterable[str], vocab_size: int = TinyShape.vocab_size):
    """A GPT-2-style byte-level BPE tokenizer trained on `texts`, with <|endoftext|> as bos/eos/unk."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS],
                            show_progress=False)
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS)
    tok.pad_token = EOS
    return tok


def build_tiny_gpt2(tokenizer, shape: TinyShape = TinyShape(), seed: int = 0):
    """A randomly initialised GPT-2 of `shape`, deterministic for a given seed."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=shape.n_positions, n_embd=shape.n_embd,
                        n_layer=shape.n_layer, n_head=shape.n_head, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config = GenerationSettings.load("gamio").to_generation_config(tokenizer)
    return model


def save_model_folder(model, tokenizer, out_dir: Path) -> Path:
    """Write a standard HF folder atomically: a crash mid-save never leaves a half-written model."""
    with publish_folder(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return Path(out_dir)


def build_tiny_model_folder(out_dir: Path, shape: TinyShape = TinyShape(), seed: int = 0,
                            stories_dir: Path = SAMPLE_STORIES_DIR) -> Path:
    """Tokenizer + untrained tiny GPT-2, saved to `out_dir`."""
    tokenizer = build_tiny_tokenizer(corpus_texts(stories_dir), shape.vocab_size)
    model = build_tiny_gpt2(tokenizer, shape, seed)
    log.info("built untrained tiny GPT-2 (%d params) in %s", model.num_parameters(), out_dir)
    return save_model_folder(model, tokenizer, out_dir)


# What a trained tiny model's floor is derived from (adventure.models.build_floor keys its cache on them).
FLOOR_SOURCE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                      "training_config.yaml", "gamio.json")


def build_floor_of(trained: Path, out_dir: Path) -> Path:
    """The untrained starting point of a trained tiny model: its tokenizer and shape, and the initial weights
    that training drew with its seed (training_config.yaml's train.seed), so the floor differs from the trained
    model by the training alone."""
    import yaml
    from transformers import AutoConfig, AutoTokenizer

    trained = Path(trained)
    tokenizer = AutoTokenizer.from_pretrained(trained)
    config = AutoConfig.from_pretrained(trained)
    seed = 0
    config_file = trained / "training_config.yaml"
    if config_file.is_file():
        seed = int(((yaml.safe_load(config_file.read_text("utf-8")) or {}).get("train") or {}).get("seed", 0))
    shape = TinyShape(n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head,
                      n_positions=config.n_positions, vocab_size=config.vocab_size)
    model = build_tiny_gpt2(tokenizer, shape, seed)
    log.info("built the untrained floor of %s (seed %d, %d params) in %s", trained, seed, model.num_parameters(),
             out_dir)
    save_model_folder(model, tokenizer, out_dir)
    note = trained / "gamio.json"  # the floor reads the language its trained model was declared in
    if note.is_file():
        from adventure.model_language import write_language_note

        write_language_note(out_dir, json.loads(note.read_text(encoding="utf-8")).get("language", "ru"),
                            floor_of="the trained tiny model")
    return Path(out_dir)
