"""MODEL_CARD.md of a converted folder: where it came from, what was done to it, and how it was checked."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from conversion.gpt2_mapping import HParams


def write_model_card(path: Path, *, name: str, source: Path, prefix: str, hp: HParams, dtype: str, n_tensors: int,
                     weight_files: list[str], skipped: dict[str, str], verification: str, generation: str) -> None:
    skipped_lines = "\n".join(f"- `{name}` ({why})" for name, why in skipped.items()) or "- none"
    text = f"""# GPT-2 converted from a TensorFlow checkpoint

English GPT-2 language model (the gamio `gamegpt_xl` slot: the game wraps it in opus-mt, ru->en in, en->ru out),
converted by `python -m conversion` without TensorFlow.

| | |
|---|---|
| source | `{source}` (bundle prefix `{prefix}`) |
| converted | {_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} |
| architecture | GPT2LMHeadModel, n_layer {hp.n_layer}, n_embd {hp.n_embd}, n_head {hp.n_head}, n_ctx {hp.n_ctx}, n_vocab {hp.n_vocab} |
| parameters | {hp.n_params:,} ({n_tensors} tensors; `lm_head` tied to `wte`) |
| dtype | {dtype} |
| weight files | {", ".join(f"`{f}`" for f in weight_files)} |
| tokenizer | OpenAI byte-level BPE (`encoder.json` + `vocab.bpe`), `<\|endoftext\|>` as bos/eos/unk |
| generation_config.json | preset `{generation}` |
| verification | {verification} |

## Skipped variables (not model weights)
{skipped_lines}

## Use
```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("{name}")
tokenizer = AutoTokenizer.from_pretrained("{name}")
```
"""
    path.write_text(text, encoding="utf-8")
