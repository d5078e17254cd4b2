"""method=dpo: train the SFT model `model.path` on the arena's votes (`preferences=`) with TRL's DPOTrainer.

    python -m training method=dpo preferences=<artifacts>/serving/gamio.sqlite model.path=<artifacts>/models/tiny
    -> <artifacts>/models/tiny-dpo   (checkpoints in runs/tiny-dpo; out_dir= / run_dir= choose others)

The reference model is the SFT model itself (a frozen copy). Votes are checked and split by game
(training/preferences.py); the held-out games are measured before training (the SFT model) and after (the DPO
model): TRL's reward accuracy and margin (beta * log-ratio to the reference: 0 at step 0 by definition), and the
plain log-likelihood margin log p(chosen) - log p(rejected) of each held-out pair, with its 95% interval. The
result is an ordinary model folder: eval compares it, serving serves it, and the arena can pit it against its
SFT parent. Its card records the lineage (base -> SFT -> DPO, with the number of votes).
"""
from __future__ import annotations

import json
import logging
import math
import statistics
import time
from pathlib import Path

import yaml

from adventure.cli import resolved_config
from adventure.errors import GamioError
from adventure.model_card import eval_results, rows, usage, write_model_card
from adventure.models import context_length
from training.arguments import training_arguments
from training.callbacks import EvalLogCallback
from training.preferences import read_pairs, split_by_game, usable_pairs
from training.publish import CONFIG_NAME, METRICS_NAME, collect_metrics, publish
from training.run_dir import _checkpoint_to_resume, output_dirs
from training.sweep import current_job

log = logging.getLogger(__name__)

Z95 = 1.959963984540054


def check_dpo_inputs(cfg) -> Path:
    """The SFT folder, once model.path and preferences are known to be there."""
    if not cfg.model.path:
        raise GamioError("method=dpo needs model.path=<the SFT model folder> (e.g. <artifacts>/models/tiny): the "
                         "model the votes are about, and the reference DPO keeps it close to")
    sft = Path(str(cfg.model.path)).expanduser().resolve()
    if not (sft / "config.json").is_file():
        raise GamioError(f"model.path={cfg.model.path}: not a Hugging Face model folder (no config.json)")
    if not cfg.preferences:
        raise GamioError("method=dpo needs preferences=<the serving database with the arena's votes, or a saved "
                         "preference dataset>")
    return sft


def lineage(sft: Path, out_name: str, votes: int) -> list[dict]:
    """base -> SFT (-> earlier DPO rounds) -> this DPO run, from the SFT folder's own provenance files."""
    metrics = sft / METRICS_NAME
    earlier = json.loads(metrics.read_text("utf-8")).get("lineage") if metrics.is_file() else None
    if not earlier:
        config = sft / CONFIG_NAME
        trained = yaml.safe_load(config.read_text("utf-8")) if config.is_file() else {}
        model = trained.get("model") or {}
        base = (model.get("hub_id") if model.get("source") == "hub" else None) or (
            f"{model.get('name')} built from scratch" if model.get("source") == "scratch" else model.get("path"))
        earlier = [{"stage": "base", "model": base or "unknown (the SFT folder has no training_config.yaml)"},
                   {"stage": "sft", "model": sft.name, "method": trained.get("method", "full") if trained else None}]
    return [*earlier, {"stage": "dpo", "model": out_name, "from": sft.name, "votes": votes}]


def logp_margins(model, tokenizer, pairs: list[dict], max_length: int) -> dict:
    """log p(chosen | prompt) - log p(rejected | prompt) per pair (summed over the reply's tokens; the prompt cut
    from the left to fit): mean, 95% interval, share of pairs the model already prefers the chosen reply in."""
    import torch

    def reply_logp(prompt: str, reply: str) -> float:
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"][:max_length - 1]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(max_length - len(reply_ids)):]
        ids = torch.tensor([prompt_ids + reply_ids], device=model.device)
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
        return float(torch.log_softmax(logits, -1).gather(1, ids[0, len(prompt_ids):, None]).sum())

    model.eval()
    margins = [reply_logp(p["prompt"], p["chosen"]) - reply_logp(p["prompt"], p["rejected"]) for p in pairs]
    mean = statistics.fmean(margins)
    half = Z95 * statistics.stdev(margins) / math.sqrt(len(margins)) if len(margins) > 1 else float("nan")
    return {"mean": mean, "ci95": [mean - half, mean + half], "accuracy": sum(m > 0 for m in margins) / len(margins),
            "n": len(margins)}


