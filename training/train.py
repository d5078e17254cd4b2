"""`python -m training`: fine-tune (or, for `tiny`, train from scratch) a causal LM on the story dataset.

Top-down: check everything that can be wrong (settings, dataset, the starting model's availability, trainer
arguments) -> only then touch the disk: set up the run dir (resume or start afresh) -> starting model ->
tokenized splits -> transformers Trainer (eval at start and every eval_steps, best checkpoint kept) -> evaluate
the best model once more -> publish the model folder (rank 0 only).

A checkpoint that a resume could use is never deleted: starting afresh moves a run dir holding one aside to
`<run_dir>.previous` (or `.previous-2`, `-3`, ... when that already holds one), and removes a run dir without
one, which holds nothing to resume. (Earlier, a run refused after the move, followed by another try, deleted
the only checkpoint.)
"""
from __future__ import annotations

import logging
import re
import shutil
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
from training.publish import collect_metrics, publish

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing (trainer_state.json is written last), so that a
    process killed in the middle of a save resumes from the one before instead of failing."""
    if not run_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def evenly_spaced(split, limit):
    """At most `limit` rows spread over the whole split (every story is represented), for cheaper evals."""
    if not limit or len(split) <= int(limit):
        return split
    stride = -(-len(split) // int(limit))
    return split.select(range(0, len(split), stride))


def _checkpoint_to_resume(run_dir: Path, resume: bool, is_main: bool) -> Path | None:
    """resume=true: the last complete checkpoint. resume=false: start afresh, but keep an earlier run that holds a
    checkpoint (a forgotten resume=true must not cost days of training)."""
    checkpoint = last_complete_checkpoint(run_dir)
    if resume:
        if checkpoint is None:
            earlier = _earlier_runs(run_dir)
            log.warning("resume=true but %s holds no complete checkpoint: starting from step 0%s", run_dir,
                        f" (an earlier run is kept in {earlier[-1]}: pass run_dir={earlier[-1]} to continue it)"
                        if earlier else "")
        else:
            log.info("resuming from %s", checkpoint)
        return checkpoint
    if is_main and run_dir.exists() and any(run_dir.iterdir()):
        if checkpoint is None:  # nothing a resume could use (e.g. only init/ of a run stopped early)
            shutil.rmtree(run_dir)
            log.info("removed %s: it held no complete checkpoint", run_dir)
        else:
            previous = _free_previous(run_dir)
            run_dir.rename(previous)
            log.warning("moved the earlier run in %s to %s (use resume=true to continue a run instead)",
                        run_dir, previous)
    return None


def _earlier_runs(run_dir: Path) -> list[Path]:
    """`<run_dir>.previous`, `.previous-2`, ... that hold a complete checkpoint, oldest first."""
    def number(path: Path) -> int:
        suffix = path.name[len(run_dir.name) + len(".previous"):]
        return int(suffix[1:]) if suffix.startswith("-") and suffix[1:].isdigit() else 1

    found = [p for p in run_dir.parent.glob(run_dir.name + ".previous*") if last_complete_checkpoint(p)]
    return sorted(found, key=number)


def _free_previous(run_dir: Path) -> Path:
    """Where to move a run dir aside: `.previous`, unless that holds a checkpoint; then the next free number."""
    previous = run_dir.with_name(run_dir.name + ".previous")
    if previous.exists() and last_complete_checkpoint(previous) is None:
        shutil.rmtree(previous)  # an earlier aside without a checkpoint: nothing to keep
    number = 1
    while previous.exists():
        number += 1
        previous = run_dir.with_name(f"{run_dir.name}.previous-{number}")
    return previous


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
    from transformers import Trainer

    artifacts = artifacts_dir(cfg)
    t, model_cfg = cfg.train, cfg.model
    check_block_size(model_cfg, int(t.block_size))
    check_starting_model(model_cfg)  # a missing folder or hub model is named now, before the run dir moves
    settings = GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True))
    data = load_story_dataset(Path(str(cfg.dataset_dir)))
    run_dir, out_dir = Path(str(cfg.run_dir)).resolve(), Path(str(cfg.out_dir)).resolve()

    args = training_arguments(cfg, run_dir)  # under torchrun this joins the process group
    is_main = args.process_index == 0
    # Rank 0 first: it moves old runs aside, builds/downloads the model and tokenizes; the others then reuse.
    with args.main_process_first(local=False, desc="run dir, model and data"):
        checkpoint = _checkpoint_to_resume(run_dir, bool(cfg.resume), is_main)
        model, tokenizer = load_starting_point(model_cfg, run_dir, artifacts, data["train"], int(t.seed),
                                               int(t.block_size))
        splits = {name: prepare_split(data[name], tokenizer, loss_on=cfg.loss_on, block_size=int(t.block_size),
                                      history_turns=int(cfg.history_turns), name=name)
                  for name in ("train", "validation")}
    splits["validation"] = evenly_spaced(splits["validation"], t.max_eval_rows)
    # Checkpoints and the final folder carry the seed's decoding settings, so every stage generates alike.
    model.generation_config = settings.to_generation_config(tokenizer)
    quiet_expected_warnings(model)  # GPT-2's loss type and tied lm_head: expected, not worth a warning

    trainer = Trainer(model=model, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
                      data_collator=data_collator(tokenizer, cfg.loss_on), processing_class=tokenizer,
                      callbacks=[eval_log := EvalLogCallback(), rank_report := RankReportCallback()])
    log.info("training %s: %d %s rows for training, %d for validation, block_size %d, %d process(es)",
             model_cfg.name, len(splits["train"]), "packed" if cfg.loss_on == "all" else "sample",
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
        "loss_on": cfg.loss_on,
        "block_size": int(t.block_size),
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
    folder = publish(trainer, out_dir, metrics, resolved_config(cfg), data_info)
    return metrics if folder else None
