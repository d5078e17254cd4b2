"""report.md: the report for people. One table per set (best value per column in bold), replies of all models
side by side for the same prompts, and why the recommended model was chosen. Every number comes from report.json.
"""
from __future__ import annotations

from pathlib import Path

# Which way is better, per column; columns not listed (sizes, lengths) get no bold.
BETTER = {"bradley_terry": max, "win_rate": max, "bits_per_char": min, "perplexity": min, "distinct_1": max, "distinct_2": max,
          "repeated_4gram_rate": min, "cyrillic_share": max, "cut_action_share": min, "empty_share": min,
          "latency_p50_s": min, "latency_p95_s": min, "tokens_per_s": max, "bleu": max, "chrf": max}
LIKELIHOOD_COLUMNS = ("bits_per_char", "perplexity", "tokens", "characters", "samples")
GENERATION_COLUMNS = ("mean_length", "distinct_1", "distinct_2", "repeated_4gram_rate", "cyrillic_share",
                      "cut_action_share", "empty_share")
TIMING_COLUMNS = ("latency_p50_s", "latency_p95_s", "tokens_per_s")
TRANSLATION_COLUMNS = ("bleu", "chrf", "pairs", "engine")


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def table(rows: dict[str, dict], columns: tuple[str, ...], first: str = "model",
          eligible: set[str] | None = None) -> str:
    """Markdown table; in each column the best value among `eligible` rows (default all) is bold."""
    eligible = set(rows) if eligible is None else eligible
    best = {}
    for column, pick in BETTER.items():
        values = [r.get(column) for name, r in rows.items() if name in eligible and r.get(column) is not None]
        if column in columns and len(set(values)) > 1:  # a column where all are equal has no best
            best[column] = pick(values)
    lines = ["| " + " | ".join((first,) + columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = []
        for column in columns:
            text = fmt(row.get(column))
            if column in best and name in eligible and row.get(column) == best[column]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join([cell(name)] + cells) + " |")
    return "\n".join(lines)


def in_order(rows: dict, order: list[str]) -> dict:
    return {name: rows[name] for name in order if name in rows}


def render(report: dict) -> str:
    order = report["model_order"]
    models, timing = in_order(report["models"], order), report.get("timing", {})
    results = {key: (in_order(value, order) if key != "parallel" else value)
               for key, value in report["results"].items()}
    comparable = {name for name, m in models.items() if m["comparable"]}
    out = [f"# Eval report `{report['report_name']}`", ""]

    rec = report.get("recommended")
    out += ["## Recommended model", ""]
    if rec:
        out += [f"**{rec['name']}** (`{rec['spec']}`, {rec['language']}): {rec['reason']}", ""]
    else:
        out += ["None: no Russian-side model has a bits/char on the test split.", ""]

    out += ["## Models", "", "| model | spec | language (rule) | likelihood comparable | translators | "
            "engine: generation / likelihood |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        translators = f"{m['translator_in']} / {m['translator_out']}" if m["translator_in"] else "–"
        engine = m.get("engine") or {}
        engines = f"{engine.get('generation', '?')} / {engine.get('likelihood', '?')}" if engine else "–"
        out.append(f"| {cell(name)} | `{cell(m['spec'])}` | {m['language']} ({cell(m['language_rule'])}) | "
                   f"{'yes' if m['comparable'] else 'no (English side)'} | {cell(translators)} | {cell(engines)} |")
    out.append("")

    sets = report["sets"]
    if "test" in results:
        out += [f"## Test split ({sets['test']['size']} samples)", "",
                "Likelihood of the gold result given the budgeted prompt, scored by each model's engine (see "
                "Models: ct2 scores in its compute type). Bits/char is comparable across tokenizers; bold marks the best among Russian-side models (English models are scored on their "
                "translated English text).", "", table(results["test"], LIKELIHOOD_COLUMNS, eligible=comparable),
                "", "![bits per character](bits_per_char.png)", ""]
    if "playthrough" in results:
        out += [f"## Play-through set ({sets['playthrough']['size']} prompts)", ""]
        presets = sets["playthrough"]["presets"]
        for preset in presets:
            rows = {name: dict(per_model[preset], **timing.get("models", {}).get(name, {})
                               .get("playthrough", {}).get(preset, {}))
                    for name, per_model in results["playthrough"].items() if preset in per_model}
            out += [f"### Generation `{preset}`", "", table(rows, GENERATION_COLUMNS + TIMING_COLUMNS), ""]
        out += ["Latency columns are wall-clock (from `timing`); they vary between runs.", "",
                "![latency per model](latency.png)", ""]
    if results.get("parallel"):
        out += [f"## Parallel set ({sets['parallel']['size']} sentence pairs)", "",
                "sacrebleu corpus BLEU and chrF of the translators in use, one table per direction (the tiny "
                "offline Marian models are trained on this set: their scores check the pipeline, not translation "
                "quality).", ""]
        for direction in sorted({r["direction"] for r in results["parallel"].values()}):
            rows = {k: r for k, r in results["parallel"].items() if r["direction"] == direction}
            out += [f"### {direction}", "", table(rows, TRANSLATION_COLUMNS, first="translator"), ""]
    if report.get("preferences"):
        prefs = report["preferences"]
        rows = {name: dict(m, ci95=("–" if not m["ci95"] else f"{m['ci95'][0]:.3f}–{m['ci95'][1]:.3f}"))
                for name, m in sorted(prefs["models"].items(), key=lambda kv: -kv[1]["bradley_terry"])}
        out += ["## Player preferences", "",
                f"{prefs['votes']} blind arena votes: players saw two replies from two models in random order and "
                "picked one. Win rate with its 95% Wilson interval; Bradley-Terry log-strength (0 = average; a "
                "difference of 1 = e:1 odds). The votes are exported as a preference dataset (`preferences/`: "
                "prompt, chosen, rejected).", "",
                table(rows, ("bradley_terry", "win_rate", "ci95", "wins", "comparisons")), ""]
    if report.get("samples"):
        out += ["## Sample replies", ""]
        for sample in report["samples"]:
            out += [f"### `{sample['id']}`", "", f"…{cell(sample['world_tail'])}", ""]
            for action in sample["history_actions"]:
                out.append(f"> {cell(action)}  ")
            out += [f"> **{cell(sample['action'])}**", "", f"*gold:* {cell(sample['gold'])}", "",
                    "| model | preset | reply |", "|---|---|---|"]
            for name, presets in in_order(sample["outputs"], order).items():
                for preset, text in presets.items():
                    out.append(f"| {cell(name)} | {preset} | {cell(text) or '(empty)'} |")
            out.append("")
    prov = report["provenance"]
    out += ["## Provenance", "",
            f"- git commit: `{prov['git_commit']}`{' (with uncommitted changes)' if prov['git_dirty'] else ''}",
            f"- seed: {prov['seed']}",
            f"- dataset: `{prov['dataset']['path']}` (files sha256 `{prov['dataset']['files_sha256'][:16]}…`)",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()),
            "- model weights sha256: " + ", ".join(
                f"{name}: " + (", ".join(f"`{f}` {h[:12]}…" for f, h in files.items()) if files else "unknown")
                for name, files in prov["model_weights_sha256"].items()),
            f"- run started {timing.get('started_at', '?')}, took {fmt(timing.get('total_seconds'))} s", ""]
    return "\n".join(out)


def write_markdown(report: dict, path: Path) -> Path:
    path.write_text(render(report), encoding="utf-8")
    return path
