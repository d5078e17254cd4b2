"""Serving benchmark: simulated players against the live server (`python -m serving` in a subprocess).

For each model (the tiny GPT-2, and a randomly initialised ruGPT3-small-shaped GPT-2: 12 layers, 768 wide,
12 heads, 50k vocabulary, 2048 positions) and each queue (`max_batch=1`, the seed's sequential queue, against
`max_batch=8`), N = 1, 4, 8, 16 players each play a few turns as fast as the server answers them (closed loop:
submit, long-poll, next turn). Reported: turns/s and p50/p95 turn latency (submit -> result), plus the ratio of
batched to sequential at every N. Goal at 8 players: >= 4x the turns/s of max_batch=1, p95 no worse.

    python bench/serving_bench.py [--quick] [--record]     # --record writes the `## Serving` section of RESULTS.md
"""
from __future__ import annotations

import argparse
import logging
import platform
import tempfile
import threading
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402

from adventure.stats import percentile
from serving.client import Player
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess

log = logging.getLogger("bench.serving")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PLAYER_COUNTS = (1, 4, 8, 16)
BATCHES = (1, 8)
THREADS = 1  # this 2-core container is shared: a 2-thread torch pool stalls ~10x when oversubscribed


def build_small_shaped_model(out_dir: Path) -> Path:
    """A random GPT-2 with ruGPT3-small's shape and the tiny tokenizer (the vocabulary need not be real: the
    cost of a forward pass depends on the shape, and unknown ids decode to nothing)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from adventure.generation import GenerationSettings
    from adventure.tiny import build_tiny_tokenizer, corpus_texts, save_model_folder

    tokenizer = build_tiny_tokenizer(corpus_texts())
    config = GPT2Config(vocab_size=50264, n_positions=2048, n_embd=768, n_layer=12, n_head=12,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.generation_config = GenerationSettings.load("gamio").to_generation_config(tokenizer)
    log.info("built a ruGPT3-small-shaped random GPT-2 (%.0fM params)", model.num_parameters() / 1e6)
    return save_model_folder(model, tokenizer, out_dir)


WORLD = "Игрок {i} стоит у ворот древнего города. Стража молчит, а над стенами кружат вороны."


def streamed_turn(client: Player, action: str) -> tuple[dict, float]:
    """One turn read from its SSE stream: (the outcome, seconds from submit to the first text shown; the reply's
    end when it has no text). A stream that ends without an outcome falls back to long-polling."""
    started = time.perf_counter()
    job_id = client.submit(action)["job_id"]
    first = None
    for event in client.stream_job(job_id, timeout_s=1800):
        kind = event.get("event")
        if kind in ("token", "reset") and first is None:
            first = time.perf_counter() - started
        if kind in ("done", "failed"):
            status = {"status": kind}
            break
    else:
        status = client.wait_job(job_id, timeout_s=1800)
    return status, first if first is not None else time.perf_counter() - started


def run_players(url: str, players: int, turns: int, world: str = WORLD, stream: bool = False) -> dict:
    """`players` threads each play `turns` turns in their own game (`world` with {i}: the player's number),
    long-polling or (`stream`) reading each turn's SSE stream; turns/s over the wall time, latency per turn (and
    time to first token when streaming)."""
    latencies: list[float] = []
    first_tokens: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    clients = [Player(url) for _ in range(players)]
    for i, client in enumerate(clients):
        client.new_game(world.replace("{i}", str(i)))
    barrier = threading.Barrier(players + 1)

    def play(client: Player) -> None:
        try:
            barrier.wait()
            for turn in range(turns):
                started, action = time.perf_counter(), f"осматриваюсь и иду дальше, шаг {turn}"
                job, first = streamed_turn(client, action) if stream else (client.play(action, 1800), None)
                if job["status"] != "done":
                    raise RuntimeError(f"turn failed: {job}")
                with lock:
                    latencies.append(time.perf_counter() - started)
                    first_tokens.extend([first] if first is not None else [])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} players failed: {errors[0]}")
    return {"turns": len(latencies), "turns_per_s": len(latencies) / wall, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "latencies": latencies, "first_tokens": first_tokens}


def bench_model(name: str, spec: str, artifacts: Path, max_new_tokens: int, turns: int, threads: int = THREADS,
                engine: str = "hf") -> dict:
    results = {}
    for max_batch in BATCHES:
        overrides = [f"model={spec}", f"paths.artifacts={artifacts}", "port=0", f"queue.max_batch={max_batch}",
                     f"engine={engine}", f"generation.max_new_tokens={max_new_tokens}", f"engine.threads={threads}",
                     f"db={artifacts}/serving/bench-{name}-{max_batch}.sqlite", *ONE_ADDRESS_MANY_PLAYERS]
        server = ServerProcess(overrides, log_path=artifacts / f"server-{name}-{max_batch}.log", timeout_s=900)
        try:
            run_players(server.url, 1, 1)  # warm-up: first-call overheads are not what is measured
            for players in PLAYER_COUNTS:
                row = run_players(server.url, players, turns)
                results[(max_batch, players)] = row
                log.info("%s max_batch=%d players=%d: %.2f turns/s, p50 %.2f s, p95 %.2f s", name, max_batch,
                         players, row["turns_per_s"], row["p50"], row["p95"])
        finally:
            server.stop()
    return results


def table(name: str, max_new_tokens: int, turns: int, results: dict) -> str:
    lines = [f"**{name}** ({max_new_tokens} new tokens per turn, gamio sampling with num_beams=2, {turns} turns "
             f"per player)", "",
             "| players | turns/s (batch 1) | turns/s (batch 8) | speedup | p50 s (1 / 8) | p95 s (1 / 8) | p95 ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for players in PLAYER_COUNTS:
        seq, bat = results[(1, players)], results[(8, players)]
        lines.append(f"| {players} | {seq['turns_per_s']:.2f} | {bat['turns_per_s']:.2f} | "
                     f"{bat['turns_per_s'] / seq['turns_per_s']:.2f}x | {seq['p50']:.2f} / {bat['p50']:.2f} | "
                     f"{seq['p95']:.2f} / {bat['p95']:.2f} | {bat['p95'] / seq['p95']:.2f} |")
    seq, bat = results[(1, 8)], results[(8, 8)]
    speedup, p95 = bat["turns_per_s"] / seq["turns_per_s"], bat["p95"] / seq["p95"]
    verdict = "met" if speedup >= 4 and p95 <= 1 else "NOT met"
    lines += ["", f"Goal at 8 players (>= 4x turns/s, p95 no worse): {verdict} ({speedup:.2f}x, p95 ratio {p95:.2f})."]
    return "\n".join(lines)


def record(section: str) -> None:
    title, _, body = section.partition("\n")
    record_section(title.removeprefix("## ").strip(), body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tiny model only, fewer turns")
    parser.add_argument("--record", action="store_true", help="write the `## Serving` section of bench/RESULTS.md")
    parser.add_argument("--threads", type=int, default=THREADS, help="engine threads of the server (default 1)")
    parser.add_argument("--engine", choices=("hf", "ct2"), default="hf",
                        help="the server's engine (default hf: the queue measured against the recorded baseline; "
                             "bench/engines_bench.py compares the engines)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from adventure.models import resolve_model_spec

    tables = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        artifacts = Path(tmp)
        tiny = resolve_model_spec("tiny-untrained", artifacts).location
        cases = [("tiny GPT-2 (2x128)", tiny, 55, 2 if args.quick else 3)]
        if not args.quick:
            small = build_small_shaped_model(artifacts / "models" / "rugpt3small-shaped")
            cases.append(("ruGPT3-small-shaped random GPT-2 (12x768, 125M)", str(small), 20, 2))
        for name, spec, max_new_tokens, turns in cases:
            tables.append(table(name, max_new_tokens, turns, bench_model(name.split()[0], spec, artifacts,
                                                                           max_new_tokens, turns, args.threads,
                                                                           args.engine)))
    minutes = (time.perf_counter() - started) / 60
    title = "Serving" if not args.quick else f"Serving (quick: tiny model only, engine.threads={args.threads})"
    section = "\n\n".join(
        [f"## {title}", f"`python bench/serving_bench.py {'--quick ' if args.quick else ''}--threads {args.threads} --record` on a 2-core CPU container (noisy when shared with other jobs; "
         f"absolute numbers are noisy; both queues of a model are measured in the same run), {platform.python_version()}, "
         f"total {minutes:.1f} min. Players play closed-loop (next turn after the last result); latency is "
         f"submit -> result via long-poll; the server is `python -m serving` in a subprocess (waitress), "
         f"engine={args.engine}, engine.threads={args.threads}."] + tables)
    print(section)
    if args.record:
        record(section)


if __name__ == "__main__":
    main()
