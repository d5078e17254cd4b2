"""The Hugging Face engine: transformers `generate` on left-padded batches, in this process (CPU or CUDA)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from adventure.engines.base import Generation, Progress, finish_row
from adventure.generation import GenerationSettings
from adventure.models import context_length, load_causal_lm

log = logging.getLogger(__name__)


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.context_length = context_length(model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        dtype = str(model.dtype).removeprefix("torch.")
        self.description = f"hf {dtype} on {next(model.parameters()).device.type}"

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
        return [finish_row(self.tokenizer, row, settings.stop_strings) for row in out[:, width:].tolist()]

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed NLL (nats) of each pair's target tokens given its prompt: right-padded batches, longest first."""
        import torch

        device = next(self.model.parameters()).device
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        out = [0.0] * len(pairs)
        for start in range(0, len(order), batch_size):
            batch = [pairs[i] for i in order[start: start + batch_size]]
            width = max(len(p) + len(t) for p, t in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)  # right padding: positions stay 0..n-1
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (prompt, target) in enumerate(batch):
                seq = list(prompt) + list(target)
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
                labels[row, len(prompt): len(seq)] = torch.tensor(list(target))
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            # Position t predicts token t+1.
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            gold = labels[:, 1:].to(device)
            picked = logp.gather(-1, gold.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            nll = -(picked * (gold != -100)).sum(dim=1).double()
            for row, index in enumerate(order[start: start + batch_size]):
                out[index] = float(nll[row])
        return out

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
