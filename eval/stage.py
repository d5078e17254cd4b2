"""`python -m eval`: compare models on the evaluation sets and write a reproducible report.

    1. check everything first (dataset, presets, every model and translator): a missing one fails before any work
    2. fix the sets (test split, play-through prompts, parallel pairs) from the dataset and the seed
    3. per model: likelihood on the test split, then replies to the play-through prompts per generation preset
    4. per translator in use: BLEU / chrF on the parallel set
    5. write <paths.artifacts>/reports/<report_name>/: report.json, report.md, bits_per_char.png, latency.png
"""
from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adventure.cli import resolved_config
from adventure.engines import check_decoding, require_engine
from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.paths import artifacts_dir
from adventure.publish import publish_folder
from adventure.steering import NO_STEERING, Steering, SteeringError, updated_steering
from eval import eval_sets
from eval.generation_metrics import play_turns, timing_metrics
from eval.likelihood import likelihood
from eval.model_set import EvalModel, resolve_models, translator_specs
from eval.plots import write_plots
from eval.preferences import read_votes, summarize, write_dataset
from eval.report import build_report, write_json
from eval.report_md import write_markdown
from eval.subjects import TranslatorPool, load_pipeline, model_side_samples
from eval.text_metrics import text_metrics
from eval.translation_metrics import score_translator

log = logging.getLogger(__name__)


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def report_dir(cfg: DictConfig) -> Path:
    return artifacts_dir(cfg) / "reports" / str(cfg.report_name)


def load_presets(main, extra) -> list[GenerationSettings]:
    """The main settings (the `generation` group, possibly edited on the command line), then extra presets."""
    presets = [GenerationSettings.from_mapping(main)]
    for name in extra:
        preset = GenerationSettings.load(str(name))
        if preset.name not in [p.name for p in presets]:
            presets.append(preset)
    return presets


def load_steering(path) -> Steering:
    """The play-through's steering (memory, author's note, world info, banned words, stop strings): a JSON file
    with the fields of PATCH /api/games/<id>, applied to every play-through prompt; none by default."""
    if not path:
        return NO_STEERING
    path = Path(str(path)).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise SteeringError(f"expected a JSON object, got {type(data).__name__}")
        return updated_steering(NO_STEERING, data)
    except (OSError, ValueError, SteeringError) as exc:
        raise GamioError(f"playthrough.steering={path}: {exc}") from None


def load_votes(preferences, artifacts: Path) -> list[dict]:
    """The arena votes of the serving database (`preferences`: auto | a path | null)."""
    if preferences is None:
        return []
    db = artifacts / "serving" / "gamio.sqlite" if preferences == "auto" else Path(str(preferences)).expanduser()
    if not db.is_file():
        if preferences == "auto":
            return []
        raise GamioError(f"preferences={db}: no such serving database (python -m serving writes it)")
    return read_votes(db)


