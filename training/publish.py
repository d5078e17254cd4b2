"""The finished model folder: weights + tokenizer + generation config, metrics, model card, resolved config.

The folder is built in a staging folder beside the destination and swapped in by adventure.publish, so a crash
never leaves a half-written model where eval and serving would pick it up. Only rank 0 writes files; every rank
takes part in `trainer.save_model` (into rank 0's staging folder), which FSDP/DeepSpeed need to gather sharded
weights.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import yaml

from adventure.model_card import eval_results, rows, usage, write_model_card
from adventure.model_language import write_language_note
from adventure.publish import publish_folder

log = logging.getLogger(__name__)

METRICS_NAME = "training_metrics.json"
CONFIG_NAME = "training_config.yaml"


def _perplexity(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 50.0))


def collect_metrics(state, history: list[dict], final_eval: dict, run_info: dict) -> dict:
    """training_metrics.json from the Trainer's log history (which a resumed run carries over)."""
    train_losses = [{"step": e["step"], "loss": e["loss"]} for e in history if "loss" in e]
    # A resumed run evaluates again at the step it resumed from: keep one point per step (the latest).
    by_step = {e["step"]: e["eval_loss"] for e in history if "eval_loss" in e}
    evals = [{"step": step, "eval_loss": loss} for step, loss in sorted(by_step.items())]
    eval_loss_start = evals[0]["eval_loss"] if evals else None
    eval_loss_end = final_eval["eval_loss"]
    return {
        "eval_loss_start": eval_loss_start,
        "eval_loss_end": eval_loss_end,  # the saved (best) model, evaluated once more after training
        "eval_perplexity_start": _perplexity(eval_loss_start),
        "eval_perplexity_end": _perplexity(eval_loss_end),
        "best_eval_loss": state.best_metric,
        "best_step": state.best_global_step,
        "train_loss_history": train_losses,
        "eval_loss_history": evals,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "tokens_seen": state.num_input_tokens_seen,
        **run_info,
    }


def training_data(dataset_dir: Path) -> tuple[str, str]:
    """(name for the card's `datasets` field, what it is). The data is a local folder, not a Hub dataset: it is
    named after the scraping source that stats.json beside it records, else after the folder itself."""
    stats = dataset_dir.parent / "stats.json"
    source = json.loads(stats.read_text("utf-8")).get("source") if stats.is_file() else None
    where = f"in the local folder `{dataset_dir.parent.name}/{dataset_dir.name}` (not a Hub dataset)"
    if source:
        return f"gamio-scraping-{source}", f"stories of the `{source}` scraping source, split by story, {where}"
    return f"gamio-local-{dataset_dir.name}", f"a story dataset {where}"


def parameters_row(metrics: dict) -> str:
    trainable, total = metrics.get("trainable_params"), metrics.get("total_params")
    if not trainable or not total:
        return "-"
    return f"{trainable:,} / {total:,} ({100 * trainable / total:.2f}%)"


