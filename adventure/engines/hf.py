"""The Hugging Face engine: transformers `generate` on left-padded batches, in this process (CPU or CUDA)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from adventure.engines.base import Generation
from adventure.generation import GenerationSettings
from adventure.models import context_length, load_causal_lm

log = logging.getLogger(__name__)


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.context_length = context_length(model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @classmethod
    def load(cls, cfg, spec: str, artifacts: Path, *, option: str = "model") -> "HFEngine":
        import torch

        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        dtype = getattr(torch, cfg.dtype) if cfg.dtype else None
        model, tokenizer, source = load_causal_lm(spec, artifacts, device=str(cfg.device), dtype=dtype, option=option)
        log.info("hf engine: %s on %s (%s)", source.location, cfg.device, model.dtype)
        return cls(model, tokenizer)

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None) -> list[Generation]:
        """One left-padded batch; each row stops at its first EOS (the rest is padding of a finished row)."""
        import torch

        if not prompts:
            return []
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            if ids:
                input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
                attention[row, width - len(ids):] = 1
        device = next(self.model.parameters()).device
        if seed is not None:
            torch.manual_seed(seed)
        kwargs = settings.generate_kwargs()
        if "stop_strings" in kwargs:
            kwargs["tokenizer"] = self.tokenizer  # transformers matches stop strings on decoded tokens
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                      pad_token_id=self.pad_id, eos_token_id=self.tokenizer.eos_token_id, **kwargs)
        results = []
        eos = self.tokenizer.eos_token_id
        for row in out[:, width:].tolist():
            row = row[: row.index(eos)] if eos in row else row
            results.append(Generation(self.tokenizer.decode(row, skip_special_tokens=True), len(row)))
        return results

    def close(self) -> None:
        self.model = None