def _dataset(pairs: list[dict]):
    from datasets import Dataset

    return Dataset.from_dict({k: [p[k] for p in pairs] for k in ("prompt", "chosen", "rejected")})


def _steps(n_train: int, cfg, world_size: int) -> tuple[int, int]:
    """(max_steps, eval_steps) for this many training pairs."""
    d = cfg.dpo
    per_epoch = math.ceil(n_train / (int(d.batch_size) * int(cfg.train.gradient_accumulation_steps) * world_size))
    steps = int(d.max_steps) if int(d.max_steps) > 0 else max(1, math.ceil(per_epoch * float(d.epochs)))
    return steps, int(d.eval_steps) if d.eval_steps else max(1, steps // 4)


def train_dpo(cfg) -> dict | None:
    """DPO per `cfg`; returns training_metrics.json's content on rank 0 (None on other ranks)."""
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    sft = check_dpo_inputs(cfg)
    source = Path(str(cfg.preferences)).expanduser()
    name = str(cfg.dpo.model_name or sft.name)
    pairs = usable_pairs(read_pairs(source), name, foreign=str(cfg.dpo.foreign_votes),
                         min_votes=int(cfg.dpo.min_votes), source=source)
    train_pairs, heldout = split_by_game(pairs, float(cfg.dpo.heldout_share), int(cfg.train.seed), source)
    run_dir, out_dir = output_dirs(cfg, current_job())
    tokenizer = AutoTokenizer.from_pretrained(sft)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(sft)
    reference = AutoModelForCausalLM.from_pretrained(sft)  # the SFT model, frozen: DPO's anchor
    max_length = min(int(cfg.dpo.max_length or 10**9), context_length(model))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    max_steps, eval_steps = _steps(len(train_pairs), cfg, world)
    learning_rate = float(cfg.dpo.learning_rate or float(cfg.train.learning_rate) / 10)
    args = training_arguments(
        cfg, run_dir, DPOConfig, beta=float(cfg.dpo.beta), loss_type=[str(cfg.dpo.loss_type)],
        max_length=max_length, truncation_mode="keep_end",  # the prompt's oldest turns go, never the replies
        learning_rate=learning_rate, max_steps=max_steps, eval_steps=eval_steps, save_steps=eval_steps,
        logging_steps=min(int(cfg.train.logging_steps), eval_steps), per_device_train_batch_size=int(cfg.dpo.batch_size),
        per_device_eval_batch_size=int(cfg.dpo.batch_size), include_num_input_tokens_seen="no")
    with args.main_process_first(local=False, desc="run dir"):
        checkpoint = _checkpoint_to_resume(run_dir, bool(cfg.resume), args.process_index == 0)
    start = logp_margins(model, tokenizer, heldout, max_length)
    log.info("held-out log-likelihood margin of the SFT model: %.3f (95%% CI %.3f..%.3f), prefers chosen in %.0f%%",
             start["mean"], *start["ci95"], 100 * start["accuracy"])

    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=_dataset(train_pairs),
                         eval_dataset=_dataset(heldout), processing_class=tokenizer,
                         callbacks=[eval_log := EvalLogCallback()])
    log.info("DPO of %s on %d votes (%d held out), beta %g, %s loss, %d steps at lr %g", sft.name,
             len(train_pairs), len(heldout), cfg.dpo.beta, cfg.dpo.loss_type, max_steps, learning_rate)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    history = list(trainer.state.log_history)
    final = trainer.evaluate()
    end = logp_margins(trainer.model, tokenizer, heldout, max_length)
    log.info("held-out log-likelihood margin after DPO: %.3f (95%% CI %.3f..%.3f), prefers chosen in %.0f%%",
             end["mean"], *end["ci95"], 100 * end["accuracy"])
    step0 = next((e for e in history if "eval_rewards/margins" in e and e["step"] == 0), {})
    metrics = collect_metrics(trainer.state, history, final, {
        "model": out_dir.name, "method": "dpo", "sft_model": sft.name, "lineage": lineage(sft, out_dir.name, len(pairs)),
        "beta": float(cfg.dpo.beta), "loss_type": str(cfg.dpo.loss_type), "learning_rate": learning_rate,
        "votes_used": len(pairs), "votes_train": len(train_pairs), "votes_heldout": len(heldout),
        "games_train": len({p["game"] for p in train_pairs}), "games_heldout": len({p["game"] for p in heldout}),
        "heldout_reward_accuracy_start": step0.get("eval_rewards/accuracies"),
        "heldout_reward_margin_start": step0.get("eval_rewards/margins"),
        "heldout_reward_accuracy_end": final.get("eval_rewards/accuracies"),
        "heldout_reward_margin_end": final.get("eval_rewards/margins"),
        "heldout_logp_margin_start": start["mean"], "heldout_logp_margin_end": end["mean"],
        "heldout_logp_margin_ci95_start": start["ci95"], "heldout_logp_margin_ci95_end": end["ci95"],
        "heldout_prefers_chosen_start": start["accuracy"], "heldout_prefers_chosen_end": end["accuracy"],
        "dpo_eval_history": [{k: e[k] for k in e if k == "step" or k.startswith("eval_rewards/")}
                             for e in history if "eval_rewards/margins" in e],
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
        "world_size": args.world_size, "resumed_from_step": int(checkpoint.name.split("-")[1]) if checkpoint else 0,
        "train_runtime_s": output.metrics["train_runtime"], "eval_runtime_s": eval_log.eval_seconds,
        "wall_time_s": time.perf_counter() - started,
    })
    config = resolved_config(cfg)
    folder = publish(trainer, out_dir, metrics, config, {},
                     card=lambda staging: dpo_card(staging, config, metrics, out_dir.name))
    return metrics if folder else None


