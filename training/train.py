"""`python -m training`: fine-tune (or, for `tiny`, train from scratch) a causal LM on the story dataset.

Top-down: check everything that can be wrong (settings, dataset, the starting model's availability, trainer
arguments) -> only then touch the disk: set up the run dir (resume or start afresh) -> starting model ->
tokenized splits -> transformers Trainer (eval at start and every eval_steps, best checkpoint kept) -> evaluate
the best model once more -> publish the model folder (rank 0 only).

Run dirs (resume, earlier runs kept) are training/run_dir.py's; method=dpo is training/dpo.py's.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from adventure.cli import resolved_config
from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.models import check_hub_available
from adventure.paths import artifacts_dir
from training.arguments import training_arguments
from training.callbacks import EvalLogCallback, RankReportCallback
from training.data import data_collator, load_story_dataset, prepare_split
from training.expected_warnings import quiet_expected_warnings
from training.model_setup import check_block_size, load_starting_point, model_spec
from training.lora import ADAPTER_METHODS, add_adapters, check_method, parameter_counts, save_merged
from training.publish import collect_metrics, publish
from training.sharding import save_full_model, shard_on_cpu
from training.run_dir import _checkpoint_to_resume, output_dirs
from training.sweep import current_job, record_job

log = logging.getLogger(__name__)


def evenly_spaced(split, limit):
    """At most `limit` rows spread over the whole split (every story is represented), for cheaper evals."""
    if not limit or len(split) <= int(limit):
        return split
    stride = -(-len(split) // int(limit))
    return split.select(range(0, len(split), stride))


def check_starting_model(model_cfg) -> None:
    """The starting model exists (a local folder) or is available (a hub id: from the cache when offline), so a
    missing one is refused before the run dir or anything else on disk is touched."""
    if model_cfg.source == "scratch":
        return
    spec = model_spec(model_cfg)
    if not model_cfg.path:
        try:
            check_hub_available(spec, hint=f"model.path=/path/to/{spec.split('/')[-1]}")
        except GamioError as exc:
            raise GamioError(f"model={model_cfg.name}: {exc}") from None


def train(cfg) -> dict | None:
    """Train per `cfg`; returns training_metrics.json's content on rank 0 (None on other ranks)."""
    if cfg.method == "dpo":
        from training.dpo import train_dpo

        return train_dpo(cfg)
    from transformers import Trainer

    artifacts = artifacts_dir(cfg)
    t, model_cfg = cfg.train, cfg.model
    check_method(str(cfg.method))  # method=qlora without a GPU: refused before anything is read or moved
    check_block_size(model_cfg, int(t.block_size))
    check_starting_model(model_cfg)  # a missing folder or hub model is named now, before the run dir moves
    settings = GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True))
    data = load_story_dataset(Path(str(cfg.dataset_dir)))
    run_dir, out_dir = output_dirs(cfg, current_job())

    args = training_arguments(cfg, run_dir)  # under torchrun this joins the process group
    is_main = args.process_index == 0
    adapters = cfg.method in ADAPTER_METHODS
    # Rank 0 first: it moves old runs aside, builds/downloads the model and tokenizes; the others then reuse.
    with args.main_process_first(local=False, desc="run dir, model and data"):
        checkpoint = _checkpoint_to_resume(run_dir, bool(cfg.resume), is_main)
        model, tokenizer, origin = load_starting_point(model_cfg, run_dir, artifacts, data["train"], int(t.seed),
                                                       int(t.block_size), quantized=cfg.method == "qlora")
        splits = {name: prepare_split(data[name], tokenizer, loss_on=cfg.loss_on, block_size=int(t.block_size),
                                      history_turns=int(cfg.history_turns), name=name)
                  for name in ("train", "validation")}
    splits["validation"] = evenly_spaced(splits["validation"], t.max_eval_rows)
    # Checkpoints and the final folder carry the seed's decoding settings, so every stage generates alike.
    model.generation_config = settings.to_generation_config(tokenizer)
    quiet_expected_warnings(model)  # GPT-2's loss type and tied lm_head: expected, not worth a warning
    if adapters:
        model = add_adapters(model, cfg)
    trainable, total = parameter_counts(model)

    trainer = Trainer(model=model, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
                      data_collator=data_collator(tokenizer, cfg.loss_on), processing_class=tokenizer,
                      callbacks=[eval_log := EvalLogCallback(), rank_report := RankReportCallback()])
    shard_on_cpu(trainer)
    log.info("training %s (%s): %d %s rows for training, %d for validation, block_size %d, %d process(es)",
             model_cfg.name, cfg.method, len(splits["train"]), "packed" if cfg.loss_on == "all" else "sample",
             len(splits["validation"]), t.block_size, args.world_size)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    wall = time.perf_counter() - started
    state = trainer.state
    history = list(state.log_history)  # before the final evaluation adds a duplicate last point
    final_eval = trainer.evaluate()  # the best model, which load_best_model_at_end put back

    resumed_from = int(checkpoint.name.split("-")[1]) if checkpoint else 0
    this_run_tokens = state.num_input_tokens_seen - rank_report.tokens_at_start
    metrics = collect_metrics(state, history, final_eval, {
        "model": model_cfg.name,
        "method": str(cfg.method),
        "loss_on": cfg.loss_on,
        "block_size": int(t.block_size),
        "trainable_params": trainable,
        "total_params": total,
        "world_size": args.world_size,
        "resumed_from_step": resumed_from,
        "steps_this_run": state.global_step - resumed_from,
        "tokens_this_run": this_run_tokens,
        # Training throughput: the evaluations inside trainer.train() are left out.
        "tokens_per_second": this_run_tokens / max(output.metrics["train_runtime"] - eval_log.eval_seconds, 1e-6),
        "train_runtime_s": output.metrics["train_runtime"],
        "eval_runtime_s": eval_log.eval_seconds,
        "wall_time_s": wall,
    })
    data_info = {
        "stories (train)": len(set(data["train"]["tree_id"])) if "tree_id" in data["train"].column_names else "-",
        "samples train / validation": f"{len(data['train'])} / {len(data['validation'])}",
        f"{'packed blocks' if cfg.loss_on == 'all' else 'rows'} train / validation":
            f"{len(splits['train'])} / {len(splits['validation'])}",
    }
    save = (lambda staging, main: save_merged(trainer, staging, origin, main)) if adapters else (
        (lambda staging, main: save_full_model(trainer, staging, main)) if trainer.is_fsdp_enabled else None)
    folder = publish(trainer, out_dir, metrics, resolved_config(cfg), data_info, save_weights=save)
    return metrics if folder else None


def run(cfg) -> float | None:
    """`python -m training`: train; in a multirun also record the job in the sweep's summary. Returns the best
    validation loss: the objective Hydra's Optuna sweeper minimises."""
    job = current_job()
    try:
        metrics = train(cfg)
    except Exception as exc:  # a bad job in a sweep: recorded as failed, then raised as usual
        if job:
            record_job(job, artifacts_dir(cfg), None, None, error=str(exc))
        raise
    if metrics is None:  # not rank 0
        return None
    if job:
        record_job(job, artifacts_dir(cfg), output_dirs(cfg, job)[1], metrics)
    return metrics.get("best_eval_loss")
