"""Eval benchmark: the cost of a full default report, and the time per model per set.

    python bench/eval_bench.py [--artifacts DIR] [--quick] [--record]

1. Artifacts: `python -m scraping` and `python -m training` (the default tiny model) into DIR (a temporary folder
   by default) unless DIR already has data/dataset and models/tiny. Setup time is shown, not counted.
2. In the same run, as child processes (wall clock, interpreter start included):
   - floor:    `python -c "import torch, transformers, datasets, sacrebleu, matplotlib"` (what any run pays)
   - baseline: `python -m eval extra_generation=[]`   (the default models, the seed's `gamio` preset only)
   - full:     `python -m eval`                       (the default report: gamio + greedy)
   ratio = full / baseline. Goal: the full default report under ~2 min on 2 cores.
3. From the full report's `timing`: seconds per model per set (load, test-split likelihood, play-through per
   preset) and per item.
`--record` writes the tables into the `## Eval` section of bench/RESULTS.md (other sections untouched).
`--quick`: the tiny model trained for 10 steps, and every eval run on 8 test samples, 6 play-through prompts and
8 parallel pairs (QUICK below): the same runs on smaller sets.
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
GOAL_SECONDS = 120.0
QUICK_TRAINING = ("train.max_steps=10", "train.eval_steps=10")
QUICK = ("max_samples.test=8", "playthrough.size=6", "max_samples.parallel=8")


def child(*args: str) -> float:
    """Run a child process in the repo root; its wall time in seconds (fails loudly on a non-zero exit)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
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
        rows.append((name, "test (likelihood)", sets["test"]["size"], timing["test_seconds"]))
        for preset, t in timing["playthrough"].items():
            rows.append((name, f"playthrough ({preset})", sets["playthrough"]["size"], t["seconds"]))
    for key, t in report["timing"].get("translators", {}).items():
        rows.append((key, "parallel (BLEU/chrF)", sets.get("parallel", {}).get("size", 0), t["seconds"]))
    return rows


def render(setup: dict, floor: float, baseline: float, full: float, report: dict, quick: bool) -> str:
    lines = [f"`python bench/eval_bench.py{' --quick' if quick else ''} --record` ({date.today()}). "
             f"Machine: {os.cpu_count()}-core CPU container, "
             f"CPython {platform.python_version()}, eval `threads=1` (the config default). Default models "
             f"({', '.join(report['model_order'])}); test split {report['sets']['test']['size']} samples, "
             f"play-through {report['sets']['playthrough']['size']} prompts.", ""]
    if setup:
        lines += ["Setup (not counted): " + ", ".join(f"`python -m {k}` {v:.1f} s" for k, v in setup.items()), ""]
    lines += ["| run | wall s | vs baseline |", "|---|---:|---:|",
              f"| floor: interpreter + imports | {floor:.1f} | {floor / baseline:.2f} |",
              f"| baseline: `python -m eval extra_generation=[]` (gamio only) | {baseline:.1f} | 1.00 |",
              f"| full default report: `python -m eval` (gamio + greedy) | {full:.1f} | {full / baseline:.2f} |",
              "", f"Goal (full default report < {GOAL_SECONDS:.0f} s): {'met' if full < GOAL_SECONDS else 'NOT met'} "
              f"({full:.1f} s; the report's own total_seconds: {report['timing']['total_seconds']:.1f} s).", "",
              "Time per model per set (full run, from report.json `timing`):", "",
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
    args = parser.parse_args()
    sizes = QUICK if args.quick else ()
    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        artifacts = (args.artifacts or Path(tmp)).resolve()
        setup = prepare(artifacts, args.quick)
        floor = child("-c", "import torch, transformers, datasets, sacrebleu, matplotlib")
        baseline = child("-m", "eval", f"paths.artifacts={artifacts}", "report_name=bench-baseline",
                         "extra_generation=[]", *sizes)
        full = child("-m", "eval", f"paths.artifacts={artifacts}", "report_name=bench-full", *sizes)
        report = json.loads((artifacts / "reports" / "bench-full" / "report.json").read_text("utf-8"))
        text = render(setup, floor, baseline, full, report, args.quick)
    print(text)
    if args.record:
        record(text, args.quick)


if __name__ == "__main__":
    main()
