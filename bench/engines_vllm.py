"""The vLLM part of the engines benchmark (`bench/engines_bench.py --vllm`, run from .venv-vllm): the game through
`python -m serving` on hf, ct2 and vLLM's CPU build, with the seed's sampling preset without beams (gamio_sample,
what vLLM can run).

1. Players: turns/s and latency at 1, 8 and 16 players (closed loop, a game each) for hf and ct2 behind the batch
   barrier (queue.max_batch=8, one batch at a time), vLLM with the barrier (queue.concurrent_batches=1) and vLLM
   with continuous batching (the default for engine=vllm: 8 batches in flight).
2. Joining mid-batch: 8 players send a turn at once; once none of them waits, a 9th player sends one. Its
   latency is what continuous batching changes: behind a barrier it waits for the running batch to end, then
   generates alone; with continuous batching it joins the running generation at the next step.
"""
from __future__ import annotations

import logging
import statistics
import threading
import time
from pathlib import Path

import requests

from bench.serving_bench import run_players
from serving.client import Player
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess

log = logging.getLogger("bench.engines.vllm")
PLAYER_COUNTS = (1, 8, 16)
SERVERS = (("hf float32, max_batch=8 (barrier)", ["engine=hf", "queue.max_batch=8"]),
           ("ct2 int8, max_batch=8 (barrier)", ["engine=ct2", "queue.max_batch=8"]),
           ("vllm float32, max_batch=8, concurrent_batches=1 (barrier)",
            ["engine=vllm", "queue.max_batch=8", "queue.concurrent_batches=1"]),
           ("vllm float32, max_batch=8, continuous (concurrent_batches=8)", ["engine=vllm", "queue.max_batch=8"]))


def late_joiner(url: str, world: str, rounds: int) -> dict:
    """Median latency of the 8 turns sent together, and of a 9th sent once they generate."""
    first, late = [], []
    for _ in range(rounds):
        clients = [Player(url) for _ in range(9)]
        for i, client in enumerate(clients):
            client.new_game(world.replace("{i}", str(i)))
        sent = time.perf_counter()
        jobs = [client.submit("иду вперёд")["job_id"] for client in clients[:8]]
        # The 9th is sent once none of the 8 waits any more: behind the barrier they may have been split over two
        # batches (the worker takes what is queued when it is free); the 9th meets the one that started last.
        while any(requests.get(f"{url}api/jobs/{j}", timeout=30).json()["status"] == "queued" for j in jobs):
            time.sleep(0.005)
        joined = time.perf_counter()
        job = clients[8].submit("догоняю")["job_id"]
        done = {}

        def wait(client, job_id, key):
            assert client.wait_job(job_id, 1800)["status"] == "done"
            done[key] = time.perf_counter()

        waiters = [threading.Thread(target=wait, args=(c, j, i)) for i, (c, j) in enumerate(zip(clients, jobs))]
        waiters.append(threading.Thread(target=wait, args=(clients[8], job, "late")))
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join()
        first.append(statistics.median(done[i] - sent for i in range(8)))
        late.append(done["late"] - joined)
    return {"first8_s": statistics.median(first), "late_s": statistics.median(late), "rounds": rounds}


def measure(folder: Path, artifacts: Path, world: str, *, threads: int, new_tokens: int, context: int,
            turns: dict[int, int], rounds: int) -> list[dict]:
    rows = []
    for label, overrides in SERVERS:
        vllm = "engine=vllm" in overrides
        extra = ["engine.dtype=float32", f"engine.max_model_len={context}"] if vllm else [f"engine.threads={threads}"]
        name = label.split(",")[0].split()[0] + ("-c" if "continuous" in label else "")
        server = ServerProcess([f"model={folder}", f"paths.artifacts={artifacts}", "port=0", *overrides, *extra,
                                "generation=gamio_sample", f"generation.max_new_tokens={new_tokens}",
                                f"db={artifacts}/serving/vllm-bench-{name}.sqlite", *ONE_ADDRESS_MANY_PLAYERS],
                               log_path=artifacts / f"server-{name}.log", timeout_s=900)
        try:
            run_players(server.url, 2, 1, world)  # warm-up
            row = {"server": label, "players": {}}
            for players in PLAYER_COUNTS:
                row["players"][players] = run_players(server.url, players, turns[players], world)
                log.info("%s, %d players: %s", label, players, row["players"][players])
            row["join"] = late_joiner(server.url, world, rounds)
            log.info("%s, joining mid-batch: %s", label, row["join"])
            rows.append(row)
        finally:
            server.stop()
    return rows


def table(rows: list[dict], story: str, new_tokens: int) -> list[str]:
    out = [f"**vLLM beside hf and ct2** ({story}, `python -m serving`, generation=gamio_sample with "
           f"{new_tokens} new tokens; players in a closed loop, a game each)", "",
           "| server | " + " | ".join(f"{n} player{'s' if n > 1 else ''}: turns/s (p50 / p95 s)" for n in PLAYER_COUNTS)
           + " | 8 sent together: median s | a 9th sent mid-batch: median s |",
           "|---|" + "---:|" * (len(PLAYER_COUNTS) + 2)]
    for row in rows:
        cells = [f"{r['turns_per_s']:.2f} ({r['p50']:.2f} / {r['p95']:.2f})" for r in row["players"].values()]
        join = row["join"]
        out.append(f"| {row['server']} | " + " | ".join(cells) + f" | {join['first8_s']:.2f} | {join['late_s']:.2f} |")
    barrier, continuous = (next(r for r in rows if "vllm" in r["server"] and key in r["server"])
                           for key in ("barrier", "continuous"))
    out += ["", f"A turn sent while a batch of 8 generates waits {barrier['join']['late_s']:.2f} s behind vLLM's "
            f"barrier and {continuous['join']['late_s']:.2f} s with continuous batching (median of "
            f"{continuous['join']['rounds']} rounds)."]
    return out