def make_deterministic(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def sample_entry(sample, outputs: dict) -> dict:
    return {"id": eval_sets.sample_id(sample), "world_tail": sample.world[-240:],
            "history_actions": [a for a, _ in sample.history[-3:]], "action": sample.action,
            "gold": sample.target, "outputs": outputs}


def evaluate_model(spec: EvalModel, pipeline, test, playthrough, presets, cfg, steering,
                   progress) -> tuple[dict, dict, dict, dict]:
    """(test metrics, play-through metrics per preset, timing) of one loaded model; replies kept for samples."""
    started = time.perf_counter()
    max_turns = int(cfg.playthrough.max_turns)
    lik = likelihood(pipeline.engine, model_side_samples(pipeline, test, max_turns),
                     batch_size=int(cfg.likelihood.batch_size), max_turns=max_turns)
    test_result = dict(lik.metrics(), side=spec.language, comparable=spec.comparable)
    timing = {"test_seconds": time.perf_counter() - started, "playthrough": {}}
    progress.update(1)
    play, replies = {}, {}
    for preset in presets:
        turns = play_turns(pipeline, playthrough, preset, int(cfg.seed), max_turns, steering)
        play[preset.name] = text_metrics([t.text for t in turns], [t.new_tokens for t in turns],
                                         [t.cut_action for t in turns])
        timing["playthrough"][preset.name] = timing_metrics(turns)
        replies[preset.name] = [t.text for t in turns]
        progress.update(1)
    return test_result, play, timing, replies


def run(cfg: DictConfig) -> Path:
    """Write the report for `cfg`; returns the report folder."""
    run_started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    artifacts = artifacts_dir(cfg)
    out_dir = report_dir(cfg)
    seed = int(cfg.seed)

    # 1. Everything that can be missing is checked before any model is loaded.
    presets = load_presets(_plain(cfg.generation), _plain(cfg.extra_generation))
    require_engine(str(cfg.engine.name))
    for index, preset in enumerate(presets):  # an engine without beam search refuses a beam preset here
        check_decoding(str(cfg.engine.name), preset, "generation" if index == 0 else "extra_generation")
    dataset_dir = Path(str(cfg.dataset)).expanduser().resolve()
    all_test = eval_sets.load_test_split(dataset_dir)
    steering = load_steering(cfg.playthrough.steering)
    votes = load_votes(cfg.preferences, artifacts)
    models = resolve_models(_plain(cfg.models), artifacts, _plain(cfg.translation))
    if int(cfg.playthrough.size) < 30:
        log.warning("playthrough.size=%d: reports meant for a decision should use >= 30 prompts",
                    int(cfg.playthrough.size))
    make_deterministic(seed)

    # 2. The sets.
    test = eval_sets.cap(all_test, cfg.max_samples.test, seed)
    playthrough = eval_sets.playthrough_set(all_test, int(cfg.playthrough.size), seed)
    in_use = translator_specs(models)
    parallel = eval_sets.parallel_set(cfg.max_samples.parallel, seed) if in_use else []
    sets = {"test": {"description": "dataset test split (stories never seen in training)", "size": len(test),
                     "available": len(all_test), "stories": sorted({s.tree_id for s in test}),
                     "content_sha256": eval_sets.content_sha256(test)},
            "playthrough": {"description": "mid-game (world, last actions, new action) prompts from the test stories",
                            "size": len(playthrough), "requested_size": int(cfg.playthrough.size),
                            "presets": [p.name for p in presets], "steering": steering.to_dict(),
                            "ids": [eval_sets.sample_id(s) for s in playthrough],
                            "content_sha256": eval_sets.content_sha256(playthrough)}}
    if parallel:
        sets["parallel"] = {"description": "data/sample/parallel aligned sentences (en, ru)", "size": len(parallel),
                            "content_sha256": eval_sets.content_sha256(parallel)}
    log.info("sets: test %d samples, play-through %d prompts, parallel %d pairs; %d model(s), presets %s",
             len(test), len(playthrough), len(parallel), len(models), [p.name for p in presets])

    # 3. Models, one at a time (a large model is freed before the next is loaded).
    from tqdm.auto import tqdm

    results: dict = {"test": {}, "playthrough": {}, "parallel": {}}
    timing: dict = {"started_at": started_at, "models": {}, "translators": {}}
    engines: dict = {}  # per model, what produced its numbers (the engine scores with its own model too)
    shown = playthrough[: int(cfg.samples_in_report)]
    outputs: list[dict] = [{} for _ in shown]
    pool = TranslatorPool(cfg.translation, artifacts)
    with tqdm(total=len(models) * (1 + len(presets)), desc="eval", unit="step") as progress:
        for spec in models:
            loaded_at = time.perf_counter()
            progress.set_postfix_str(spec.name)
            pipeline = load_pipeline(spec, cfg.engine, presets[0], artifacts, pool, int(cfg.playthrough.max_turns))
            load_seconds = time.perf_counter() - loaded_at
            engines[spec.name] = {"generation": pipeline.engine.description,
                                  "likelihood": pipeline.engine.description}
            test_result, play, model_timing, replies = evaluate_model(spec, pipeline, test, playthrough, presets,
                                                                      cfg, steering, progress)
            results["test"][spec.name] = test_result
            results["playthrough"][spec.name] = play
            timing["models"][spec.name] = dict(model_timing, load_seconds=load_seconds)
            for i in range(len(shown)):
                outputs[i][spec.name] = {preset: texts[i] for preset, texts in replies.items()}
            log.info("%s: bits/char %.4f, perplexity %.2f", spec.name, test_result["bits_per_char"],
                     test_result["perplexity"])
            pipeline.engine.close()
            del pipeline
            gc.collect()

    # 4. Translators in use, on the parallel set.
    for t_spec, direction in in_use:
        translator = pool.get(t_spec, direction)
        metrics, _hyps, seconds = score_translator(translator, parallel, direction)
        key = f"{direction}:{t_spec}"
        results["parallel"][key] = dict(metrics, model=t_spec, engine=translator.description)
        timing["translators"][key] = {"seconds": seconds}
        log.info("translator %s: BLEU %.2f chrF %.2f", key, metrics["bleu"], metrics["chrf"])

    pool.close()

    # 5. The report.
    timing["total_seconds"] = time.perf_counter() - run_started
    config = resolved_config(cfg)
    dataset = {"path": str(dataset_dir), "files_sha256": eval_sets.dataset_files_sha256(dataset_dir),
               "test_sha256": eval_sets.content_sha256(all_test)}
    report = build_report(report_name=str(cfg.report_name), seed=seed, config=config, models=models, sets=sets,
                          results=results, samples=[sample_entry(s, o) for s, o in zip(shown, outputs)],
                          dataset=dataset, timing=timing, engines=engines,
                          preferences=summarize(votes) if votes else None)
    with publish_folder(out_dir) as staging:  # a report folder is replaced whole, never half-written
        write_json(report, staging / "report.json")
        write_markdown(report, staging / "report.md")
        write_plots(report, staging)
        if votes:
            write_dataset(votes, staging / "preferences")
    rec = report["recommended"]
    log.info("report written to %s; recommended: %s", out_dir, rec["name"] if rec else "none")
    return out_dir
