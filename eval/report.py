"""report.json: every number of a run, the recommended model, and where it all came from.

Reproducibility contract: two runs with the same config write byte-identical files except under the key
`timing`, which holds everything that depends on the wall clock (latencies, tokens/s, durations, dates).
So: keys are sorted, floats rounded (FLOAT_DIGITS decimals: far below any difference worth reading, far above
float noise), no dates or durations outside `timing`, and models, sets and prompts appear in config order.

Top-level keys:
    schema_version, report_name, seed, model_order (the config's order; JSON keys are sorted)
    models       {name: {spec, kind, location, language, language_rule, comparable, translator_in, translator_out,
                  engine: {generation, likelihood}}}   (engine: what produced the numbers, e.g. "ct2 int8 on cpu")
    sets         {test|playthrough|parallel: {size, content_sha256, description, ...}}
    results      test:        {model: {perplexity, bits_per_char, nll_bits, tokens, characters, samples, targets_cut,
                               side, comparable}}
                 playthrough: {model: {<generation preset>: {mean_length, mean_new_tokens, empty_share, distinct_1,
                               distinct_2, repeated_4gram_rate, cyrillic_share, cut_action_share, samples}}}
                 parallel:    {translator: {bleu, chrf, direction, engine, model, pairs}}
    samples      [{id, world_tail, history_actions, action, gold, outputs: {model: {preset: text}}}]
    recommended  {name, spec, language, location, bits_per_char, reason, ...} (null if no Russian-side model)
    provenance   {git_commit, git_dirty, config, seed, packages, dataset, model_weights_sha256}
    timing       {started_at, total_seconds, models: {model: {test_seconds, playthrough: {preset: {latency_p50_s,
                  latency_p95_s, tokens_per_s, seconds}}}}, translators: {name: {seconds}}}
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from adventure.paths import REPO_ROOT
from adventure.publish import write_file
from eval.model_set import EvalModel

SCHEMA_VERSION = 1
FLOAT_DIGITS = 6
TIMING_DIGITS = 4
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")
PACKAGES = ("gamio", "torch", "transformers", "tokenizers", "ctranslate2", "datasets", "sacrebleu", "numpy",
            "hydra-core")


def rounded(value: Any, digits: int = FLOAT_DIGITS) -> Any:
    """The same structure with floats rounded (NaN/inf become null: JSON has no such numbers)."""
    if isinstance(value, float):
        return round(value, digits) + 0.0 if math.isfinite(value) else None  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, dict):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def weights_folder(model: EvalModel) -> Path | None:
    """The folder holding a model's weights: its own folder, or its snapshot in the hub cache."""
    if model.source.is_local:
        return Path(model.source.location)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model.spec, local_files_only=True))
    except Exception:  # noqa: BLE001 - provenance of a hub model outside the cache is simply unknown
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model: EvalModel) -> dict[str, str] | None:
    folder = weights_folder(model)
    if folder is None:
        return None
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)}


def model_entry(model: EvalModel, engine: dict | None = None) -> dict:
    return {"spec": model.spec, "engine": engine, "kind": model.source.kind, "location": model.source.location,
            "language": model.language, "language_rule": model.language_rule, "comparable": model.comparable,
            "translator_in": model.translator_in, "translator_out": model.translator_out}


def recommend(models: list[EvalModel], test_results: dict, latency_p50: dict[str, float]) -> dict | None:
    """The lowest bits/char on the test split among comparable models; ties broken by p50 latency."""
    def bpc(name: str) -> float | None:
        value = test_results.get(name, {}).get("bits_per_char")
        return round(value, FLOAT_DIGITS) if isinstance(value, float) and math.isfinite(value) else None

    candidates = [m for m in models if m.comparable and bpc(m.name) is not None]
    if not candidates:
        return None
    inf = float("inf")
    ranked = sorted(candidates, key=lambda m: (bpc(m.name), latency_p50.get(m.name, inf), m.name))
    best = ranked[0]
    tied = [m.name for m in ranked[1:] if bpc(m.name) == bpc(best.name)]
    others = ", ".join(f"{m.name} {bpc(m.name):.4f}" for m in ranked[1:]) or "none"
    reason = (f"{best.name} has the lowest bits per character on the test split ({bpc(best.name):.4f}) "
              f"among the {len(candidates)} Russian-side model(s) (others: {others}).")
    if tied:
        reason += f" It ties with {', '.join(tied)} on bits/char and has the lower p50 turn latency (see timing)."
    excluded = [m.name for m in models if not m.comparable]
    if excluded:
        reason += (f" Not considered: {', '.join(excluded)} (English translate-wrap models: their likelihood is "
                   f"measured on translated English text, not comparable to Russian-side bits/char).")
    return {"name": best.name, "spec": best.spec, "language": best.language, "location": best.source.location,
            "kind": best.source.kind, "bits_per_char": bpc(best.name), "reason": reason,
            "translator_in": best.translator_in, "translator_out": best.translator_out}


def build_report(*, report_name: str, seed: int, config: dict, models: list[EvalModel], sets: dict,
                 results: dict, samples: list, dataset: dict, timing: dict, engines: dict | None = None,
                 preferences: dict | None = None) -> dict:
    """The report; `engines` names per model what produced its numbers: {name: {generation, likelihood}}."""
    p50 = {}
    for name, per_model in timing.get("models", {}).items():
        presets = per_model.get("playthrough", {})
        if presets:
            p50[name] = next(iter(presets.values()))["latency_p50_s"]
    report = {
        "schema_version": SCHEMA_VERSION,
        "report_name": report_name,
        "seed": seed,
        "models": {m.name: model_entry(m, (engines or {}).get(m.name)) for m in models},
        "model_order": [m.name for m in models],  # keys are sorted in the file; this keeps the config's order
        "sets": sets,
        "results": results,
        "samples": samples,
        "recommended": recommend(models, results.get("test", {}), p50),
        "preferences": preferences,  # the game's blind arena votes (eval/preferences.py), null without votes
        "provenance": {**git_state(), "config": config, "seed": seed, "packages": package_versions(),
                       "dataset": dataset, "model_weights_sha256": {m.name: weights_sha256(m) for m in models}},
    }
    report = rounded(report)
    report["timing"] = rounded(timing, TIMING_DIGITS)
    return report


def write_json(report: dict, path: Path) -> Path:
    """Sorted keys, fixed indentation, UTF-8 text: the same report is the same bytes. Written atomically."""
    return write_file(path, json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False) + "\n")
