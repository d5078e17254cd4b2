"""Steering benchmark: the added per-turn cost of world-info scanning (goal: < 5 ms with 100 entries over 4 turns).

Turns are real: consecutive (action, result) pairs of the embedded corpus. 100 entries have keys drawn from the
corpus' own nouns (so some fire, most do not), a third of them two-word keys. Measured per turn:
  - scan:    triggered_world_info over the last 4 turns + the new action (what the pipeline adds to a turn),
             warm (a game in progress: the words of earlier turns are already lemmatised) and cold (every word
             new to the process);
  - prompt:  the whole prompt assembly of the tiny model's pipeline with those 100 entries vs with none.
Repeated back to back in one process; the minimum and the spread (max/min) are reported.

    python bench/steering_bench.py [--quick] [--record]
"""
from __future__ import annotations

import argparse
import logging
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import record_section  # noqa: E402

log = logging.getLogger("bench.steering")
ENTRIES, SCAN_TURNS, GOAL_MS = 100, 4, 5.0


def corpus_turns() -> list[list[tuple[str, str]]]:
    from adventure.paths import SAMPLE_STORIES_DIR
    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    return [list(s.history) + [(s.action, s.target)] for s in samples_from_trees(load_trees(SAMPLE_STORIES_DIR))
            if len(s.history) >= SCAN_TURNS]


def world_info(turns, seed: int = 0):
    from adventure.steering import WorldInfoEntry, words

    rng = random.Random(seed)
    vocabulary = sorted({w.lower() for path in turns[:200] for pair in path for t in pair for w in words(t)
                         if len(w) > 4})
    entries = []
    for i in range(ENTRIES):
        key = " ".join(rng.sample(vocabulary, 2)) if i % 3 == 0 else rng.choice(vocabulary)
        entries.append(WorldInfoEntry((key,), f"Запись {i}: " + " ".join(rng.sample(vocabulary, 12))))
    return entries


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns and repetitions")
    parser.add_argument("--record", action="store_true", help="write the `## Steering` section of RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import tempfile

    from adventure import steering
    from adventure.engines.hf import HFEngine
    from adventure.generation import GenerationSettings
    from adventure.models import load_causal_lm
    from adventure.turns import TurnInput, TurnPipeline

    paths = corpus_turns()
    random.Random(1).shuffle(paths)
    paths = paths[: 20 if args.quick else 200]
    entries = tuple(world_info(paths))
    reps = 3 if args.quick else 10

    def scan_all():
        for path in paths:
            recent = path[-SCAN_TURNS - 1:-1]
            steering.triggered_world_info(entries, [t for pair in recent for t in pair] + [path[-1][0]])

    steering.lemmas.cache_clear()
    steering.key_lemmas.cache_clear()
    cold = timed(scan_all, 1)[0] / len(paths)
    warm = [ms / len(paths) for ms in timed(scan_all, reps)]

    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, _ = load_causal_lm("tiny-untrained", Path(tmp))
        pipeline = TurnPipeline(HFEngine(model, tokenizer), GenerationSettings.load("gamio"))
        plain = [TurnInput("Мир.", tuple(p[:-1]), p[-1][0]) for p in paths]
        steered = [TurnInput("Мир.", tuple(p[:-1]), p[-1][0], steering=steering.Steering(world_info=entries))
                   for p in paths]
        base = [ms / len(paths) for ms in timed(lambda: [pipeline.prompt(t) for t in plain], reps)]
        with_wi = [ms / len(paths) for ms in timed(lambda: [pipeline.prompt(t) for t in steered], reps)]
    triggered = statistics.mean(len(pipeline.world_info_order(t)) for t in steered)

    rows = [("world-info scan, warm (a game in progress)", warm), ("world-info scan, cold (first words ever)", [cold]),
            ("prompt assembly without world info (baseline)", base), ("prompt assembly with 100 entries", with_wi)]
    lines = ["| per turn | min ms | spread (max/min) |", "|---|---:|---:|"]
    lines += [f"| {name} | {min(v):.3f} | {max(v) / min(v):.2f} |" for name, v in rows]
    added = min(with_wi) - min(base)
    verdict = (f"Added per-turn cost of world-info scanning (100 entries, {SCAN_TURNS} turns + action; "
               f"{triggered:.1f} entries triggered on average): {min(warm):.3f} ms warm, {cold:.3f} ms cold. Goal "
               f"< {GOAL_MS} ms: {'met' if min(warm) < GOAL_MS else 'NOT met'}. The whole prompt assembly, placing "
               f"the triggered entries within their budget, costs +{added:.3f} ms "
               f"({min(with_wi) / min(base):.2f}x the baseline without world info).")
    print("\n".join(lines) + "\n\n" + verdict)
    if args.record:
        body = (f"`python bench/steering_bench.py{' --quick' if args.quick else ''} --record` ({time.strftime('%Y-%m-%d')}). "
                f"Machine: {platform.machine()} {__import__('os').cpu_count()}-core CPU container (shared), "
                f"CPython {platform.python_version()}. {len(paths)} real corpus turns, {reps} repetitions; the "
                f"prompt rows use the tiny model's tokenizer (512-token context, world info budget a quarter).\n\n"
                + "\n".join(lines) + "\n\n" + verdict)
        record_section("Steering" + (" (quick)" if args.quick else ""), body)


if __name__ == "__main__":
    main()
