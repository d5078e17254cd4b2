"""Benchmark of `python -m conversion` on a GPT-2-sized checkpoint written by our BundleWriter.

Measures wall time, MB/s (checkpoint bytes / wall) and the child process's peak RSS, against the checkpoint size
and its largest tensor (`wte`). Goal: peak RSS <= 2 x largest tensor + 300 MB. Baselines measured in the same run:
the interpreter floor (python + torch + transformers imported, no work) and a naive in-memory converter (every
tensor read into a dict, then `safetensors.numpy.save_file`), which is what materialising a state dict costs.

    python bench/conversion_bench.py [--shape small|medium|xl] [--quick] [--record]   # --record: bench/RESULTS.md

--quick: the GPT-2 small shape (default medium) and the float16 conversion only.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conversion.bundle_writer import BundleWriter, write_checkpoint_state  # noqa: E402
from conversion.gpt2_mapping import HParams, weight_map  # noqa: E402

SHAPES = {"small": HParams(50257, 1024, 768, 12, 12), "medium": HParams(50257, 1024, 1024, 16, 24),
          "xl": HParams(50257, 1024, 1600, 25, 48)}
log = logging.getLogger("bench.conversion")
MB = 1e6
# Runs a command as this process's only child and prints that child's peak RSS (ru_maxrss is in KiB on Linux).
MEASURE = ("import json, resource, subprocess, sys, time; t = time.time(); "
           "rc = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode; "
           "print(json.dumps({'rc': rc, 'wall': time.time() - t, "
           "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))")
NAIVE = """
import sys, numpy as np
from safetensors.numpy import save_file
sys.path.insert(0, sys.argv[3])
from conversion.bundle_reader import BundleReader, resolve_prefix
from conversion.gpt2_mapping import load_hparams, plan
from pathlib import Path
src = Path(sys.argv[1]); hp = load_hparams(src / "hparams.json")
reader = BundleReader(resolve_prefix(src))
p = plan(hp, {n: reader.shape(n) for n in reader.names()})
state = {key: reader.read(name).reshape(shape).astype(np.float16) for name, key, shape in p.convert}
save_file(state, str(Path(sys.argv[2]) / "model.safetensors"), metadata={"format": "pt"})
"""


def write_checkpoint(folder: Path, hp: HParams) -> tuple[int, int]:
    """Random float32 GPT-2 weights + a 50257-token byte-level BPE vocabulary; returns (bytes, largest tensor)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder.mkdir(parents=True)
    byte_tokens = list(bytes_to_unicode().values())
    merges = [(a, b) for a in byte_tokens for b in byte_tokens][: hp.n_vocab - 257]
    vocab = byte_tokens + [a + b for a, b in merges] + ["<|endoftext|>"]
    (folder / "encoder.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    (folder / "hparams.json").write_text(json.dumps(hp.__dict__))
    rng = np.random.default_rng(0)
    total = largest = 0
    with BundleWriter(folder / "model-1", num_shards=1) as writer:
        for name, (_, shape) in weight_map(hp).items():
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            if name.endswith("/g"):
                value += 1
            writer.add(name, value)
            total, largest = total + value.nbytes, max(largest, value.nbytes)
            del value
    write_checkpoint_state(folder, "model-1")
    return total, largest


def measure(cmd: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(cmd)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), help="default: medium (small with --quick)")
    parser.add_argument("--quick", action="store_true", help="small shape, float16 only: about a minute")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, removed afterwards)")
    parser.add_argument("--verify", action="store_true", help="also time a verify=true conversion (not held to the goal)")
    parser.add_argument("--record", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.shape = args.shape or ("small" if args.quick else "medium")
    hp = SHAPES[args.shape]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="conversion-bench-"))
    try:
        t = time.time()
        size, largest = write_checkpoint(work / "ckpt", hp)
        log.info("wrote %s checkpoint: %.0fM params, %.0f MB, largest tensor %.0f MB, in %.0f s", args.shape,
                 hp.n_params / 1e6, size / MB, largest / MB, time.time() - t)
        goal = 2 * largest + 300 * MB
        py = sys.executable
        runs = [("floor: import torch+transformers", "-", [py, "-c", "import torch, transformers.models.gpt2"])]
        for dtype in ("float16",) if args.quick else ("float16", "float32"):
            runs.append((f"streaming converter (verify=false)", dtype,
                         [py, "-m", "conversion", f"checkpoint_dir={work / 'ckpt'}", f"out_dir={work / ('out-' + dtype)}",
                          f"dtype={dtype}", "verify=false", f"paths.artifacts={work / 'artifacts'}"]))
        (work / "naive").mkdir()
        runs.append(("baseline: naive dict + save_file", "float16", [py, "-c", NAIVE, str(work / "ckpt"),
                                                                     str(work / "naive"), str(REPO)]))
        if args.verify:
            runs.append(("streaming converter (verify=true)", "float16",
                         [py, "-m", "conversion", f"checkpoint_dir={work / 'ckpt'}", f"out_dir={work / 'out-verify'}",
                          "verify=true", f"paths.artifacts={work / 'artifacts'}"]))
        rows = []
        for label, dtype, cmd in runs:
            result = measure(cmd)
            if result["rc"]:
                raise SystemExit(f"{label} failed with exit status {result['rc']}")
            rows.append((label, dtype, result["wall"], size / MB / result["wall"], result["rss"] / MB))
            log.info("%s [%s]: %.1f s, peak RSS %.0f MB", label, dtype, result["wall"], result["rss"] / MB)
        table = render(args.shape, hp, size, largest, goal, rows)
        print(table)
        if args.record:
            record(table, args.quick)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def render(shape, hp, size, largest, goal, rows) -> str:
    lines = [f"GPT-2 {shape} shape ({hp.n_params / 1e6:.0f}M params), float32 checkpoint {size / MB:.0f} MB, "
             f"largest tensor (wte) {largest / MB:.0f} MB; goal peak RSS <= 2 x largest + 300 MB = {goal / MB:.0f} MB. "
             f"Machine: {os.cpu_count()}-core CPU container, {platform.python_implementation()} "
             f"{platform.python_version()}.", "",
             "| run | out dtype | wall s | MB/s | peak RSS MB | RSS / goal | RSS / checkpoint |",
             "|---|---|---|---|---|---|---|"]
    for label, dtype, wall, rate, rss in rows:
        lines.append(f"| {label} | {dtype} | {wall:.1f} | {rate:.0f} | {rss:.0f} | {rss * MB / goal:.2f} | "
                     f"{rss * MB / size:.2f} |")
    stream = [r for r in rows if r[0].startswith("streaming") and "verify=true" not in r[0]]
    naive = [r for r in rows if r[0].startswith("baseline")]
    if stream and naive:
        worst = max(r[4] for r in stream)
        lines += ["", f"Streaming peak RSS is {worst / naive[0][4]:.2f}x the naive baseline's; goal met: "
                      f"{'yes' if worst * MB <= goal else 'NO'} ({worst:.0f} MB <= {goal / MB:.0f} MB)."]
    return "\n".join(lines)


def record(table: str, quick: bool) -> None:
    flags = " --quick" if quick else ""
    record_section("Conversion", f"`python bench/conversion_bench.py{flags} --record` ({time.strftime('%Y-%m-%d')})."
                                 f"\n\n{table}", quick=quick)


if __name__ == "__main__":
    main()
