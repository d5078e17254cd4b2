"""Streaming benchmark: 8 players all reading their turns as SSE streams vs all long-polling, on one server.

The same `python -m serving` process (queue.max_batch=8, the seed's `gamio` preset: beam sampling, num_beams=2)
serves rounds of each mode back to back, alternating (long-poll, stream, long-poll, ...), each round 8 players x
a few turns in new games, closed loop. Reported per mode: turns/s (best of the rounds and the spread), turn latency
p50/p95 (submit -> result) and, streaming, time to first token p50/p95 (submit -> the first text the player sees),
client-side and as /healthz counts it. Goal: streaming turns/s >= 0.9x long-polling's.

The model is the tiny GPT-2 trained for a few hundred steps (it writes whole sentences, so a reply has something
to stream before its end; an untrained one would show each reply in one piece at the end). engine=hf by default:
its beam search streams what every live beam agrees on; engine=ct2 shows beam rows only when they are done.

    python bench/streaming_bench.py [--quick] [--record] [--engine hf|ct2]
"""
from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402
from bench.serving_bench import THREADS, run_players  # noqa: E402

from adventure.stats import percentile
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess

log = logging.getLogger("bench.streaming")
PLAYERS, GOAL = 8, 0.9
MODES = ("long-poll", "stream")


def trained_tiny(artifacts: Path, steps: int) -> Path:
    from tests.helpers.models import build_dataset, one_thread, train_tiny

    build_dataset(artifacts)
    with one_thread():
        return train_tiny(artifacts, steps=steps)


def measure(url: str, rounds: int, turns: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    run_players(url, 1, 1, stream=True)  # warm-up: first-call overheads are not what is measured
    for index in range(rounds):
        for mode in MODES:
            row = run_players(url, PLAYERS, turns, stream=mode == "stream")
            results[mode].append(row)
            log.info("round %d %s: %.2f turns/s, p50 %.2f s, p95 %.2f s", index + 1, mode, row["turns_per_s"],
                     row["p50"], row["p95"])
    return results


def seconds(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.2f}" if values else "-"


def table(results: dict[str, list[dict]], health: dict) -> tuple[str, float]:
    lines = ["| players read turns by | rounds | turns/s best | spread (min..max) | median | latency p50 / p95 s | "
             "first token p50 / p95 s |", "|---|---:|---:|---|---:|---|---|"]
    best = {}
    for mode in MODES:
        rates = [r["turns_per_s"] for r in results[mode]]
        latencies = [x for r in results[mode] for x in r["latencies"]]
        firsts = [x for r in results[mode] for x in r["first_tokens"]]
        best[mode] = max(rates)
        lines.append(f"| {mode} | {len(rates)} | {max(rates):.2f} | {min(rates):.2f}..{max(rates):.2f} | "
                     f"{statistics.median(rates):.2f} | {seconds(latencies, 50)} / {seconds(latencies, 95)} | "
                     f"{seconds(firsts, 50) + ' / ' + seconds(firsts, 95) if firsts else '-'} |")
    ratio = best["stream"] / best["long-poll"]
    medians = statistics.median(r["turns_per_s"] for r in results["stream"]) / statistics.median(
        r["turns_per_s"] for r in results["long-poll"])
    lines += ["", f"Goal (streaming turns/s >= {GOAL}x long-polling's, best round of each): "
                  f"{'met' if ratio >= GOAL else 'NOT met'} ({ratio:.2f}x; medians {medians:.2f}x). /healthz over "
                  f"the whole run: time to first token p50 {health.get('time_to_first_token_p50_s')} s, p95 "
                  f"{health.get('time_to_first_token_p95_s')} s; turn latency p50 {health.get('latency_p50_s')} s, "
                  f"p95 {health.get('latency_p95_s')} s; mean batch {health.get('mean_batch_size')}."]
    return "\n".join(lines), ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and turns")
    parser.add_argument("--record", action="store_true", help="write the `## Streaming` section of bench/RESULTS.md")
    parser.add_argument("--engine", choices=("hf", "ct2"), default="hf")
    parser.add_argument("--threads", type=int, default=THREADS, help="engine threads of the server (default 1)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rounds, turns, steps = (2, 2, 300) if args.quick else (5, 6, 300)

    with tempfile.TemporaryDirectory(prefix="streaming-bench-") as tmp:
        artifacts = Path(tmp)
        setup = time.perf_counter()
        model = trained_tiny(artifacts, steps)
        setup = time.perf_counter() - setup
        overrides = [f"model={model}", f"paths.artifacts={artifacts}", "port=0", "queue.max_batch=8",
                     f"engine={args.engine}", f"engine.threads={args.threads}", "generation=gamio",
                     *ONE_ADDRESS_MANY_PLAYERS]
        server = ServerProcess(overrides, log_path=artifacts / "server.log", timeout_s=900)
        started = time.perf_counter()
        try:
            results = measure(server.url, rounds, turns)
            health = requests.get(server.url + "healthz", timeout=60).json()
        finally:
            server.stop()
        minutes = (time.perf_counter() - started) / 60
    text, _ = table(results, health)
    title = "Streaming" + (" (quick)" if args.quick else "")
    body = (f"`python bench/streaming_bench.py {'--quick ' if args.quick else ''}--record`: {PLAYERS} players x "
            f"{turns} turns per round, {rounds} rounds per mode alternating, the tiny GPT-2 trained {steps} steps "
            f"(setup {setup:.0f} s, not counted), the `gamio` preset (55 new tokens, num_beams=2 beam sampling), "
            f"engine={args.engine}, engine.threads={args.threads}, queue.max_batch=8, `python -m serving` in a "
            f"subprocess; a 2-core CPU container shared with other jobs (noisy), {platform.python_version()}, "
            f"measured in {minutes:.1f} min.\n\n{text}")
    print(f"## {title}\n\n{body}")
    if args.record:
        record_section(title, body)


if __name__ == "__main__":
    main()
