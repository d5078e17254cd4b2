"""Check the converted folder against an independent forward pass computed straight from the TF tensors.

The reference is a numpy port of openai/gpt-2's src/model.py (GELU tanh approximation, layer-norm epsilon 1e-5,
causal mask by `w * b - 1e10 * (1 - b)`), in float64 so that the difference measured is the converted model's.
It shares nothing with transformers but the token ids: a wrong name mapping, a transpose or a shard mix-up shows
up as a large difference. The weights are read one at a time and released, like the conversion itself.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from conversion.errors import VerificationError
from conversion.gpt2_mapping import HParams

log = logging.getLogger(__name__)
Weights = Callable[[str], np.ndarray]


def _norm(x, g, b, eps=1e-5):
    u = x.mean(axis=-1, keepdims=True)
    s = np.square(x - u).mean(axis=-1, keepdims=True)
    return (x - u) / np.sqrt(s + eps) * g + b


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * np.power(x, 3))))


def _conv1d(x, weights: Weights, scope: str):
    return x @ weights(f"{scope}/w")[0] + weights(f"{scope}/b")


def _attn(x, weights: Weights, scope: str, n_head: int):
    t, e = x.shape
    q, k, v = np.split(_conv1d(x, weights, f"{scope}/c_attn"), 3, axis=-1)
    q, k, v = (m.reshape(t, n_head, e // n_head).transpose(1, 0, 2) for m in (q, k, v))
    w = q @ k.transpose(0, 2, 1) / np.sqrt(e // n_head)
    b = np.tril(np.ones((t, t)))
    w = w * b - 1e10 * (1 - b)
    w = np.exp(w - w.max(axis=-1, keepdims=True))
    w = w / w.sum(axis=-1, keepdims=True)
    a = (w @ v).transpose(1, 0, 2).reshape(t, e)
    return _conv1d(a, weights, f"{scope}/c_proj")


def reference_logits(weights: Weights, hp: HParams, ids: list[int]) -> np.ndarray:
    """Logits [len(ids), n_vocab] of openai/gpt-2's model for one sequence."""
    return reference_logits_batch(weights, hp, [ids])[0]


def reference_logits_batch(weights: Weights, hp: HParams, sequences: list[list[int]]) -> list[np.ndarray]:
    """Logits of several sequences, layer by layer: each weight is fetched once per layer, not once per prompt."""
    wte, wpe = weights("model/wte"), weights("model/wpe")
    hs = [wte[ids] + wpe[: len(ids)] for ids in sequences]
    for i in range(hp.n_layer):
        s = f"model/h{i}"
        cache: dict[str, np.ndarray] = {}

        def layer(name: str, _cache=cache) -> np.ndarray:
            if name not in _cache:
                _cache[name] = weights(name)
            return _cache[name]

        for j, h in enumerate(hs):
            h = h + _attn(_norm(h, layer(f"{s}/ln_1/g"), layer(f"{s}/ln_1/b")), layer, f"{s}/attn", hp.n_head)
            m = _norm(h, layer(f"{s}/ln_2/g"), layer(f"{s}/ln_2/b"))
            hs[j] = h + _conv1d(_gelu(_conv1d(m, layer, f"{s}/mlp/c_fc")), layer, f"{s}/mlp/c_proj")
        del cache
    g, b = weights("model/ln_f/g"), weights("model/ln_f/b")
    return [_norm(h, g, b) @ wte.T for h in hs]


@dataclass(frozen=True)
class VerifyResult:
    max_diff: float  # converted model vs the reference on the stored (output-dtype) weights
    tolerance: float
    rounding_diff: float  # how far the output dtype's rounding moved the logits from the float32 checkpoint
    n_prompts: int
    n_tokens: int

    def summary(self) -> str:
        return (f"max abs logit difference {self.max_diff:.3g} (tolerance {self.tolerance:.3g}) on {self.n_prompts} "
                f"prompts / {self.n_tokens} tokens; dtype rounding moves logits by up to {self.rounding_diff:.3g}")


def verify(reader, hp: HParams, model_dir: Path, out_dtype: str, prompts: list[str], tokenizer,
           base_tolerance: float = 1e-4) -> VerifyResult:
    """Compare every position's logits; raise VerificationError above tolerance.

    The tolerance is `base_tolerance * max(1, max |logit|)`: 1e-4 absolute for logits of order 1, relative for the
    large logits of real GPT-2. The reference uses the weights as stored (rounded to `out_dtype`), so float16 output
    is held to the same arithmetic tolerance; the extra difference float16 rounding makes is measured and reported.
    """
    import torch
    from transformers import AutoModelForCausalLM

    def stored(name: str) -> np.ndarray:
        return reader.read(name).astype(out_dtype).astype(np.float64)

    def original(name: str) -> np.ndarray:
        return reader.read(name).astype(np.float64)

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    sequences = [ids for ids in (tokenizer(p)["input_ids"][: hp.n_ctx] for p in prompts) if ids]
    wanted = reference_logits_batch(stored, hp, sequences)
    exact = reference_logits_batch(original, hp, sequences) if out_dtype != "float32" and sequences else wanted
    max_diff = rounding = 0.0
    tolerance = base_tolerance
    for ids, want, exact_want in zip(sequences, wanted, exact):
        with torch.no_grad():
            got = model(torch.tensor([ids])).logits[0].double().numpy()
        tolerance = max(tolerance, base_tolerance * max(1.0, float(np.abs(want).max())))
        max_diff = max(max_diff, float(np.abs(got - want).max()))
        rounding = max(rounding, float(np.abs(exact_want - want).max()))
    n_tokens = sum(len(ids) for ids in sequences)
    for name in reader.names():
        reader.release(name)
    result = VerifyResult(max_diff, tolerance, rounding, len(sequences), n_tokens)
    log.info("verification: %s", result.summary())
    if not n_tokens:
        raise VerificationError("verification had no tokens: give verify_prompts with some text")
    if not max_diff <= tolerance:
        raise VerificationError(f"converted model disagrees with the numpy reference: {result.summary()}")
    return result