def model_card(folder: Path, cfg: dict, metrics: dict, data_info: dict, out_name: str) -> None:
    """README.md and MODEL_CARD.md for the folder that will be published as `out_name`."""
    model, train = cfg["model"], cfg["train"]
    local = Path(str(model.get("path"))).name
    base_model = model.get("hub_id") if model["source"] == "hub" and not model.get("path") else None
    origin = {"scratch": "trained from scratch (tokenizer trained on the train split)",
              "hub": f"fine-tuned from `{base_model}`" if base_model
              else f"fine-tuned from a local folder `{local}` (a copy of `{model.get('hub_id')}`)",
              "local": f"fine-tuned from a local folder `{local}`"}[model["source"]]
    dataset, what = training_data(Path(str(cfg["dataset_dir"])))
    start, end = metrics["eval_loss_start"], metrics["eval_loss_end"]
    settings = {"method": cfg.get("method", "full"), **train, "loss_on": cfg["loss_on"],
                "history_turns": cfg["history_turns"], "trainer_args": cfg["trainer_args"] or "{}"}
    if settings["method"] in ("lora", "qlora"):
        settings["lora"] = cfg["lora"]
    note = (f"generation_config.json holds the `{cfg['generation']['name']}` settings: `model.generate(**inputs)` "
            "uses them. "
            "Build prompts with `adventure.budget.build_prompt` (world, the last turns, `> action`), as training did.")
    body = f"""# {model['name']} (gamio)

A GPT-2-family causal language model for {model['language']}-language text adventures in the `> action` format,
{origin} by `python -m training`.

## Data
{rows([("dataset", f"`{dataset}`: {what}"), *data_info.items()])}

## Settings
{rows((k, f"`{v}`") for k, v in settings.items())}

## Metrics
{rows([
        ("validation loss at start", f"{start:.4f}" if start is not None else "-"),
        ("validation loss at end (saved model)", f"{end:.4f}"),
        ("validation perplexity at start", f"{metrics['eval_perplexity_start']:.2f}" if start is not None else "-"),
        ("validation perplexity at end", f"{metrics['eval_perplexity_end']:.2f}"),
        ("best step", metrics["best_step"]),
        ("parameters trained / total", parameters_row(metrics)),
        ("optimizer steps", f"{metrics['global_step']} / {metrics['max_steps']}"),
        ("tokens seen", f"{metrics['tokens_seen']:,}"),
        ("training tokens/s (this run)", f"{metrics['tokens_per_second']:,.0f}"),
        ("processes (DDP world size)", metrics["world_size"]),
        ("resumed from step", metrics["resumed_from_step"]),
    ])}

Full curves: `{METRICS_NAME}`; every setting: `{CONFIG_NAME}`.

{usage(out_name, note)}
"""
    results = eval_results((dataset, dataset, "validation"), [
        ("loss", "validation loss at start", start), ("loss", "validation loss at end", end),
        ("perplexity", "validation perplexity at start", metrics["eval_perplexity_start"]),
        ("perplexity", "validation perplexity at end", metrics["eval_perplexity_end"])])
    write_model_card(folder, body, name=model["name"], language=model["language"], base_model=base_model,
                     datasets=[dataset], results=results)


def carry_sweep_jobs(out_dir: Path, staging: Path) -> None:
    """Sweep jobs publish into `<out_dir>/<overrides>/`: a plain run replacing `out_dir` keeps them (hard links,
    so until the swap the old folder still holds them whole, and nothing is copied)."""
    if not out_dir.is_dir():
        return
    for job in out_dir.iterdir():
        if job.is_dir() and "=" in job.name and not job.name.startswith(".") and not (staging / job.name).exists():
            shutil.copytree(job, staging / job.name, copy_function=_link_or_copy, symlinks=True)


def _link_or_copy(source: str, dest: str) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def publish(trainer, out_dir: Path, metrics: dict, cfg: dict, data_info: dict, *,
            save_weights: Callable[[Path, bool], None] | None = None,
            card: Callable[[Path], None] | None = None) -> Path | None:
    """Swap the finished folder into `out_dir`; returns it on rank 0 (None elsewhere).

    `save_weights(staging, is_main)` (every rank) replaces the Trainer's own save (LoRA: adapter + merged model);
    `card(staging)` (rank 0) replaces the fine-tuning model card (DPO writes its own)."""
    from accelerate.utils import broadcast_object_list

    out_dir = Path(out_dir)
    main = trainer.is_world_process_zero()
    with publish_folder(out_dir) if main else nullcontext() as staging:
        staging = Path(broadcast_object_list([staging])[0])  # rank 0's folder: every rank saves into it
        if save_weights:
            save_weights(staging, main)
        else:
            trainer.save_model(str(staging))  # weights, config, generation_config.json, tokenizer (rank 0 writes)
        if main:
            (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; training_config.yaml says it all
            (staging / METRICS_NAME).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", "utf-8")
            if card:
                card(staging)
            else:
                model_card(staging, cfg, metrics, data_info, out_dir.name)
            write_language_note(staging, cfg["model"]["language"], trained_by="gamio training")
            (staging / CONFIG_NAME).write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), "utf-8")
            carry_sweep_jobs(out_dir, staging)
    trainer.accelerator.wait_for_everyone()
    if not main:
        return None
    log.info("wrote %s (eval loss %.4f -> %.4f)", out_dir, metrics["eval_loss_start"] or float("nan"),
             metrics["eval_loss_end"])
    return out_dir
