"""Training benchmarks: tokens/s and peak RSS per model shape, and packing efficiency per loss mode.

    python bench/training_bench.py [--steps 4] [--block-size 128] [--quick] [--record]

1. `python -m training` for a few steps (as a child process, so its peak RSS is its own) on
   - `tiny` (the default model; the baseline of the ratios), and
   - a ruGPT3-small-shaped GPT-2 with random weights (n_layer=12, n_embd=768, n_head=12, vocab 50264,
     n_positions 2048), saved as a local folder and passed as `model=rugpt3small model.path=<folder>`,
     i.e. through the same loading path as the real hub model.
   tokens/s = training_metrics.json's tokens_per_second: training tokens / (Trainer train_runtime minus the
   evaluations inside it).
2. Packing efficiency on the embedded corpus: share of non-pad tokens in the training batches the Trainer
   would see (goal >= 95% with loss_on=all), for loss_on=all vs loss_on=result, plus the share of tokens
   that carry a loss and, for `all`, the share of the corpus the blocks keep (run_clm drops each map batch's
   remainder).
`--record` writes the tables into the `## Training` section of bench/RESULTS.md (other sections untouched).
`--quick`: the tiny model only (the ruGPT3-small shape is ~10 minutes of the full run on 2 cores).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.results import record_section  # noqa: E402

from tests.helpers.training import build_story_dataset  # noqa: E402

RUGPT3_SMALL_SHAPE = dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50264, n_positions=2048)


def build_rugpt3small_shaped(folder: Path, tokenizer_dir: Path) -> Path:
    """Random GPT-2 of ruGPT3 small's shape; the tiny tokenizer (ids < 2000 < 50264) feeds it text."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from adventure.tiny import save_model_folder

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**RUGPT3_SMALL_SHAPE, bos_token_id=tokenizer.bos_token_id,
                                       eos_token_id=tokenizer.eos_token_id))
    return save_model_folder(model, tokenizer, folder)


def run_training(artifacts: Path, steps: int, block_size: int, *overrides: str) -> dict:
    """One `python -m training` child: its metrics, wall time and peak RSS (from wait4, so only its own)."""
    cmd = [sys.executable, "-m", "training", f"paths.artifacts={artifacts}", f"train.max_steps={steps}",
           f"train.eval_steps={steps}", "train.logging_steps=1", "train.batch_size=2",
           f"train.block_size={block_size}", "train.max_eval_rows=2", "train.warmup_steps=0", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed:\n{stderr[-3000:]}")
    name = next(o.split("=", 1)[1] for o in (*overrides, "model=tiny") if o.startswith("model="))
    metrics = json.loads((artifacts / "models" / name / "training_metrics.json").read_text())
    return {**metrics, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def bench_speed(artifacts: Path, steps: int, block_size: int, quick: bool = False) -> list[dict]:
    runs = [("tiny (baseline)", run_training(artifacts, steps, block_size))]
    if not quick:
        folder = build_rugpt3small_shaped(artifacts / "bench-rugpt3small-shape", artifacts / "runs" / "tiny" / "init")
        runs.append(("ruGPT3-small shape, random",
                     run_training(artifacts, steps, block_size, "model=rugpt3small", f"model.path={folder}")))
    rows = []
    for label, m in runs:
        rows.append({"model": label, "tokens/s": m["tokens_per_second"], "peak RSS MB": m["peak_rss_mb"],
                     "wall s": m["wall_s"], "tokens": m["tokens_this_run"]})
    for row in rows:
        row["tokens/s vs tiny"] = row["tokens/s"] / rows[0]["tokens/s"]
        row["RSS vs tiny"] = row["peak RSS MB"] / rows[0]["peak RSS MB"]
    return rows


def bench_packing(dataset_dir: Path, tokenizer_dir: Path, block_size: int, batch_size: int) -> list[dict]:
    """Batches as the Trainer's shuffled sampler forms them, collated by the stage's own collators."""
    import torch
    from transformers import AutoTokenizer

    from training.data import (IGNORE_INDEX, count_tokens, data_collator, load_story_dataset,
                               prepare_split)

    train = load_story_dataset(dataset_dir)["train"]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    corpus_tokens = count_tokens(train, tokenizer)
    rows = []
    for loss_on in ("all", "result"):
        split = prepare_split(train, tokenizer, loss_on=loss_on, block_size=block_size, history_turns=10,
                              name="train")
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(42)).tolist()
        collate = data_collator(tokenizer, loss_on)
        real = padded = with_loss = 0
        for i in range(0, len(order), batch_size):
            batch = collate([split[j] for j in order[i:i + batch_size]])
            real += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
            with_loss += int((batch["labels"] != IGNORE_INDEX).sum())
        rows.append({"loss_on": loss_on, "rows": len(split), "non-pad share": real / padded,
                     "loss-token share": with_loss / padded,
                     "corpus kept": real / corpus_tokens if loss_on == "all" else float("nan")})
    for row in rows:
        row["non-pad vs result"] = row["non-pad share"] / rows[1]["non-pad share"]
    return rows


def table(rows: list[dict]) -> str:
    def cell(v):
        if isinstance(v, float):
            return "-" if v != v else f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        return str(v)
    head = list(rows[0])
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(cell(r[k]) for k in head) + " |" for r in rows)])


def record(text: str, quick: bool) -> None:
    record_section("Training", text, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    parser.add_argument("--record", action="store_true", help="write the tables into bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="training-bench-") as tmp:
        artifacts = Path(tmp)
        dataset_dir = build_story_dataset(artifacts)
        speed = bench_speed(artifacts, args.steps, args.block_size, args.quick)
        packing = [bench_packing(dataset_dir, artifacts / "runs" / "tiny" / "init", size, 16)
                   for size in (args.block_size, 1024)]
    packing_rows = [{"block_size": size, **row} for size, rows in zip((args.block_size, 1024), packing)
                    for row in rows]
    goal = all(r["non-pad share"] >= 0.95 for r in packing_rows if r["loss_on"] == "all")
    flags = "".join(f for f, on in ((" --quick", args.quick), (" --record", args.record)) if on)
    text = (f"`python bench/training_bench.py{flags}` ({date.today()}). Machine: "
            f"2-core CPU container, CPython {platform.python_version()}, fp32.\n\n"
            f"Training speed: {args.steps} optimizer steps x 2 rows x {args.block_size} tokens x the recipe's "
            f"gradient_accumulation_steps (tiny 1, rugpt3small 4), `python -m training` as a child process "
            f"(peak RSS = its own, includes checkpoint and final saves; tokens/s leaves evaluations out).\n\n"
            f"{table(speed)}\n\n"
            f"Packing efficiency on the embedded corpus's train split (batches of 16 in the Trainer's shuffled "
            f"order):\n\n{table(packing_rows)}\n\n"
            f"Goal non-pad share >= 95% with loss_on=all: {'met' if goal else 'NOT met'}.\n")
    print(text)
    if args.record:
        record(text, args.quick)


if __name__ == "__main__":
    main()
