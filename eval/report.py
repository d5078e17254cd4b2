"""report.json: every number of a run, the recommended model, and where it all came from.

Reproducibility contract: two runs with the same config write byte-identical files except under the key
`timing`, which holds everything that depends on the wall clock (latencies, tokens/s, durations, dates).
So: keys are sorted, floats rounded (FLOAT_DIGITS decimals: far below any difference worth reading, far above
float noise), no dates or durations outside `timing`, and models, sets and prompts appear in config order.

Top-level keys:
    schema_version, report_name, seed, model_order (the config's order; JSON keys are sorted)
    models       {name: {spec, kind, location, language, language_rule, comparable, floor, translator_in,
                  translator_out, engine: {generation, likelihood}}}  (engine: what produced the numbers)
    sets         {test|validation|playthrough|parallel: {size, stories, content_sha256, description, ...}}
    results      test:        {model: {bits_per_char, perplexity, nll_bits, action_following, tokens, characters,
                               samples, targets_cut, side, comparable}}   each float metric with <metric>_ci95
                 validation:  {model: the same, without action_following}
                 playthrough: {model: {<preset>: {mean_length, mean_new_tokens, empty_share, distinct_1, distinct_2,
                               repeated_4gram_rate, cyrillic_share, cut_action_share, looping_share, chrf, samples,
                               failed}}}                                  each float metric with <metric>_ci95
                 parallel:    {translator: {bleu, chrf, direction, engine, model, pairs}} with bleu/chrf_ci95
    comparisons  {test|validation: {model: {metric: {delta, ci95, p_value, items, stories}}},
                  playthrough: {model: {preset: {metric: ...}}}}  model - recommended, paired, story bootstrap
    uncertainty  {method, unit, level, resamples, seed}: how every interval was computed (eval/bootstrap.py)
    warnings     [text]: few stories behind a set's intervals, failed presets, no validation split
    best_presets {model: {preset, reason}}: the best non-failed preset by chrF (ties: fewer loops, config order)
    samples      [{id, world_tail, history_actions, action, gold, outputs: {model: {preset: text}}}]
    recommended  {name, spec, split: "validation", bits_per_char (test), bits_per_char_ci95,
                  validation_bits_per_char, reason, ...} (null if no Russian-side model)
    provenance   {git_commit, git_dirty, config, seed, packages, dataset, model_weights_sha256}
    timing       {started_at, total_seconds, models: {model: {likelihood_seconds, load_seconds, playthrough:
                  {preset: {latency_p50_s, latency_p95_s, tokens_per_s, seconds}}}}, translators: {name: {seconds}}}

Paths are relative (eval/portable.py): the same run in two checkouts or two artifacts folders writes the same
bytes. Per-item scores are in items.jsonl beside it (eval/items.py).
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
            "floor": model.floor,
            "language": model.language, "language_rule": model.language_rule, "comparable": model.comparable,
            "translator_in": model.translator_in, "translator_out": model.translator_out}


def _bpc(results: dict, split: str, name: str) -> float | None:
    value = results.get(split, {}).get(name, {}).get("bits_per_char")
    return round(value, FLOAT_DIGITS) if isinstance(value, float) and math.isfinite(value) else None


def recommend(models: list[EvalModel], results: dict) -> dict | None:
    """The lowest bits/char on the *validation* split among Russian-side models (ties: config order), reported
    with its test numbers. Choosing on test would tune to the very set the report then quotes. Without a
    validation split the test split decides, and the reason says so."""
    split = "validation" if any(_bpc(results, "validation", m.name) is not None for m in models) else "test"
    candidates = [m for m in models if m.comparable and _bpc(results, split, m.name) is not None]
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda m: _bpc(results, split, m.name))  # stable: ties keep config order
    best = ranked[0]
    others = ", ".join(f"{m.name} {_bpc(results, split, m.name):.4f}" for m in ranked[1:]) or "none"
    reason = (f"{best.name} has the lowest bits per character on the {split} split "
              f"({_bpc(results, split, best.name):.4f}) among the {len(candidates)} Russian-side model(s) "
              f"(others: {others}).")
    if split == "test":
        reason += " The dataset has no validation split, so the test split chose the model (optimistic)."
    else:
        test_bpc = _bpc(results, "test", best.name)
        if test_bpc is not None:
            reason += f" On the test split it scores {test_bpc:.4f}."
    excluded = [m.name for m in models if not m.comparable]
    if excluded:
        reason += (f" Not considered: {', '.join(excluded)} (English translate-wrap models: their likelihood is "
                   f"measured on translated English text, not comparable to Russian-side bits/char).")
    test = results.get("test", {}).get(best.name, {})
    return {"name": best.name, "spec": best.spec, "language": best.language, "location": best.source.location,
            "kind": best.source.kind, "split": split, "bits_per_char": _bpc(results, "test", best.name),
            "bits_per_char_ci95": test.get("bits_per_char_ci95"),
            "validation_bits_per_char": _bpc(results, "validation", best.name), "reason": reason,
            "translator_in": best.translator_in, "translator_out": best.translator_out}


def build_report(*, report_name: str, seed: int, config: dict, models: list[EvalModel], sets: dict,
                 results: dict, samples: list, dataset: dict, timing: dict, engines: dict | None = None,
                 preferences: dict | None = None, comparisons: dict | None = None, warnings: list | None = None,
                 best_presets: dict | None = None, uncertainty: dict | None = None,
                 recommended: dict | None = None, artifacts: Path | None = None) -> dict:
    """The report; `engines` names per model what produced its numbers: {name: {generation, likelihood}}.
    With `artifacts`, every absolute path is made relative (eval/portable.py)."""
    from eval.portable import portable

    report = {
        "schema_version": SCHEMA_VERSION,
        "report_name": report_name,
        "seed": seed,
        "models": {m.name: model_entry(m, (engines or {}).get(m.name)) for m in models},
        "model_order": [m.name for m in models],  # keys are sorted in the file; this keeps the config's order
        "sets": sets,
        "results": results,
        "comparisons": comparisons or {},
        "uncertainty": uncertainty,
        "warnings": warnings or [],
        "best_presets": best_presets or {},
        "samples": samples,
        "recommended": recommended if recommended is not None else recommend(models, results),
        "preferences": preferences,  # the game's blind arena votes (eval/preferences.py), null without votes
        "provenance": {**git_state(), "config": config, "seed": seed, "packages": package_versions(),
                       "dataset": dataset, "model_weights_sha256": {m.name: weights_sha256(m) for m in models}},
    }
    if artifacts is not None:
        report = portable(report, artifacts)
    report = rounded(report)
    report["timing"] = rounded(timing, TIMING_DIGITS)
    return report


def write_json(report: dict, path: Path) -> Path:
    """Sorted keys, fixed indentation, UTF-8 text: the same report is the same bytes. Written atomically."""
    return write_file(path, json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False) + "\n")
