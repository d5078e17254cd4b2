"""The Hugging Face engine: transformers `generate` on left-padded batches, in this process (CPU or CUDA)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from adventure.engines.base import Generation, Progress
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
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation]:
        """One left-padded batch; each row stops at its first EOS (the rest is padding of a finished row).
        `on_progress(row, token_ids)` hears each row's new tokens as soon as all its live beams agree on them."""
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
        if on_progress is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [_AgreedTokens(width, settings.num_beams, self.tokenizer.eos_token_id, on_progress)])
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


class _AgreedTokens:
    """A logits processor that changes nothing: at every step it sees each row's live beams and reports the tokens
    they all agree on (with sampling, the one sequence of the row). Streaming shows only these, so a beam search
    seldom has to take back what was shown (a hypothesis that finished earlier can still win: then a reset)."""

    def __init__(self, width: int, beams: int, eos: int, on_progress: Progress):
        self.width, self.beams, self.eos, self.on_progress = width, beams, eos, on_progress
        self.reported: dict[int, int] = {}

    def __call__(self, input_ids, scores):
        generated = input_ids[:, self.width:]
        if generated.shape[1]:
            rows = generated.reshape(-1, self.beams, generated.shape[1])
            agree = (rows == rows[:, :1]).all(dim=1).int().cumprod(dim=1).sum(dim=1).tolist()
            for row, length in enumerate(agree):
                ids = rows[row, 0, :length].tolist()
                ids = ids[: ids.index(self.eos)] if self.eos in ids else ids
                if len(ids) > self.reported.get(row, 0):
                    self.reported[row] = len(ids)
                    self.on_progress(row, ids)
        return scores
