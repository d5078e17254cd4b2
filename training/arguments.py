"""The stage's `train:` settings as transformers TrainingArguments (plus `trainer_args` passed through as is)."""
from __future__ import annotations

import os
from pathlib import Path

from adventure.errors import GamioError
from training.tracking import report_to

def precision_flags(precision: str) -> dict:
    """Trainer flags for `precision`, refused up front where this machine cannot run it."""
    import torch

    cuda = torch.cuda.is_available()
    if precision == "fp16":
        if not cuda:
            raise GamioError("train.precision=fp16 needs a CUDA GPU and this machine has none: "
                             "use train.precision=fp32 (or bf16, which PyTorch also runs on CPUs)")
        return {"fp16": True}
    if precision == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise GamioError(f"train.precision=bf16: this GPU ({torch.cuda.get_device_name()}) has no bf16 "
                             "(Ampere or newer has it): use train.precision=fp16 or fp32")
        return {"bf16": True}
    return {}


def checkpointing_flag(arguments_class) -> str:
    """The TrainingArguments field that turns on gradient (activation) checkpointing: transformers renamed
    `gradient_checkpointing` to `activation_checkpointing` within 5.x (5.19 has only the old name, 5.25 both, the old
    one deprecated), and pyproject.toml allows the whole range."""
    import dataclasses

    names = {field.name for field in dataclasses.fields(arguments_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def training_arguments(cfg, run_dir: Path, args_class=None, **method_values):
    """TrainingArguments (or `args_class`, e.g. TRL's DPOConfig, with `method_values`) for this run. Creating them
    sets up torch.distributed under torchrun."""
    import torch
    from omegaconf import OmegaConf
    from transformers import TrainingArguments

    t = cfg.train
    on_cpu = not torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # set by torchrun
    values = dict(
        output_dir=str(run_dir),
        max_steps=int(t.max_steps),
        num_train_epochs=float(t.epochs),
        learning_rate=float(t.learning_rate),
        lr_scheduler_type=str(t.lr_scheduler_type),
        warmup_steps=t.warmup_steps,
        weight_decay=float(t.weight_decay),
        per_device_train_batch_size=int(t.batch_size),
        per_device_eval_batch_size=int(t.eval_batch_size),
        gradient_accumulation_steps=int(t.gradient_accumulation_steps),
        eval_strategy="steps",
        eval_steps=int(t.eval_steps),
        eval_on_start=True,  # the untrained (or pretrained) model's validation loss: the baseline to beat
        save_strategy="steps",
        save_steps=int(t.save_steps),
        save_total_limit=int(t.save_total_limit),
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=int(t.logging_steps),
        seed=int(t.seed),
        **{checkpointing_flag(args_class or TrainingArguments): bool(t.gradient_checkpointing)},
        dataloader_num_workers=int(t.dataloader_num_workers),
        include_num_input_tokens_seen="non_padding",
        report_to=report_to(str(cfg.tracking), run_dir),
        disable_tqdm=False,
        use_cpu=on_cpu,
        ddp_backend="gloo" if on_cpu and distributed else None,  # NCCL only exists on GPUs
        **precision_flags(str(t.precision)),
    )
    values.update(method_values)
    values.update(OmegaConf.to_container(cfg.trainer_args, resolve=True) or {})
    try:
        return (args_class or TrainingArguments)(**values)
    except (TypeError, ValueError) as exc:
        raise GamioError(f"invalid trainer settings (train.* / trainer_args.*): {exc}") from None
