"""`python -m eval`: compare models on the evaluation sets and write a reproducible report a researcher can
decide on.

    1. check everything first (dataset, presets, every model and translator): a missing one fails before any work
    2. fix the sets (test and validation splits, play-through prompts, parallel pairs) from the dataset and the
       seed, and the scored reply of every sample (cut by characters, the same for every Russian-side model)
    3. per model: likelihood on test (with action following) and validation, then replies to the play-through
       prompts for every generation preset (eval/scoring.py)
    4. per translator in use: BLEU / chrF on the parallel set
    5. intervals (story-level bootstrap), the recommended model (chosen on validation), paired comparisons with it,
       best presets, warnings (eval/assemble.py)
    6. write <paths.artifacts>/reports/<report_name>/: report.json, report.md, items.jsonl, timing.md and the plots
       (and lm_eval/ with export=lm_eval)
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
from eval.assemble import assemble, parallel_intervals
from eval.bootstrap import LEVEL
from eval.items import FILE_NAME as ITEMS_FILE, write_items
from eval.model_set import resolve_models, translator_specs
from eval.plots import write_plots
from eval.preferences import read_votes, summarize, write_dataset
from eval.report import build_report, write_json
from eval.report_md import write_markdown, write_timing
from eval.scoring import build_sets, evaluate_model
from eval.subjects import TranslatorPool, load_pipeline
from eval.translation_metrics import score_translator
from eval.uncertainty import Bootstrap

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


def set_descriptions(sets, all_test, all_validation, presets, steering, parallel, requested_size) -> dict:
    def stories(samples):
        return sorted({s.tree_id for s in samples})

    info = {"test": {"description": "dataset test split (stories never seen in training)", "size": len(sets.test),
                     "available": len(all_test), "stories": stories(sets.test),
                     "replies_cut": sum(r != s.target for r, s in zip(sets.test_replies, sets.test)),
                     "content_sha256": eval_sets.content_sha256(sets.test)},
            "validation": {"description": "dataset validation split: the recommended model is chosen here",
                           "size": len(sets.validation), "available": len(all_validation),
                           "stories": stories(sets.validation),
                           "content_sha256": eval_sets.content_sha256(sets.validation)},
            "playthrough": {"description": "mid-game (world, last actions, new action) prompts from the test stories",
                            "size": len(sets.playthrough), "requested_size": requested_size,
                            "stories": stories(sets.playthrough),
                            "presets": [p.name for p in presets], "steering": steering.to_dict(),
                            "ids": [eval_sets.sample_id(s) for s in sets.playthrough],
                            "content_sha256": eval_sets.content_sha256(sets.playthrough)}}
    if parallel:
        info["parallel"] = {"description": "data/sample/parallel aligned sentences (en, ru)", "size": len(parallel),
                            "content_sha256": eval_sets.content_sha256(parallel)}
    return info


def export_lm_eval(out: Path, final: Path, models, sets, recommended: dict | None, artifacts: Path, cfg) -> Path:
    """The test set as an lm-evaluation-harness task: each sample's prompt as the reference model (the
    recommended one, else the first Russian-side model) has it, and the scored reply (eval/lm_eval_export.py)."""
    from adventure.models import tokenizer_and_context
    from eval.lm_eval_export import lm_eval_records, write_lm_eval_task

    ranked = [m for m in models if recommended and m.name == recommended["name"]] + [m for m in models
                                                                                      if m.comparable]
    if not ranked:
        raise GamioError("export=lm_eval: no Russian-side model in the report to render the prompts with")
    model = ranked[0]
    spec = model.source.location if model.source.is_local else model.spec
    _source, tokenizer, context = tokenizer_and_context(spec, artifacts)
    records = lm_eval_records(tokenizer, sets.test, sets.test_replies, context, int(cfg.playthrough.max_turns))
    log.info("export=lm_eval: %d test samples with the prompts of %s", len(records), model.name)
    return write_lm_eval_task(records, out, special_tokens=tokenizer.all_special_tokens, final_dir=final)


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
    all_validation = eval_sets.load_split(dataset_dir, "validation", required=False)
    steering = load_steering(cfg.playthrough.steering)
    votes = load_votes(cfg.preferences, artifacts)
    models = resolve_models(_plain(cfg.models), artifacts, _plain(cfg.translation))
    if int(cfg.playthrough.size) < 30:
        log.warning("playthrough.size=%d: reports meant for a decision should use >= 30 prompts",
                    int(cfg.playthrough.size))
    make_deterministic(seed)

    # 2. The sets, and the reply text every Russian-side model scores.
    sets = build_sets(eval_sets.cap(all_test, cfg.max_samples.test, seed),
                      eval_sets.cap(all_validation, cfg.max_samples.validation, seed),
                      eval_sets.playthrough_set(all_test, int(cfg.playthrough.size), seed), models, artifacts,
                      cfg.likelihood.max_chars, seed, bool(cfg.likelihood.action_following))
    in_use = translator_specs(models)
    parallel = eval_sets.parallel_set(cfg.max_samples.parallel, seed) if in_use else []
    set_info = set_descriptions(sets, all_test, all_validation, presets, steering, parallel,
                                int(cfg.playthrough.size))
    log.info("sets: test %d samples (%d stories), validation %d, play-through %d prompts, parallel %d pairs; "
             "%d model(s), presets %s", len(sets.test), len(set_info["test"]["stories"]), len(sets.validation),
             len(sets.playthrough), len(parallel), len(models), [p.name for p in presets])

    # 3. Models, one at a time (a large model is freed before the next is loaded).
    from tqdm.auto import tqdm

    runs: dict = {}
    timing: dict = {"started_at": started_at, "models": {}, "translators": {}}
    engines: dict = {}  # per model, what produced its numbers (the engine scores with its own model too)
    shown = sets.playthrough[: int(cfg.samples_in_report)]
    pool = TranslatorPool(cfg.translation, artifacts)
    with tqdm(total=len(models) * (1 + len(presets)), desc="eval", unit="step") as progress:
        for spec in models:
            loaded_at = time.perf_counter()
            progress.set_postfix_str(spec.name)
            pipeline = load_pipeline(spec, cfg.engine, presets[0], artifacts, pool, int(cfg.playthrough.max_turns))
            load_seconds = time.perf_counter() - loaded_at
            engines[spec.name] = {"generation": pipeline.engine.description,
                                  "likelihood": pipeline.engine.description}
            runs[spec.name] = evaluate_model(spec, pipeline, sets, presets, cfg, steering, progress)
            timing["models"][spec.name] = dict(runs[spec.name].timing, load_seconds=load_seconds)
            pipeline.engine.close()
            del pipeline
            gc.collect()

    # 4. Translators in use, on the parallel set.
    boot = Bootstrap(int(cfg.bootstrap.resamples), seed)
    parallel_results = {}
    for t_spec, direction in in_use:
        translator = pool.get(t_spec, direction)
        metrics, hypotheses, seconds = score_translator(translator, parallel, direction)
        key = f"{direction}:{t_spec}"
        references = [p.en if direction == "ru-en" else p.ru for p in parallel]
        parallel_results[key] = parallel_intervals(dict(metrics, model=t_spec, engine=translator.description),
                                                   hypotheses, references, boot, key)
        timing["translators"][key] = {"seconds": seconds}
        log.info("translator %s: BLEU %.2f chrF %.2f", key, metrics["bleu"], metrics["chrf"])
    pool.close()

    # 5. Numbers with intervals, the recommendation, comparisons, warnings.
    assembled = assemble(models, runs, sets, boot, set_info)
    results = dict(assembled.results, parallel=parallel_results)
    for name in (m.name for m in models):
        test = results["test"].get(name, {})
        log.info("%s: bits/char %.4f %s, action following %s", name, test.get("bits_per_char", float("nan")),
                 test.get("bits_per_char_ci95"), test.get("action_following"))
    empty = {(m, p): r["empty_share"] for m, per in results["playthrough"].items() for p, r in per.items()
             if r["empty_share"] > 0}
    if empty:  # once, as a summary (the turn pipeline's per-turn redraw notes are debug lines)
        log.info("empty replies (share per model / preset): %s",
                 ", ".join(f"{m} / {p} {v:.0%}" for (m, p), v in empty.items()))
    for warning in assembled.warnings:
        log.warning("%s", warning)

    # 6. The report.
    timing["total_seconds"] = time.perf_counter() - run_started
    config = resolved_config(cfg)
    dataset = {"path": str(dataset_dir), "files_sha256": eval_sets.dataset_files_sha256(dataset_dir),
               "test_sha256": eval_sets.content_sha256(all_test)}
    outputs = [{spec.name: {p: runs[spec.name].plays[p][i].text for p in runs[spec.name].plays} for spec in models}
               for i in range(len(shown))]
    uncertainty = {"method": "percentile bootstrap, paired for comparisons", "unit": "story", "level": LEVEL,
                   "resamples": int(cfg.bootstrap.resamples), "seed": seed,
                   "p_value": "two-sided, from the resampled deltas: 2 x min(share <= 0, share >= 0), +1 corrected"}
    report = build_report(report_name=str(cfg.report_name), seed=seed, config=config, models=models, sets=set_info,
                          results=results, samples=[sample_entry(s, o) for s, o in zip(shown, outputs)],
                          dataset=dataset, timing=timing, engines=engines,
                          preferences=summarize(votes) if votes else None, comparisons=assembled.comparisons,
                          warnings=assembled.warnings, best_presets=assembled.best_presets,
                          uncertainty=uncertainty, recommended=assembled.recommended, artifacts=artifacts)
    report["training_curves"] = [m.name for m in models if m.source.is_local
                                 and (Path(m.source.location) / "training_metrics.json").is_file()]
    with publish_folder(out_dir) as staging:  # a report folder is replaced whole, never half-written
        write_json(report, staging / "report.json")
        write_markdown(report, staging / "report.md")
        write_timing(report, staging / "timing.md")
        write_items(staging / ITEMS_FILE, [m.name for m in models], runs, sets)
        if any(runs[m.name].likelihood.get("test") for m in models):
            log.info("per-item scores: %s", out_dir / ITEMS_FILE)
        write_plots(report, staging, {m.name: Path(m.source.location) for m in models if m.source.is_local})
        if votes:
            write_dataset(votes, staging / "preferences")
        if cfg.export == "lm_eval":
            export_lm_eval(staging / "lm_eval", out_dir / "lm_eval", models, sets, assembled.recommended, artifacts,
                           cfg)
    rec = report["recommended"]
    log.info("report written to %s; recommended: %s", out_dir, rec["name"] if rec else "none")
    return out_dir
