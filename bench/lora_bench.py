"""Full fine-tuning vs LoRA on the ruGPT3-small shape: seconds per step, peak memory, trainable parameters.

    python bench/lora_bench.py [--steps 4] [--block-size 128] [--batch-size 2] [--quick] [--record]

A GPT-2 of ruGPT3 small's shape (12 layers, 768 wide, vocab 50264; random weights: the hub model is not
reachable here) trained in two child processes, one per method, so each peak RSS (wait4's ru_maxrss: weights,
gradients, AdamW state, activations) is its own:
    full  every parameter trained (AdamW, as the Trainer does by default)
    lora  training/lora.py's adapters (rank 8 on c_attn, c_proj, c_fc), the same optimizer on them
Each child runs one warm-up step, then `--steps` timed optimizer steps on the story dataset's packed blocks;
full and LoRA run alternately `--rounds` times: s/step min, median and max over all timed steps. Goal: LoRA peak memory <= 60% of full, LoRA s/step <= full.
`--quick`: 2 steps of a 4-layer model of the same width. `--record` writes the `## LoRA` section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.results import record_section  # noqa: E402
from bench.training_bench import RUGPT3_SMALL_SHAPE, table  # noqa: E402


def build_model(folder: Path, n_layer: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**{**RUGPT3_SMALL_SHAPE, "n_layer": n_layer})).save_pretrained(folder)
    return folder


def child(method: str, folder: Path, steps: int, block_size: int, batch_size: int) -> None:
    """Train `steps` steps in this process; print {s_per_step, trainable, total} as JSON."""
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM

    from training.config import LoraSettings
    from training.lora import add_adapters, parameter_counts

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder)
    if method == "lora":
        cfg = OmegaConf.create({"method": "lora", "lora": OmegaConf.structured(LoraSettings),
                                "train": {"gradient_checkpointing": False}})
        model = add_adapters(model, cfg)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    times = []
    for step in range(steps + 1):  # step 0 warms up (allocations, AdamW state)
        ids = torch.randint(0, vocab, (batch_size, block_size))
        started = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - started)
    trainable, total = parameter_counts(model)
    print(json.dumps({"times": times, "trainable": trainable, "total": total}))


def measure(method: str, folder: Path, args) -> dict:
    """One child process of `method`: its step times and peak RSS (from wait4, so only its own)."""
    cmd = [sys.executable, __file__, "--child", method, "--model", str(folder), "--steps", str(args.steps),
           "--block-size", str(args.block_size), "--batch-size", str(args.batch_size)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True,
                                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{method} failed:\n{err.read()[-3000:]}")
        return {**json.loads(out.read().strip().splitlines()[-1]), "rss_mb": usage.ru_maxrss / 1024}


def compare(folder: Path, args) -> list[dict]:
    """full and lora alternately, `--rounds` times each (the machine is shared: back to back, min and spread)."""
    runs = {"full": [], "lora": []}
    for _ in range(args.rounds):
        for method in runs:
            runs[method].append(measure(method, folder, args))
    rows = []
    for method, results in runs.items():
        times = [t for r in results for t in r["times"]]
        rows.append({"method": method, "s/step min": min(times), "s/step median": statistics.median(times),
                     "s/step max": max(times), "steps": len(times), "peak RSS MB": max(r["rss_mb"] for r in results),
                     "trainable params": f"{results[0]['trainable']:,}", "total params": f"{results[0]['total']:,}",
                     "trainable share": results[0]["trainable"] / results[0]["total"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="full/LoRA child processes per method, alternated")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--child", choices=("full", "lora"), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.model, args.steps, args.block_size, args.batch_size)
    n_layer = 4 if args.quick else RUGPT3_SMALL_SHAPE["n_layer"]
    args.steps, args.rounds = (2, 1) if args.quick else (args.steps, args.rounds)
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as tmp:
        folder = build_model(Path(tmp) / "model", n_layer)
        rows = compare(folder, args)
    full, lora = rows
    for row in rows:
        row["RSS vs full"] = row["peak RSS MB"] / full["peak RSS MB"]
        row["min s/step vs full"] = row["s/step min"] / full["s/step min"]
        row["median vs full"] = row["s/step median"] / full["s/step median"]
    memory_goal, speed_goal = lora["RSS vs full"] <= 0.6, lora["min s/step vs full"] <= 1.0
    command = " ".join(["python bench/lora_bench.py", *sys.argv[1:]])
    text = (f"`{command}` ({date.today()}). Machine: 2-core CPU container (shared), CPython "
            f"{platform.python_version()}, fp32. GPT-2 of ruGPT3-small shape ({n_layer} layers, n_embd 768, vocab "
            f"50264, random weights), {args.steps} timed AdamW steps of {args.batch_size} x {args.block_size} tokens "
            f"after one warm-up step, each method in its own child process, full and LoRA alternately "
            f"{args.rounds} times (the 2 cores are shared with other work: min is the comparison, the spread is "
            f"the noise).\n\n{table(rows)}\n\n"
            f"Goal LoRA peak memory <= 60% of full: {'met' if memory_goal else 'NOT met'} "
            f"({lora['RSS vs full']:.2f}); LoRA s/step <= full: {'met' if speed_goal else 'NOT met'} "
            f"(min {lora['min s/step vs full']:.2f}, median {lora['median vs full']:.2f}).\n")
    print(text)
    if args.record:
        record_section("LoRA", text, quick=args.quick)


if __name__ == "__main__":
    main()
