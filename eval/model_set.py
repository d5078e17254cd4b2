"""Which models a report compares, resolved and checked before any work starts.

`models:` in configs/eval.yaml is either `auto` or a list whose items are a spec string or a mapping
{name, spec, language, translator_in, translator_out}:

    auto  the trained tiny model (<artifacts>/models/tiny, required), its untrained initialisation
          (`tiny-untrained`, the floor every trained model must beat), then every other causal-LM folder under
          <artifacts>/models/, sorted by name. Translator folders (tiny-opus-mt-*, or any encoder-decoder model)
          and hidden/temporary folders are skipped.

A model's language decides how it is fed: a Russian model reads the Russian prompt directly; an English one is
wrapped like the seed's GPT2-XL (prompt translated ru->en by `translator_in`, reply en->ru by `translator_out`)
and its likelihood is measured on the English side, so it is marked not comparable. The language is the config
entry's `language:`, else what adventure.model_language.detect_language finds (gamio.json, model card, tokenizer).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adventure.errors import GamioError
from adventure.model_language import LANGUAGES, detect_language
from adventure.models import (TINY, TINY_UNTRAINED, ModelSource, check_hub_available, models_dir,
                              resolve_model_spec)

log = logging.getLogger(__name__)

TRANSLATOR_PREFIX = "tiny-opus-mt-"



@dataclass(frozen=True)
class EvalModel:
    name: str  # the label in the report
    spec: str  # what serving's model=best loads (tiny | tiny-untrained | folder | hub id)
    language: str  # ru | en
    language_rule: str  # which rule decided the language (see the module docstring)
    source: ModelSource
    translator_in: str | None = None  # ru->en translator spec, English models only
    translator_out: str | None = None  # en->ru translator spec, English models only

    @property
    def floor(self) -> bool:
        """The untrained floor: the bar every trained model must clear, never a winner of a column."""
        return self.spec == TINY_UNTRAINED

    @property
    def comparable(self) -> bool:
        """Only Russian-side likelihoods measure what players read; translated ones are a different text."""
        return self.language == "ru"


def is_translator_folder(folder: Path) -> bool:
    if folder.name.startswith(TRANSLATOR_PREFIX):
        return True
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(config.get("is_encoder_decoder"))


def discover_model_folders(artifacts: Path) -> list[Path]:
    """Causal-LM folders under <artifacts>/models/, and one level below (a training sweep's jobs publish into
    models/<model>/<overrides>/), sorted by path (translators and temp folders skipped)."""
    root = models_dir(artifacts)
    if not root.is_dir():
        return []
    candidates = [p for top in sorted(root.iterdir()) if not top.name.startswith(".")
                  for p in [top, *(sorted(top.iterdir()) if top.is_dir() else [])]]
    return [p for p in candidates
            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
            and not is_translator_folder(p)]


def auto_entries(artifacts: Path) -> list[dict[str, Any]]:
    """The default model list: trained tiny, tiny-untrained, then every other model folder (named by its path
    below models/, e.g. `tiny/loss_on=result`). Without a trained tiny, the other trained folders suffice."""
    root = models_dir(artifacts)
    trained = root / TINY
    others = [p for p in discover_model_folders(artifacts)
              if p.relative_to(root).as_posix() not in (TINY, TINY_UNTRAINED)]
    if not (trained / "config.json").is_file() and not others:
        raise GamioError(f"model 'tiny' (the trained tiny model) not found at {trained}: run `python -m training "
                         f"paths.artifacts={artifacts}` first, or list the models to compare: models=[...]")
    entries: list[dict[str, Any]] = [{"name": TINY, "spec": TINY}] if (trained / "config.json").is_file() else []
    entries.append({"name": TINY_UNTRAINED, "spec": TINY_UNTRAINED})
    entries += [{"name": folder.relative_to(root).as_posix(), "spec": str(folder)} for folder in others]
    return entries


def _entry(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, str):
        return {"spec": item}
    if hasattr(item, "items"):
        entry = dict(item.items())
        unknown = sorted(set(entry) - {"name", "spec", "language", "translator_in", "translator_out"})
        if unknown:
            raise GamioError(f"models[{index}]: unknown key(s) {unknown}; "
                             f"use name, spec, language, translator_in, translator_out")
        if not entry.get("spec"):
            raise GamioError(f"models[{index}]: no spec (tiny | tiny-untrained | a model folder | a hub id)")
        return entry
    raise GamioError(f"models[{index}]: expected a spec string or a mapping, got {type(item).__name__}")


def _default_name(spec: str) -> str:
    return Path(spec.rstrip("/")).name if ("/" in spec and Path(spec).expanduser().exists()) else spec


def _resolve_source(name: str, spec: str, artifacts: Path) -> ModelSource:
    if spec == TINY and not (models_dir(artifacts) / TINY / "config.json").is_file():
        # resolve_model_spec would quietly fall back to the untrained model: in a comparison that would
        # report the floor under the trained model's name.
        raise GamioError(f"model {name!r}: the trained tiny model is missing ({models_dir(artifacts) / TINY}); "
                         f"run `python -m training paths.artifacts={artifacts}` first")
    try:
        source = resolve_model_spec(spec, artifacts)
    except GamioError as exc:
        raise GamioError(f"model {name!r}: {exc}") from None
    if source.kind == "hub":
        check_hub_available(spec, hint=f"the spec of model {name!r}")
    return source


def resolve_models(models_cfg: Any, artifacts: Path, translators: dict[str, str | None]) -> list[EvalModel]:
    """Every model of the config, resolved and checked (folders, hub cache, names, languages, translators)."""
    artifacts = Path(artifacts)
    if models_cfg is None or models_cfg == "auto":
        items: list[Any] = auto_entries(artifacts)
    elif isinstance(models_cfg, str):
        items = [models_cfg]
    else:
        items = list(models_cfg)
    if not items:
        raise GamioError("models is empty: give at least one model spec, or models=auto")

    resolved: list[EvalModel] = []
    for index, item in enumerate(items):
        entry = _entry(item, index)
        spec = str(entry["spec"]).strip()
        name = str(entry.get("name") or _default_name(spec))
        source = _resolve_source(name, spec, artifacts)
        language = entry.get("language")
        if language is not None and language not in LANGUAGES:
            raise GamioError(f"model {name!r}: language must be one of {list(LANGUAGES)}, got {language!r}")
        language, rule = (language, "config") if language else detect_language(source)
        t_in = t_out = None
        if language == "en":
            t_in = str(entry.get("translator_in") or translators.get("ru_en") or "")
            t_out = str(entry.get("translator_out") or translators.get("en_ru") or "")
        resolved.append(EvalModel(name=name, spec=spec, language=language, language_rule=rule, source=source,
                                  translator_in=t_in, translator_out=t_out))
        log.info("model %s: %s (%s, language %s by %s)", name, source.location, source.kind, language, rule)

    names = [m.name for m in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise GamioError(f"model name(s) {duplicates} used twice; give each entry its own name")
    check_translators(resolved, artifacts)
    return resolved


def translator_specs(models: list[EvalModel]) -> list[tuple[str, str]]:
    """The (spec, direction) pairs of the translators in use, in first-use order."""
    pairs: list[tuple[str, str]] = []
    for model in models:
        for spec, direction in ((model.translator_in, "ru-en"), (model.translator_out, "en-ru")):
            if spec and (spec, direction) not in pairs:
                pairs.append((spec, direction))
    return pairs


def check_translators(models: list[EvalModel], artifacts: Path) -> None:
    from adventure.translation import resolve_translation_model

    for model in models:
        if model.language == "en" and not (model.translator_in and model.translator_out):
            raise GamioError(f"model {model.name!r} is English and needs translator_in (ru->en) and "
                             f"translator_out (en->ru), or translation.ru_en / translation.en_ru")
    for spec, direction in translator_specs(models):
        try:
            ref, _key, is_local = resolve_translation_model(spec, direction, artifacts)
        except GamioError as exc:
            raise GamioError(f"translator {spec!r} ({direction}): {exc}") from None
        if not is_local:
            key = "ru_en" if direction == "ru-en" else "en_ru"
            check_hub_available(str(ref), hint=f"translation.{key}=/path/to/folder (or translation=tiny)")
