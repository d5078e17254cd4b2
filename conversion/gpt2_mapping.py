"""Which TensorFlow variable of openai/gpt-2's model.py becomes which GPT2LMHeadModel weight, and its shape.

The TF conv1d weights are `[1, nx, nf]` and transformers' Conv1D keeps the same `[nx, nf]` layout, so the leading 1
is squeezed and nothing is transposed. `lm_head.weight` is tied to `wte` and not stored. Anything that is not a
model weight (Adam slots, beta powers, global_step, ...) is skipped and reported, never silently converted.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from conversion.errors import MappingError

HPARAM_KEYS = ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")
_OPTIMIZER = re.compile(r"(^|/)(Adam(_\d+)?|beta[12]_power|global_step|Momentum|RMSProp(_\d+)?|accum\w*)$")


@dataclass(frozen=True)
class HParams:
    n_vocab: int
    n_ctx: int
    n_embd: int
    n_head: int
    n_layer: int

    @property
    def n_params(self) -> int:
        e = self.n_embd
        per_layer = 4 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * 4 * e + 4 * e) + (4 * e * e + e)
        return self.n_vocab * e + self.n_ctx * e + self.n_layer * per_layer + 2 * e


def load_hparams(path: Path) -> HParams:
    """Read and check hparams.json; a bad one is a MappingError that says what is wrong."""
    if not path.is_file():
        raise MappingError(f"missing file {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"bad hparams {path}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise MappingError(f"bad hparams {path}: expected an object with {list(HPARAM_KEYS)}")
    missing = [k for k in HPARAM_KEYS if k not in raw]
    if missing:
        raise MappingError(f"bad hparams {path}: missing {missing}")
    for key in HPARAM_KEYS:
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise MappingError(f"bad hparams {path}: {key} must be a positive integer, got {value!r}")
    hparams = HParams(**{k: raw[k] for k in HPARAM_KEYS})
    if hparams.n_embd % hparams.n_head:
        raise MappingError(f"bad hparams {path}: n_embd {hparams.n_embd} is not divisible by n_head {hparams.n_head}")
    return hparams


def weight_map(hp: HParams) -> dict[str, tuple[str, tuple[int, ...]]]:
    """TF variable name -> (GPT2LMHeadModel key, expected TF shape), in the order transformers lists them."""
    e = hp.n_embd
    mapping = {
        "model/wte": ("transformer.wte.weight", (hp.n_vocab, e)),
        "model/wpe": ("transformer.wpe.weight", (hp.n_ctx, e)),
    }
    for i in range(hp.n_layer):
        tf, pt = f"model/h{i}", f"transformer.h.{i}"
        mapping.update({
            f"{tf}/ln_1/g": (f"{pt}.ln_1.weight", (e,)),
            f"{tf}/ln_1/b": (f"{pt}.ln_1.bias", (e,)),
            f"{tf}/attn/c_attn/w": (f"{pt}.attn.c_attn.weight", (1, e, 3 * e)),
            f"{tf}/attn/c_attn/b": (f"{pt}.attn.c_attn.bias", (3 * e,)),
            f"{tf}/attn/c_proj/w": (f"{pt}.attn.c_proj.weight", (1, e, e)),
            f"{tf}/attn/c_proj/b": (f"{pt}.attn.c_proj.bias", (e,)),
            f"{tf}/ln_2/g": (f"{pt}.ln_2.weight", (e,)),
            f"{tf}/ln_2/b": (f"{pt}.ln_2.bias", (e,)),
            f"{tf}/mlp/c_fc/w": (f"{pt}.mlp.c_fc.weight", (1, e, 4 * e)),
            f"{tf}/mlp/c_fc/b": (f"{pt}.mlp.c_fc.bias", (4 * e,)),
            f"{tf}/mlp/c_proj/w": (f"{pt}.mlp.c_proj.weight", (1, 4 * e, e)),
            f"{tf}/mlp/c_proj/b": (f"{pt}.mlp.c_proj.bias", (e,)),
        })
    mapping["model/ln_f/g"] = ("transformer.ln_f.weight", (e,))
    mapping["model/ln_f/b"] = ("transformer.ln_f.bias", (e,))
    return mapping


def hf_shape(tf_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Conv1D weights lose their leading 1; everything else keeps its shape."""
    return tf_shape[1:] if len(tf_shape) == 3 and tf_shape[0] == 1 else tf_shape


@dataclass(frozen=True)
class Plan:
    convert: list[tuple[str, str, tuple[int, ...]]]  # (TF name, HF key, HF shape), in output order
    skipped: dict[str, str]  # TF name -> why it is not converted


def plan(hp: HParams, shapes: dict[str, tuple[int, ...]]) -> Plan:
    """Match the checkpoint's variables against GPT-2's; a missing or mis-shaped weight is a MappingError."""
    expected = weight_map(hp)
    missing = [name for name in expected if name not in shapes]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise MappingError(f"missing weight {missing[0]!r}{more} in the checkpoint (hparams: n_layer={hp.n_layer})")
    for name, (_, shape) in expected.items():
        if tuple(shapes[name]) != shape:
            raise MappingError(f"mis-shaped weight {name!r}: checkpoint has {list(shapes[name])}, hparams.json "
                               f"implies {list(shape)}")
    skipped = {}
    for name in shapes:
        if name not in expected:
            skipped[name] = "optimizer state" if _OPTIMIZER.search(name) else "not a GPT-2 model weight"
    convert = [(name, key, hf_shape(shape)) for name, (key, shape) in expected.items()]
    return Plan(convert=convert, skipped=dict(sorted(skipped.items())))
