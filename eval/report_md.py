"""report.md and timing.md: the report for people. Every number comes from report.json.

report.md holds quality only: each metric with its 95% interval, the paired comparisons with the recommended model,
warnings first. Bold marks the best value of a column among the rows that may win it: never the untrained floor
(it is the bar to clear), never a failed preset (mostly empty replies), never an English-side likelihood. Nothing
in report.md depends on the wall clock, so two runs give the same bytes; latencies live in timing.md.
"""
from __future__ import annotations

from pathlib import Path

# Which way is better, per column; columns not listed (sizes, lengths) get no bold.
BETTER = {"bradley_terry": max, "win_rate": max, "bits_per_char": min, "perplexity": min, "action_following": max,
          "distinct_1": max, "distinct_2": max, "repeated_4gram_rate": min, "cyrillic_share": max,
          "cut_action_share": min, "empty_share": min, "looping_share": min, "chrf": max, "bleu": max}
LIKELIHOOD_COLUMNS = ("bits_per_char", "perplexity", "action_following", "characters", "samples")
GENERATION_COLUMNS = ("chrf", "empty_share", "looping_share", "distinct_1", "distinct_2", "repeated_4gram_rate",
                      "cyrillic_share", "cut_action_share", "mean_length")
TIMING_COLUMNS = ("latency_p50_s", "latency_p95_s", "tokens_per_s", "seconds")
TRANSLATION_COLUMNS = ("bleu", "chrf", "pairs", "engine")


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def fmt_ci(interval) -> str:
    return "" if not interval else f" [{fmt(interval[0])}, {fmt(interval[1])}]"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def table(rows: dict[str, dict], columns: tuple[str, ...], first: str = "model",
          eligible: set[str] | None = None, notes: dict[str, str] | None = None) -> str:
    """Markdown table, each value with its interval (`<column>_ci95`) when it has one; in each column the best
    value among `eligible` rows (default all) is bold."""
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
            cells.append(text + fmt_ci(row.get(column + "_ci95")))
        label = cell(name) + (f" ({notes[name]})" if notes and name in notes else "")
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def in_order(rows: dict, order: list[str]) -> dict:
    return {name: rows[name] for name in order if name in rows}


def stories_note(sets: dict, name: str) -> str:
    stories = len(sets.get(name, {}).get("stories") or [])
    few = " **fewer than 5 stories: the intervals say little about other stories**" if stories < 5 else ""
    return f"{stories} stor{'y' if stories == 1 else 'ies'}{few}"


def _comparison_lines(report: dict, set_name: str, order: list[str]) -> list[str]:
    rows = in_order(report.get("comparisons", {}).get(set_name, {}), order)
    lines = []
    for model, per in rows.items():
        groups = per.items() if set_name == "playthrough" else [(None, per)]
        for preset, metrics in groups:
            for metric, c in metrics.items():
                if c.get("delta") is None:
                    continue
                label = f"{cell(model)}" + (f" / {preset}" if preset else "")
                lines.append(f"| {label} | {metric} | {fmt(c['delta'])}{fmt_ci(c['ci95'])} | {fmt(c['p_value'])} | "
                             f"{c['items']} / {c['stories']} |")
    if not lines:
        return []
    return ["| model | metric | delta (model - recommended) [95% CI] | p | items / stories |",
            "|---|---|---|---|---|", *lines, ""]


