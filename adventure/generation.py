"""Generation settings: one dataclass, loaded from `configs/generation/<name>.yaml`, used by every stage.

The seed's values (`gamio`) are the defaults so that a model card, an eval report and the game server all
speak of the same decoding procedure.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from adventure.paths import CONFIGS_DIR


@dataclass(frozen=True)
class GenerationSettings:
    name: str = "gamio"
    max_new_tokens: int = 55
    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 0.95
    num_beams: int = 2
    repetition_penalty: float = 5.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "GenerationSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown generation setting(s) {unknown}; known: {sorted(known)}")
        settings = cls(**dict(values))
        settings.validate()
        return settings

    @classmethod
    def load(cls, name: str = "gamio") -> "GenerationSettings":
        """Load a preset by name (configs/generation/<name>.yaml) or from a YAML file path."""
        path = Path(name)
        if not path.suffix:
            path = CONFIGS_DIR / "generation" / f"{name}.yaml"
        if not path.is_file():
            choices = sorted(p.stem for p in (CONFIGS_DIR / "generation").glob("*.yaml"))
            raise FileNotFoundError(f"no generation preset {name!r}; choices: {choices}")
        with open(path, encoding="utf-8") as fh:
            return cls.from_mapping(yaml.safe_load(fh) or {})

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate` (the name is not a transformers setting)."""
        values = dataclasses.asdict(self)
        values.pop("name")
        return values

    def to_generation_config(self, tokenizer=None):
        """A transformers GenerationConfig carrying these settings and the tokenizer's special ids."""
        from transformers import GenerationConfig

        extra: dict[str, Any] = {}
        if tokenizer is not None:
            eos = tokenizer.eos_token_id
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
            extra = {"eos_token_id": eos, "pad_token_id": pad, "bos_token_id": tokenizer.bos_token_id}
        return GenerationConfig(**self.generate_kwargs(), **extra)
