"""The finished model folder: weights + tokenizer + generation config, metrics, model card, resolved config.

Everything is written into `.<name>.staging` beside the destination and swapped in with a rename, so a
crash never leaves a half-written model where eval and serving would pick it up. Only rank 0 writes files;
every rank takes part in `trainer.save_model`, which FSDP/DeepSpeed need to gather sharded weights.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import yaml

from adventure.model_language import write_language_note

log = logging.getLogger(__name__)

METRICS_NAME = "training_metrics.json"
CARD_NAME = "MODEL_CARD.md"
CONFIG_NAME = "training_config.yaml"


def collect_metrics(state, history: list[dict], final_eval: dict, run_info: dict) -> dict:
    """training_metrics.json from the Trainer's log history (which a resumed run carries over)."""
    train_losses = [{"step": e["step"], "loss": e["loss"]} for e in history if "loss" in e]
    # A resumed run evaluates again at the step it resumed from: keep one point per step (the latest).
    by_step = {e["step"]: e["eval_loss"] for e in history if "eval_loss" in e}
    evals = [{"step": step, "eval_loss": loss} for step, loss in sorted(by_step.items())]
    eval_loss_end = final_eval["eval_loss"]
    return {
        "eval_loss_start": evals[0]["eval_loss"] if evals else None,
        "eval_loss_end": eval_loss_end,  # the saved (best) model, evaluated once more after training
        "eval_perplexity_end": math.exp(min(eval_loss_end, 50.0)),
        "best_eval_loss": state.best_metric,
        "best_step": state.best_global_step,
        "train_loss_history": train_losses,
        "eval_loss_history": evals,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "tokens_seen": state.num_input_tokens_seen,
        **run_info,
    }


def _rows(items) -> str:
    """A two-column Markdown table."""
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in items)


def model_card(cfg: dict, metrics: dict, data_info: dict) -> str:
    model, train = cfg["model"], cfg["train"]
    origin = {"scratch": "trained from scratch (tokenizer trained on the train split)",
              "hub": f"fine-tuned from `{model.get('path') or model.get('hub_id')}`",
              "local": f"fine-tuned from `{model.get('path')}`"}[model["source"]]
    start, end = metrics["eval_loss_start"], metrics["eval_loss_end"]
    settings = {**train, "loss_on": cfg["loss_on"], "history_turns": cfg["history_turns"],
                "trainer_args": cfg["trainer_args"] or "{}"}
    return f"""# {model['name']} (gamio)

A GPT-2-family causal language model for {model['language']}-language text adventures in the `> action` format,
{origin} by `python -m training`.

## Data
{_rows([("dataset", f"`{cfg['dataset_dir']}`"), *data_info.items()])}

## Settings
{_rows((k, f"`{v}`") for k, v in settings.items())}

## Metrics
{_rows([
        ("validation loss at start", f"{start:.4f}" if start is not None else "-"),
        ("validation loss at end (saved model)", f"{end:.4f}"),
        ("validation perplexity at end", f"{metrics['eval_perplexity_end']:.2f}"),
        ("best step", metrics["best_step"]),
        ("optimizer steps", f"{metrics['global_step']} / {metrics['max_steps']}"),
        ("tokens seen", f"{metrics['tokens_seen']:,}"),
        ("training tokens/s (this run)", f"{metrics['tokens_per_second']:,.0f}"),
        ("processes (DDP world size)", metrics["world_size"]),
        ("resumed from step", metrics["resumed_from_step"]),
    ])}

Full curves: `{METRICS_NAME}`; every setting: `{CONFIG_NAME}`.

## Use
```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("<this folder>")
model = AutoModelForCausalLM.from_pretrained("<this folder>")
# generation_config.json holds the `{cfg['generation']}` settings: model.generate(**inputs) uses them.
```
Build prompts with `adventure.budget.build_prompt` (world, the last turns, `> action`), as training did.
"""


def publish(trainer, out_dir: Path, metrics: dict, cfg: dict, data_info: dict) -> Path | None:
    """Swap the finished folder into `out_dir`; returns it on rank 0 (None elsewhere)."""
    out_dir = Path(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.staging"
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))  # weights, config, generation_config.json, tokenizer (rank 0 writes)
    if not main:
        trainer.accelerator.wait_for_everyone()
        return None
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; training_config.yaml says it all
    (staging / METRICS_NAME).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (staging / CARD_NAME).write_text(model_card(cfg, metrics, data_info), "utf-8")
    write_language_note(staging, cfg["model"]["language"], trained_by="gamio training")
    (staging / CONFIG_NAME).write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), "utf-8")
    old = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    log.info("wrote %s (eval loss %.4f -> %.4f)", out_dir, metrics["eval_loss_start"] or float("nan"),
             metrics["eval_loss_end"])
    trainer.accelerator.wait_for_everyone()
    return out_dir