def dpo_card(folder: Path, cfg: dict, metrics: dict, out_name: str) -> None:
    steps = " -> ".join(f"{s['stage']}: `{s['model']}`" +
                        (f" ({s['votes']} votes)" if "votes" in s else "") for s in metrics["lineage"])

    def interval(key: str) -> str:
        low, high = metrics[f"heldout_logp_margin_ci95_{key}"]
        return f"{metrics[f'heldout_logp_margin_{key}']:.3f} (95% CI {low:.3f} .. {high:.3f})"

    def share(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    body = f"""# {out_name} (gamio)

`{metrics['sft_model']}` trained on players' blind arena votes by direct preference optimisation (TRL's DPOTrainer,
`python -m training method=dpo`); the reference model is `{metrics['sft_model']}` itself.

## Lineage
{steps}

## Preference data
{rows([("votes used", metrics["votes_used"]),
       ("training votes / games", f"{metrics['votes_train']} / {metrics['games_train']}"),
       ("held-out votes / games (split by game)", f"{metrics['votes_heldout']} / {metrics['games_heldout']}")])}

## Settings
{rows([("beta", metrics["beta"]), ("loss", f"`{metrics['loss_type']}`"), ("learning rate", f"{metrics['learning_rate']:g}"),
       ("optimizer steps", f"{metrics['global_step']} / {metrics['max_steps']}")])}

## Held-out votes: before (SFT) and after (DPO)
{rows([("log p(chosen) - log p(rejected), mean", f"{interval('start')} -> {interval('end')}"),
       ("pairs where the model prefers the chosen reply",
        f"{share(metrics['heldout_prefers_chosen_start'])} -> {share(metrics['heldout_prefers_chosen_end'])}"),
       ("DPO reward accuracy", f"{share(metrics['heldout_reward_accuracy_start'])} -> "
                               f"{share(metrics['heldout_reward_accuracy_end'])}"),
       ("DPO reward margin", f"{share(metrics['heldout_reward_margin_start'])} -> "
                             f"{share(metrics['heldout_reward_margin_end'])}")])}

The reward (beta times the log-ratio to the reference) is 0 for every pair at step 0, so its accuracy starts at 0.
Curves: `{METRICS_NAME}`; every setting: `{CONFIG_NAME}`.

{usage(out_name)}
"""
    results = eval_results(("preferences", "gamio-arena-votes", "held-out"), [
        ("log_likelihood_margin", "held-out chosen-rejected margin (SFT)", metrics["heldout_logp_margin_start"]),
        ("log_likelihood_margin", "held-out chosen-rejected margin", metrics["heldout_logp_margin_end"]),
        ("accuracy", "held-out DPO reward accuracy", metrics["heldout_reward_accuracy_end"])])
    write_model_card(folder, body, name=out_name, language=cfg["model"]["language"], datasets=["gamio-arena-votes"],
                     results=results)
