"""The model card of a converted folder: where it came from, what was done to it, and how it was checked."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from adventure.model_card import eval_results, rows, usage, write_model_card
from conversion.gpt2_mapping import HParams


def write_conversion_card(folder: Path, *, name: str, source: Path, prefix: str, hp: HParams, dtype: str,
                          n_tensors: int, weight_files: list[str], skipped: dict[str, str], verification,
                          generation: str) -> None:
    """README.md + MODEL_CARD.md; `verification` is verify.VerifyResult, or None when verify=false."""
    skipped_lines = "\n".join(f"- `{var}` ({why})" for var, why in skipped.items()) or "- none"
    checked = "passed: " + verification.summary() if verification else "not run (verify=false)"
    table = rows([
        ("source", f"folder `{source.name}` (bundle prefix `{prefix}`)"),
        ("converted", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("architecture", f"GPT2LMHeadModel, n_layer {hp.n_layer}, n_embd {hp.n_embd}, n_head {hp.n_head}, "
         f"n_ctx {hp.n_ctx}, n_vocab {hp.n_vocab}"),
        ("parameters", f"{hp.n_params:,} ({n_tensors} tensors; `lm_head` tied to `wte`)"),
        ("dtype", dtype),
        ("weight files", ", ".join(f"`{f}`" for f in weight_files)),
        ("tokenizer", r"OpenAI byte-level BPE (`encoder.json` + `vocab.bpe`), `<\|endoftext\|>` as bos/eos/unk"),
        ("generation_config.json", f"preset `{generation}`"),
        ("verification", checked),
    ])
    body = f"""# GPT-2 converted from a TensorFlow checkpoint

English GPT-2 language model (the gamio `gamegpt_xl` slot: the game wraps it in opus-mt, ru->en in, en->ru out),
converted by `python -m conversion` without TensorFlow. Its training data is whatever the checkpoint's authors
used; the converter does not know it, so the card names no dataset.

{table}

## Skipped variables (not model weights)
{skipped_lines}

{usage(name)}
"""
    # The metric is the converted model's logits against an independent numpy forward pass of the TF checkpoint.
    results = eval_results(("gamio-verify-prompts", "verification prompts", None), [
        ("max_abs_logit_diff", "max abs logit difference vs the TensorFlow checkpoint",
         verification.max_diff if verification else None)])
    write_model_card(folder, body, name=name, language="en", results=results)
