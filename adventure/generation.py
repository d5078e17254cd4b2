"""Generation settings: one dataclass, the schema of `configs/generation/<name>.yaml`, used by every stage.

The presets (`gamio`, the seed's settings; `greedy`) are the YAML files; this class says what each key means and
what values it takes, so a model card, an eval report and the game server all speak of the same decoding.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping

from omegaconf import OmegaConf

from adventure.config import ConfigError, check_config, setting
from adventure.paths import CONFIGS_DIR

PRESETS_DIR = CONFIGS_DIR / "generation"


@dataclass
class GenerationSettings:
    name: str = setting(help="the preset's name (its file name in configs/generation/)")
    max_new_tokens: int = setting(ge=1, help="tokens generated per turn (the seed: 55)")
    do_sample: bool = setting(help="sample (true) or search greedily / by beams (false)")
    temperature: float = setting(gt=0, help="softmax temperature when sampling")
    top_k: int = setting(ge=0, help="sample among the k most likely tokens (0: no limit)")
    top_p: float = setting(gt=0, le=1, help="nucleus sampling mass")
    num_beams: int = setting(ge=1, help="beams; > 1 with do_sample is beam sampling (the seed: 2)")
    repetition_penalty: float = setting(gt=0, help="> 1 discourages repeating tokens (the seed: 5.0)")
    stop_strings: List[str] = setting([], help="generation ends early at any of these (cut from the reply)")
    bad_words_ids: List[List[int]] = setting([], help="token sequences the model may not write (a game's banned "
                                                     "words, every inflection, as the engine's tokenizer spells them)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "GenerationSettings":
        """Settings from plain data (a YAML file, a config node), checked; unknown or bad keys are named."""
        try:
            node = OmegaConf.merge(OmegaConf.structured(cls), dict(values))
        except Exception as exc:  # noqa: BLE001 - OmegaConf's validation errors
            from adventure.config import describe_config_error

            raise ConfigError(f"generation settings: {describe_config_error(exc)}") from None
        check_config(node, cls, "generation.")
        return OmegaConf.to_object(node)  # type: ignore[return-value]

    @classmethod
    def load(cls, name: str = "gamio") -> "GenerationSettings":
        """A preset by name (configs/generation/<name>.yaml) or a YAML file path."""
        path = Path(name)
        if not path.suffix:
            path = PRESETS_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"no generation preset {name!r}; choices: {preset_names()}")
        return cls.from_mapping(OmegaConf.to_container(OmegaConf.load(path)))

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate` (the name is not a transformers setting)."""
        values = dataclasses.asdict(self)
        values.pop("name")
        for key in ("stop_strings", "bad_words_ids"):  # transformers wants them absent rather than empty
            if not values[key]:
                values.pop(key)
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


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
