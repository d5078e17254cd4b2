"""The conversion config: every key, its default and its meaning (configs/conversion.yaml lists only the groups).

    python -m conversion checkpoint_dir=<dir> out_dir=<dir> [dtype=float16|float32] [verify=true|false]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from omegaconf import MISSING

from adventure.config import PathsConfig, setting
from adventure.generation import GenerationSettings


def _size_problem(value: str) -> str | None:
    from conversion.safetensors_stream import parse_size

    try:
        size = parse_size(value)
    except ValueError:
        return "is not a size: write e.g. 5GB, 500MB, 1GiB or a number of bytes"
    return None if size > 0 else "must be > 0"


@dataclass
class ConversionConfig:
    paths: PathsConfig = MISSING
    checkpoint_dir: Optional[str] = setting(None, help="`checkpoint`, `<prefix>.index`, `<prefix>.data-*`, "
                                                       "hparams.json, encoder.json, vocab.bpe (OpenAI / model_v5)")
    out_dir: str = setting("${paths.artifacts}/models/gamegpt_xl",
                           help="the English model that training's model=gamegpt_xl, eval and serving load")
    dtype: str = setting("float16", choices=("float16", "float32"),
                         help="float16 halves the 6.2 GB float32 model_v5; float32 keeps it exact")
    verify: bool = setting(True, help="compare against an independent numpy forward pass before publishing")
    verify_prompts: List[str] = setting(["You are standing in an open field.", "> go north\nThe dragon sleeps.",
                                         "You enter the tavern. The innkeeper looks at you and says"])
    max_shard_size: str = setting("5GB", check=_size_problem,
                                  help="above this, weights are split into model-0000i-of-0000n.safetensors")
    overwrite: bool = setting(False, help="replace an existing out_dir (swapped atomically after success)")
    generation: GenerationSettings = MISSING  # configs/generation/<name>.yaml -> generation_config.json
