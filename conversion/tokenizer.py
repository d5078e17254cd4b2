"""OpenAI's `encoder.json` + `vocab.bpe` -> a Hugging Face GPT-2 tokenizer folder with the same ids.

GPT-2's byte-level BPE is exactly what `tokenizers` implements, so the conversion is: hand the vocabulary and the
merge list to GPT2TokenizerFast (as `vocab=`/`merges=` objects: given as file paths through `vocab_file=` it silently
builds an empty tokenizer) and save it. `<|endoftext|>` is bos, eos and unk, as in OpenAI's release.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from conversion.errors import MappingError

log = logging.getLogger(__name__)
END_OF_TEXT = "<|endoftext|>"


def read_bpe_files(checkpoint_dir: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    encoder_path, bpe_path = checkpoint_dir / "encoder.json", checkpoint_dir / "vocab.bpe"
    for path in (encoder_path, bpe_path):
        if not path.is_file():
            raise MappingError(f"missing file {path}")
    try:
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"bad {encoder_path}: not JSON ({exc})") from None
    if not isinstance(encoder, dict) or END_OF_TEXT not in encoder:
        raise MappingError(f"bad {encoder_path}: expected a token -> id object containing {END_OF_TEXT!r}")
    if sorted(encoder.values()) != list(range(len(encoder))):
        raise MappingError(f"bad {encoder_path}: ids are not 0..{len(encoder) - 1} without gaps")
    merges = []
    for number, line in enumerate(bpe_path.read_text(encoding="utf-8").split("\n"), start=1):
        if line.startswith("#version") or not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise MappingError(f"bad {bpe_path} line {number}: a merge is two symbols, got {line!r}")
        merges.append((parts[0], parts[1]))
    return encoder, merges


def convert_tokenizer(checkpoint_dir: Path, out_dir: Path, n_vocab: int, n_ctx: int):
    """Write tokenizer.json/tokenizer_config.json (plus vocab.json/merges.txt for older tools); returns it."""
    from transformers import GPT2TokenizerFast

    encoder, merges = read_bpe_files(checkpoint_dir)
    if len(encoder) > n_vocab:
        raise MappingError(f"encoder.json has {len(encoder)} tokens but hparams.json n_vocab is {n_vocab}")
    if len(encoder) < n_vocab:
        log.warning("encoder.json has %d tokens, the embedding %d rows: the last rows are never produced",
                    len(encoder), n_vocab)
    tokenizer = GPT2TokenizerFast(vocab=encoder, merges=merges, add_prefix_space=False, unk_token=END_OF_TEXT,
                                  bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, model_max_length=n_ctx)
    if len(tokenizer) != len(encoder):
        raise MappingError(f"the converted tokenizer has {len(tokenizer)} tokens, encoder.json {len(encoder)}")
    tokenizer.save_pretrained(str(out_dir))
    shutil.copyfile(checkpoint_dir / "encoder.json", out_dir / "vocab.json")
    shutil.copyfile(checkpoint_dir / "vocab.bpe", out_dir / "merges.txt")
    return tokenizer
