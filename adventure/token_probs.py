"""Token probabilities of a reply: for each of its tokens, the probability the model gave it after the prompt and
the text before it, and the most likely alternatives it weighed there (what NovelAI and Kobold Lite show).

They are the model's own next-token distribution (softmax of the logits, temperature 1, before any sampling
setting or repetition penalty reshapes it), computed by one forward pass over prompt + reply:
    engine=hf    the transformers model's logits
    engine=ct2   CTranslate2's `Generator.forward_batch(..., return_log_probs=True)`
Other engines (vllm, openai) do not offer the full distribution here: `supported()` says so. The reply is the
stored, cleaned text, tokenized again; a continuation starts with the space that joins it to the prompt.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from adventure.budget import encode_text

ENGINES = ("hf", "ct2")


@dataclass(frozen=True)
class TokenProb:
    text: str
    prob: float
    top: list[tuple[str, float]]  # the most likely tokens at this step, most likely first

    def to_dict(self) -> dict:
        return {"text": self.text, "prob": round(self.prob, 6),
                "top": [{"text": t, "prob": round(p, 6)} for t, p in self.top]}


def supported(engine) -> bool:
    return getattr(engine, "name", None) in ENGINES


def reply_probs(engine, prompt: str, reply: str, top: int = 5) -> list[TokenProb]:
    """Per token of `reply` (after `prompt`): its probability and the `top` alternatives (see the module)."""
    tokenizer = engine.tokenizer
    if prompt and not prompt.endswith("\n") and reply:
        reply = " " + reply  # a continuation: the model wrote the space that joins its reply to the story
    prompt_ids = encode_text(tokenizer, prompt) or [tokenizer.eos_token_id]
    reply_ids = encode_text(tokenizer, reply)
    budget = max(1, engine.context_length - len(reply_ids))
    prompt_ids = prompt_ids[-budget:]  # the reply's own tokens always fit: the prompt keeps its end
    if not reply_ids:
        return []
    rows = _log_probs(engine, prompt_ids + reply_ids)[len(prompt_ids) - 1: len(prompt_ids) + len(reply_ids) - 1]
    out, shown = [], ""
    for k, (token_id, log_probs) in enumerate(zip(reply_ids, rows)):
        # A token may end inside a character (byte-level BPE): the character goes with the token that completes it.
        text = tokenizer.decode(reply_ids[: k + 1])
        text = text if k == len(reply_ids) - 1 else text.rstrip("\ufffd")
        piece = text[len(os.path.commonprefix([text, shown])):]
        shown = text
        best = sorted(range(len(log_probs)), key=log_probs.__getitem__, reverse=True)[:top]
        out.append(TokenProb(piece, math.exp(log_probs[token_id]),
                             [(tokenizer.decode([i]), math.exp(log_probs[i])) for i in best]))
    return out


def _log_probs(engine, ids: list[int]) -> list[list[float]]:
    """Log-softmax of the next-token logits at every position of `ids` (one forward pass)."""
    if engine.name == "ct2":
        import numpy as np

        out = engine.generator.forward_batch([ids], return_log_probs=True)
        if out.device != "cpu":
            out = out.to_device(__import__("ctranslate2").Device.cpu)
        return np.asarray(out, dtype=np.float32)[0].tolist()
    import torch

    model = engine.model
    with torch.inference_mode():
        logits = model(torch.tensor([ids], device=model.device)).logits[0].float()
    return torch.log_softmax(logits, dim=-1).tolist()
