"""The model to fine-tune, from its `configs/model/<name>.yaml`.

    source: scratch  a tiny GPT-2 of `shape` with a tokenizer trained on the train split (adventure.tiny)
    source: hub      `hub_id` through adventure.models (the local HF cache offline), or `path` if set
    source: local    `path`, a Hugging Face folder (gamegpt_xl: the conversion stage's output)

A scratch starting point is saved once in `<run_dir>/init` by rank 0 and loaded from there by every rank and
by a resumed run: its tokenizer is trained once, so no two processes can ever disagree on the vocabulary.
"""
from __future__ import annotations

import logging
from pathlib import Path

from adventure.errors import GamioError
from adventure.models import context_length, load_causal_lm

log = logging.getLogger(__name__)


def check_block_size(model_cfg, block_size: int) -> None:
    """Fail before any download or training when the block cannot fit the model's context."""
    if block_size > int(model_cfg.context_length):
        raise GamioError(f"train.block_size={block_size} exceeds the context of model {model_cfg.name!r} "
                         f"({model_cfg.context_length} tokens): use train.block_size<={model_cfg.context_length}")


def model_spec(model_cfg) -> str:
    """What adventure.models should load: the local override first, then the hub id."""
    if model_cfg.path:
        path = Path(str(model_cfg.path)).expanduser()
        if not (path / "config.json").is_file():
            hint = model_cfg.missing_hint or "pass model.path=<a Hugging Face model folder>"
            raise GamioError(f"model {model_cfg.name!r}: no Hugging Face model folder at {path}; {hint}")
        return str(path.resolve())
    if model_cfg.source == "local":
        raise GamioError(f"model {model_cfg.name!r} needs model.path=<a Hugging Face model folder>")
    if not model_cfg.hub_id:
        raise GamioError(f"model {model_cfg.name!r} has neither model.path nor model.hub_id")
    return str(model_cfg.hub_id)


def _build_scratch(model_cfg, train_split, seed: int):
    from adventure.tiny import TinyShape, build_tiny_gpt2, build_tiny_tokenizer
    from training.data import tokenizer_corpus

    shape = TinyShape(**model_cfg.shape)
    tokenizer = build_tiny_tokenizer(tokenizer_corpus(train_split), shape.vocab_size)
    model = build_tiny_gpt2(tokenizer, shape, seed)
    log.info("built %s from scratch: %s, %d parameters, vocabulary %d", model_cfg.name, shape,
             model.num_parameters(), len(tokenizer))
    return model, tokenizer


def load_starting_point(model_cfg, run_dir: Path, artifacts: Path, train_split, seed: int, block_size: int,
                        quantized: bool = False):
    """(model, tokenizer, the folder it came from) to fine-tune. Call on every rank, main process first (it builds
    or downloads once). quantized: the weights in 4 bit (method=qlora, CUDA)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adventure.models import load_tokenizer, resolve_model_spec
    from adventure.tiny import save_model_folder
    from training.lora import load_quantized

    if model_cfg.source == "scratch":
        init_dir = Path(run_dir) / "init"
        if not (init_dir / "config.json").is_file():
            save_model_folder(*_build_scratch(model_cfg, train_split, seed), init_dir)
        tokenizer = AutoTokenizer.from_pretrained(init_dir)
        model = load_quantized(str(init_dir)) if quantized else AutoModelForCausalLM.from_pretrained(init_dir)
        origin = str(init_dir)
    elif quantized:
        source = resolve_model_spec(model_spec(model_cfg), artifacts)
        tokenizer, model = load_tokenizer(source, "model.path"), load_quantized(source.location)
        origin = source.location
    else:
        spec = model_spec(model_cfg)
        model, tokenizer, source = load_causal_lm(spec, artifacts, option="model.path")
        origin = source.location
        log.info("loaded %s from %s (%d parameters)", model_cfg.name, origin, model.num_parameters())
    if tokenizer.pad_token is None:  # GPT-2 family: pad with EOS, never a new token the model never saw
        tokenizer.pad_token = tokenizer.eos_token
    context = context_length(model)
    if block_size > context:
        raise GamioError(f"train.block_size={block_size} exceeds the context of {model_cfg.name!r} as loaded "
                         f"from {origin} ({context} tokens)")
    return model, tokenizer, origin