def render(report: dict) -> str:
    order = report["model_order"]
    models = in_order(report["models"], order)
    results = {key: (in_order(value, order) if key != "parallel" else value)
               for key, value in report["results"].items()}
    floors = {name for name, m in models.items() if m.get("floor")}
    comparable = {name for name, m in models.items() if m["comparable"]} - floors
    sets = report["sets"]
    out = [f"# Eval report `{report['report_name']}`", ""]
    if report.get("warnings"):
        out += ["## Warnings", "", *[f"- {w}" for w in report["warnings"]], ""]

    rec = report.get("recommended")
    out += ["## Recommended model", ""]
    if rec:
        out += [f"**{rec['name']}** (`{rec['spec']}`, {rec['language']}), chosen on the {rec.get('split', 'test')} "
                f"split: {rec['reason']} Test bits/char {fmt(rec['bits_per_char'])}"
                f"{fmt_ci(rec.get('bits_per_char_ci95'))}.", ""]
    else:
        out += ["None: no Russian-side model has a bits/char.", ""]
    unc = report.get("uncertainty") or {}
    if unc:
        out += ["Every value comes with its 95% interval `[lo, hi]`: a percentile bootstrap that resamples "
                f"**stories**, then turns within them ({unc['resamples']} resamples, seed {unc['seed']}), because the turns of one story are "
                "not independent. Comparisons are paired (the same items and draws for both models). The interval "
                "covers the variation between the stories of the set (and between the turns of each), not new kinds of "
                "story; with fewer than 5 stories it is too optimistic (see Warnings).", ""]

    out += ["## Models", "", "| model | spec | language (rule) | likelihood comparable | translators | "
            "engine: generation / likelihood |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        translators = f"{m['translator_in']} / {m['translator_out']}" if m["translator_in"] else "–"
        engine = m.get("engine") or {}
        engines = f"{engine.get('generation', '?')} / {engine.get('likelihood', '?')}" if engine else "–"
        label = cell(name) + (" (untrained floor)" if name in floors else "")
        out.append(f"| {label} | `{cell(m['spec'])}` | {m['language']} ({cell(m['language_rule'])}) | "
                   f"{'yes' if m['comparable'] else 'no (English side)'} | {cell(translators)} | {cell(engines)} |")
    out.append("")

    for set_name, title in (("validation", "Validation split"), ("test", "Test split")):
        if not results.get(set_name):
            continue
        out += [f"## {title} ({sets[set_name]['size']} samples, {stories_note(sets, set_name)})", "",
                "Likelihood of the gold reply after the budgeted prompt, scored by each model's engine. Bits/char is "
                "comparable across tokenizers: every Russian-side model scores the same characters. Action "
                "following: bits/char gained by the real action over another sample's action (about 0: the model "
                "ignores the action). Bold: the best trained Russian-side model.", "",
                table(results[set_name], LIKELIHOOD_COLUMNS, eligible=comparable,
                      notes={n: "floor" for n in floors}), ""]
        if set_name == "test":
            out += ["![bits per character and action following](bits_per_char.png)", ""]
        out += _comparison_lines(report, set_name, order)
    if "playthrough" in results:
        out += [f"## Play-through set ({sets['playthrough']['size']} prompts, {stories_note(sets, 'playthrough')})", "",
                "Replies as the player reads them. chrF: against the gold reply (sacrebleu, n=6, beta=2); looping: "
                "a piece repeated 3+ times in a row. A preset with more than half of its replies empty has failed "
                "and wins no column; the floor wins none either.", ""]
        for preset in sets["playthrough"]["presets"]:
            rows = {name: per_model[preset] for name, per_model in results["playthrough"].items()
                    if preset in per_model}
            eligible = {n for n, r in rows.items() if not r.get("failed")} - floors
            notes = {n: "floor" for n in floors} | {n: "FAILED" for n, r in rows.items() if r.get("failed")}
            out += [f"### Generation `{preset}`", "", table(rows, GENERATION_COLUMNS, eligible=eligible, notes=notes),
                    ""]
        out += _comparison_lines(report, "playthrough", order)
        if report.get("best_presets"):
            out += ["### Best preset per model", "", "| model | preset | why |", "|---|---|---|"]
            for name, best in in_order(report["best_presets"], order).items():
                out.append(f"| {cell(name)} | {best['preset'] or '–'} | {cell(best['reason'])} |")
            out.append("")
    if results.get("parallel"):
        out += [f"## Parallel set ({sets['parallel']['size']} sentence pairs)", "",
                "sacrebleu corpus BLEU and chrF of the translators in use (intervals: pairs resampled), one table per "
                "direction (the tiny offline Marian models are trained on this set: their scores check the "
                "pipeline, not translation quality).", ""]
        for direction in sorted({r["direction"] for r in results["parallel"].values()}):
            rows = {k: r for k, r in results["parallel"].items() if r["direction"] == direction}
            out += [f"### {direction}", "", table(rows, TRANSLATION_COLUMNS, first="translator"), ""]
    if report.get("training_curves"):
        out += ["## Training curves", "", f"Train and validation loss of {', '.join(report['training_curves'])} "
                "(each model folder's `training_metrics.json`).", "", "![training curves](training_curves.png)", ""]
    out += _preferences(report)
    out += _samples(report, order)
    prov = report["provenance"]
    out += ["## Provenance", "",
            f"- git commit: `{prov['git_commit']}`{' (with uncommitted changes)' if prov['git_dirty'] else ''}",
            f"- seed: {prov['seed']}",
            f"- dataset: `{prov['dataset']['path']}` (files sha256 `{prov['dataset']['files_sha256'][:16]}…`)",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()),
            "- model weights sha256: " + ", ".join(
                f"{name}: " + (", ".join(f"`{f}` {h[:12]}…" for f, h in files.items()) if files else "unknown")
                for name, files in prov["model_weights_sha256"].items()),
            "- per-item scores: `items.jsonl`; wall-clock numbers: `timing.md`", ""]
    return "\n".join(out)


