"""Eval benchmark: what the decision-grade report (issue 20) costs against the eval it replaced, in one run.

    python bench/eval_bench.py [--artifacts DIR] [--quick] [--record] [--start COMMIT]

1. Artifacts: `python -m scraping` and `python -m training` (the default tiny model) into DIR (a temporary folder
   by default) unless DIR already has data/dataset and models/tiny. Setup time is shown, not counted.
2. In the same run, as child processes on the same artifacts (wall clock, interpreter start included):
   - floor:      `python -c "import torch, transformers, datasets, sacrebleu, matplotlib"` (what any run pays)
   - start:      `python -m eval` of COMMIT (default: the commit before issue 20, exported with `git archive` into
                 a temporary folder): test likelihood, play-through with gamio + greedy, no intervals
   - current:    `python -m eval` now: + validation split, action following, gamio_sample, chrF, loops,
                 1000 story-bootstrap resamples per metric, paired comparisons, items.jsonl
   - parts:      the current eval without action following, and with 10 resamples instead of 1000 (their cost)
   ratio = current / start. Goal (issue 20): the whole eval under 2x the start's time.
3. From the current report's `timing`: seconds per model per set.
`--record` writes the tables into the `## Eval` section of bench/RESULTS.md (other sections untouched).
`--quick`: the tiny model trained for 10 steps, and every eval run on small sets (QUICK below).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 2.0
START_COMMIT = "3dcaa6e"  # main before issue 20
QUICK_TRAINING = ("train.max_steps=10", "train.eval_steps=10")
QUICK = ("max_samples.test=8", "playthrough.size=6", "max_samples.parallel=8")


def child(*args: str, cwd: Path = ROOT) -> float:
    """Run a child process in `cwd` (the repo root); its wall time in seconds (fails loudly on a non-zero exit)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return seconds


def prepare(artifacts: Path, quick: bool) -> dict[str, float]:
    setup = {}
    if not (artifacts / "data" / "dataset").is_dir():
        setup["scraping"] = child("-m", "scraping", f"paths.artifacts={artifacts}")
    if not (artifacts / "models" / "tiny" / "config.json").is_file():
        setup["training"] = child("-m", "training", f"paths.artifacts={artifacts}", *(QUICK_TRAINING if quick else ()))
    return setup


def per_model_rows(report: dict) -> list[tuple[str, str, int, float]]:
    """(model, set, items, seconds) from a report's timing."""
    sets = report["sets"]
    rows = []
    for name in report["model_order"]:
        timing = report["timing"]["models"][name]
        rows.append((name, "load", 1, timing["load_seconds"]))
        rows.append((name, "likelihood (test + validation)", sets["test"]["size"] + sets["validation"]["size"],
                     timing["likelihood_seconds"]))
        for preset, t in timing["playthrough"].items():
            rows.append((name, f"playthrough ({preset})", sets["playthrough"]["size"], t["seconds"]))
    return rows


def checkout(commit: str, into: Path) -> Path:
    """The tree of `commit` as plain files (git archive), so its `python -m eval` runs its own code."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def render(setup: dict, runs: dict[str, float], report: dict, quick: bool, start: str) -> str:
    base = runs["start"]
    lines = [f"`python bench/eval_bench.py{' --quick' if quick else ''} --record` ({date.today()}). "
             f"Machine: {os.cpu_count()}-core CPU container (shared, noisy), CPython {platform.python_version()}, "
             f"eval `threads=1` (the config default). Default models ({', '.join(report['model_order'])}); "
             f"test split {report['sets']['test']['size']} samples, validation {report['sets']['validation']['size']}, "
             f"play-through {report['sets']['playthrough']['size']} prompts; one run each, back to back.", ""]
    if setup:
        lines += ["Setup (not counted): " + ", ".join(f"`python -m {k}` {v:.1f} s" for k, v in setup.items()), ""]
    labels = {"floor": "floor: interpreter + imports",
              "start": f"start: `python -m eval` at {start} (gamio + greedy, no intervals)",
              "current": "current: `python -m eval` (3 presets, validation, action following, 1000 resamples)",
              "no_action_following": "current, `likelihood.action_following=false`",
              "few_resamples": "current, `bootstrap.resamples=10`"}
    lines += ["| run | wall s | vs start |", "|---|---:|---:|"]
    lines += [f"| {labels[k]} | {v:.1f} | {v / base:.2f} |" for k, v in runs.items()]
    ratio = runs["current"] / base
    lines += ["", f"Goal (the whole eval under {GOAL_RATIO:.0f}x the start's time): "
              f"{'met' if ratio < GOAL_RATIO else 'NOT met'} ({ratio:.2f}x). Cost of the parts: action following "
              f"{runs['current'] - runs['no_action_following']:+.1f} s, 990 more bootstrap resamples "
              f"{runs['current'] - runs['few_resamples']:+.1f} s (differences of single noisy runs).", "",
              "Time per model per set (current run, from report.json `timing`):", "",
              "| model | set | items | seconds | ms per item |", "|---|---|---:|---:|---:|"]
    for name, what, items, seconds in per_model_rows(report):
        lines.append(f"| {name} | {what} | {items} | {seconds:.2f} | {1000 * seconds / max(1, items):.0f} |")
    return "\n".join(lines)


def record(text: str, quick: bool) -> None:
    record_section("Eval", text, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: a fresh temporary one)")
    parser.add_argument("--quick", action="store_true", help="a 10-step tiny model and small eval sets")
    parser.add_argument("--record", action="store_true", help="write the tables into bench/RESULTS.md")
    parser.add_argument("--start", default=START_COMMIT, help="the commit whose eval is the baseline")
    args = parser.parse_args()
    sizes = QUICK if args.quick else ()
    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        artifacts = (args.artifacts or Path(tmp) / "artifacts").resolve()
        setup = prepare(artifacts, args.quick)
        old = checkout(args.start, Path(tmp) / "start")
        eval_args = ("-m", "eval", f"paths.artifacts={artifacts}", *sizes)
        runs = {"floor": child("-c", "import torch, transformers, datasets, sacrebleu, matplotlib"),
                "start": child(*eval_args, "report_name=bench-start", cwd=old),
                "current": child(*eval_args, "report_name=bench-current"),
                "no_action_following": child(*eval_args, "report_name=bench-no-af",
                                             "likelihood.action_following=false"),
                "few_resamples": child(*eval_args, "report_name=bench-few", "bootstrap.resamples=10")}
        report = json.loads((artifacts / "reports" / "bench-current" / "report.json").read_text("utf-8"))
        text = render(setup, runs, report, args.quick, args.start)
    print(text)
    if args.record:
        record(text, args.quick)


if __name__ == "__main__":
    main()
