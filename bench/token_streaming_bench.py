"""Token streaming on `make demo`'s setup: how many pieces a turn arrives in, and how soon the first text comes.

One `python -m serving` process with the defaults (engine ct2, the default preset `gamio_sample`, 55 new tokens)
on a tiny GPT-2 (`--model`, e.g. artifacts/models/tiny after `make demo`; without it one is trained here). A player
plays turns one after another, each read as the job's SSE stream; then a game switched to the seed's beam preset
`gamio` does the same (ct2 has no per-step beam state: its reply comes whole), in the same run. Reported per preset:
token events per turn, resets, time to first text (submit -> the first text event) against the whole turn
(submit -> done), and the engine's own first-token time for the same prompt length (ct2, measured in this process:
the call -> its first per-token callback), the baseline time to first text should be close to.

    python bench/token_streaming_bench.py [--model artifacts/models/tiny] [--turns 20] [--record]
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402
from bench.streaming_bench import trained_tiny  # noqa: E402

from serving.client import Player
from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerProcess

log = logging.getLogger("bench.token_streaming")
WORLD = "Вы стоите у ворот старого замка. Стража спит, над башней кружат вороны, а в кармане лежит медный ключ."
ACTIONS = ["открываю ворота", "иду во двор", "зову стражу", "поднимаюсь на башню", "смотрю вниз"]


def play_streamed(url: str, preset: str, turns: int) -> list[dict]:
    rows, player = [], None
    for i in range(turns):
        if i % len(ACTIONS) == 0:  # a fresh game now and then: prompts stay short, as in a new game
            player = Player(url)
            player.new_game(WORLD)
            player._request("PATCH", f"/api/games/{player.game_id}", json={"preset": preset}).raise_for_status()
        started = time.perf_counter()
        job_id = player.submit(ACTIONS[i % len(ACTIONS)])["job_id"]
        first, tokens, resets = None, 0, 0
        for event in player.stream_job(job_id):
            kind = event.get("event")
            if kind in ("token", "reset"):
                first = first if first is not None else time.perf_counter() - started
                tokens += kind == "token"
                resets += kind == "reset"
            if kind in ("done", "failed"):
                turn = json.loads(event["data"]).get("turn") or {}
                rows.append({"tokens": tokens, "resets": resets, "first_s": first, "total_s":
                             time.perf_counter() - started, "chars": len(turn.get("result", ""))})
                break
    return rows


def engine_first_token_s(model: Path, artifacts: Path, repeats: int = 10) -> tuple[float, float]:
    """(median call -> first token callback, median whole call) of ct2 on a game-sized prompt, in this process."""
    from adventure.engines import load_engine
    from adventure.generation import GenerationSettings
    from serving.config import compose_serving_config

    cfg = compose_serving_config([f"paths.artifacts={artifacts}", "engine.threads=1"])
    engine = load_engine(cfg.engine, str(model), artifacts)
    settings = GenerationSettings.load("gamio_sample")
    prompt = engine.tokenizer(WORLD + "\n> открываю ворота\n")["input_ids"]
    firsts, totals = [], []
    for seed in range(repeats):
        started, seen = time.perf_counter(), []
        engine.generate([prompt], settings, seed=seed,
                        on_progress=lambda row, ids: seen or seen.append(time.perf_counter() - started))
        firsts.append(seen[0] if seen else float("nan"))
        totals.append(time.perf_counter() - started)
    return statistics.median(firsts), statistics.median(totals)


def table(results: dict[str, list[dict]], engine_first: float, engine_total: float) -> str:
    lines = ["| preset | turns | token events per turn: median (min..max) | turns with a reset | "
             "first text s: median (min..max) | whole turn s: median | first text / whole turn |",
             "|---|---:|---|---:|---|---:|---:|"]
    for preset, rows in results.items():
        pieces = [r["tokens"] for r in rows]
        firsts = [r["first_s"] for r in rows if r["first_s"] is not None]
        totals = [r["total_s"] for r in rows]
        lines.append(f"| {preset} | {len(rows)} | {statistics.median(pieces):g} ({min(pieces)}..{max(pieces)}) | "
                     f"{sum(r['resets'] > 0 for r in rows)} | {statistics.median(firsts):.3f} ({min(firsts):.3f}.."
                     f"{max(firsts):.3f}) | {statistics.median(totals):.3f} | "
                     f"{statistics.median(firsts) / statistics.median(totals):.2f} |")
    lines += ["", f"Engine alone (ct2, gamio_sample, the same prompt, in the bench process): first token "
                  f"{engine_first:.3f} s, whole call {engine_total:.3f} s (medians of 10)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a tiny model folder (default: train one, ~2 min)")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--record", action="store_true", help="write `## Token streaming` in bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="token-streaming-bench-") as tmp:
        artifacts = Path(tmp)
        model = args.model.resolve() if args.model else trained_tiny(artifacts, 300)
        server = ServerProcess([f"model={model}", f"paths.artifacts={artifacts}", "port=0",
                                *ONE_ADDRESS_MANY_PLAYERS], log_path=artifacts / "server.log", timeout_s=900)
        try:
            play_streamed(server.url, "gamio_sample", 2)  # warm-up
            results = {preset: play_streamed(server.url, preset, args.turns) for preset in ("gamio_sample", "gamio")}
        finally:
            server.stop()
        engine_first, engine_total = engine_first_token_s(model, artifacts)
    body = (f"`python bench/token_streaming_bench.py --model {args.model or '<trained here>'} --turns {args.turns}`: "
            f"one player, turns read as SSE streams from `python -m serving` with the default settings (engine ct2 "
            f"int8, 55 new tokens), the `make demo` tiny GPT-2; a 2-core CPU container shared with other jobs "
            f"(noisy), Python {platform.python_version()}.\n\n{table(results, engine_first, engine_total)}")
    print(f"## Token streaming\n\n{body}")
    if args.record:
        record_section("Token streaming", body)


if __name__ == "__main__":
    main()
