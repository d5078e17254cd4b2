"""Which model to serve: a spec as given, or `best`, the model the newest eval report recommends.

The eval stage writes `<artifacts>/reports/<run>/report.json` with
`{"recommended": {"name": ..., "spec": <tiny | folder | hub id>, "language": "ru" | "en", ...}, ...}`;
"serve the chosen model" means serving that spec in that language.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError

log = logging.getLogger(__name__)
BEST = "best"
LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # for adventure.models.load_causal_lm
    language: str  # ru | en
    name: str  # shown in /healthz and game views: a folder's name, never its path
    report: Path | None = None


def display_name(spec: str) -> str:
    """What players may see of a model spec: a hub id or `tiny` as is, a folder by its name only."""
    from adventure.models import looks_like_path

    spec = str(spec).rstrip("/")
    return (Path(spec).name or spec) if looks_like_path(spec) or Path(spec).expanduser().is_dir() else spec


def newest_report(artifacts: Path) -> Path:
    reports = sorted((Path(artifacts) / "reports").glob("*/report.json"), key=lambda p: (p.stat().st_mtime, str(p)))
    if not reports:
        raise GamioError(f"model=best needs an eval report, and there is none in {Path(artifacts) / 'reports'}: "
                         f"run python -m eval first (or pass model=tiny, a folder or a hub id)")
    return reports[-1]


def choose_model(model: str, language: str, artifacts: Path) -> ModelChoice:
    """Resolve `model` (and `language`: ru | en | auto) to what the server loads."""
    model = str(model).strip()
    language = str(language or "auto").strip()
    if language not in (*LANGUAGES, "auto"):
        raise GamioError(f"language must be ru, en or auto, got {language!r}")
    if model != BEST:
        if language == "auto":  # a folder that says it is English (e.g. the converted GPT2-XL) gets translate-wrap
            from adventure.model_language import detect_language
            from adventure.models import resolve_model_spec

            language = detect_language(resolve_model_spec(model, artifacts))[0]
        return ModelChoice(spec=model, language=language, name=display_name(model))

    path = newest_report(artifacts)
    try:
        recommended = json.loads(path.read_text(encoding="utf-8"))["recommended"]
        spec = str(recommended["spec"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GamioError(f"eval report {path} has no usable recommended model ({type(exc).__name__}: {exc}); "
                         f"rerun python -m eval") from None
    report_language = recommended.get("language", "ru")
    if report_language not in LANGUAGES:
        raise GamioError(f"eval report {path} recommends a model in language {report_language!r}; expected ru or en")
    chosen = report_language if language == "auto" else language
    name = display_name(str(recommended.get("name") or spec))
    log.info("model=best: %s (%s, %s) from %s", name, spec, chosen, path)
    return ModelChoice(spec=spec, language=chosen, name=name, report=path)
