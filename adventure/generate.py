"""Batched generation with the shared settings: left-padded prompts, new tokens decoded, output cleaned.

Eval and serving both call `generate_results`, so a model's behaviour in a report is the behaviour players get.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adventure.cleanup import CleanedText, clean_generation
from adventure.generation import GenerationSettings


@dataclass(frozen=True)
class Generated:
    raw: str  # decoded new tokens, before cleanup
    cleaned: CleanedText
    new_tokens: int


def generate_results(model, tokenizer, prompts: Sequence[Sequence[int]], settings: GenerationSettings,
                     seed: int | None = None) -> list[Generated]:
    """Generate a continuation for each prompt (token ids) in one left-padded batch."""
    import torch

    if not prompts:
        return []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        if ids:
            input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
            attention[row, width - len(ids):] = 1
    device = next(model.parameters()).device
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                             pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id,
                             **settings.generate_kwargs())
    results = []
    specials = [t for t in tokenizer.all_special_tokens if t]
    for row in out[:, width:].tolist():
        # Stop at the first EOS: everything after it is padding of a finished sequence.
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id)]
        raw = tokenizer.decode(row, skip_special_tokens=True)
        results.append(Generated(raw=raw, cleaned=clean_generation(raw, specials), new_tokens=len(row)))
    return results