def _preferences(report: dict) -> list[str]:
    prefs = report.get("preferences")
    if not prefs:
        return []
    rows = {name: dict(m, ci95=("–" if not m["ci95"] else f"{m['ci95'][0]:.3f}–{m['ci95'][1]:.3f}"))
            for name, m in sorted(prefs["models"].items(), key=lambda kv: -kv[1]["bradley_terry"])}
    return ["## Player preferences", "",
            f"{prefs['votes']} blind arena votes: players saw two replies from two models in random order and "
            "picked one. Win rate with its 95% Wilson interval; Bradley-Terry log-strength (0 = average; a "
            "difference of 1 = e:1 odds). The votes are exported as a preference dataset (`preferences/`: "
            "prompt, chosen, rejected).", "",
            table(rows, ("bradley_terry", "win_rate", "ci95", "wins", "comparisons")), ""]


def _samples(report: dict, order: list[str]) -> list[str]:
    if not report.get("samples"):
        return []
    out = ["## Sample replies", ""]
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
    return out


def render_timing(report: dict) -> str:
    """timing.md: wall-clock numbers of the run (they vary between runs; report.json `timing` holds them too)."""
    timing = report.get("timing", {})
    out = [f"# Timing of eval report `{report['report_name']}`", "",
           f"Run started {timing.get('started_at', '?')}, took {fmt(timing.get('total_seconds'))} s. Wall-clock "
           "numbers depend on the machine and its load: compare them within one run, never across reports.", ""]
    per_model = in_order(timing.get("models", {}), report["model_order"])
    out += ["| model | load s | likelihood s |", "|---|---|---|"]
    out += [f"| {cell(n)} | {fmt(t.get('load_seconds'))} | {fmt(t.get('likelihood_seconds'))} |"
            for n, t in per_model.items()]
    out.append("")
    presets = {p for t in per_model.values() for p in t.get("playthrough", {})}
    for preset in [p for p in report["sets"].get("playthrough", {}).get("presets", []) if p in presets]:
        rows = {n: t["playthrough"][preset] for n, t in per_model.items() if preset in t.get("playthrough", {})}
        out += [f"## Play-through `{preset}`", "", table(rows, TIMING_COLUMNS), ""]
    if timing.get("translators"):
        out += ["## Translators", "", "| translator | seconds |", "|---|---|"]
        out += [f"| {cell(k)} | {fmt(v.get('seconds'))} |" for k, v in timing["translators"].items()]
        out.append("")
    out += ["![latency per model](latency.png)", ""]
    return "\n".join(out)


def write_markdown(report: dict, path: Path) -> Path:
    path.write_text(render(report), encoding="utf-8")
    return path


def write_timing(report: dict, path: Path) -> Path:
    path.write_text(render_timing(report), encoding="utf-8")
    return path
