"""The training config: every key, its default and its meaning (configs/training.yaml lists only the groups).

`model=` picks a recipe from training's own group `configs/training/model/` (tiny, tiny_wide, rugpt3small,
rugpt3medium, rugpt3large, gamegpt_xl); the `train.*` defaults come from the recipe, so
`python -m training model=rugpt3small` trains with ruGPT3-small's learning rate and batch size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from adventure.config import PathsConfig, setting
from adventure.generation import GenerationSettings


def _steps(value: int) -> str | None:
    return None if value == -1 or value >= 1 else "must be >= 1 (or -1: train `epochs` epochs instead)"


@dataclass
class ShapeConfig:
    """A GPT-2 built from scratch (source: scratch)."""
    n_layer: int = setting(ge=1)
    n_embd: int = setting(ge=1)
    n_head: int = setting(ge=1)
    n_positions: int = setting(ge=2)
    vocab_size: int = setting(ge=2, help="BPE vocabulary trained on the train split")


@dataclass
class RecipeConfig:
    """The model's tested training defaults; `train.*` reads them unless overridden."""
    max_steps: int = setting(check=_steps)
    learning_rate: float = setting(gt=0)
    warmup_steps: float = setting(ge=0)
    batch_size: int = setting(ge=1)
    gradient_accumulation_steps: int = setting(ge=1)
    block_size: int = setting(ge=2)
    eval_steps: int = setting(ge=1)
    max_eval_rows: Optional[int] = setting(None, ge=1)
    logging_steps: int = setting(ge=1)


@dataclass
class ModelConfig:
    name: str = setting(help="folder name under <artifacts>/models/ and runs/")
    source: str = setting(choices=("scratch", "hub", "local"))
    hub_id: Optional[str] = setting(None, help="source: hub, e.g. sberbank-ai/rugpt3small_based_on_gpt2")
    path: Optional[str] = setting(None, help="a local Hugging Face folder; overrides hub_id")
    missing_hint: Optional[str] = setting(None, help="what to do when `path` holds no model")
    context_length: int = setting(ge=2)
    language: str = setting(choices=("ru", "en"))
    shape: Optional[ShapeConfig] = None
    recipe: RecipeConfig = MISSING


@dataclass
class TrainConfig:
    max_steps: int = setting("${model.recipe.max_steps}", check=_steps,
                             help="optimizer steps; -1 trains `epochs` epochs instead")
    epochs: float = setting(1.0, gt=0)
    learning_rate: float = setting("${model.recipe.learning_rate}", gt=0)
    lr_scheduler_type: str = setting("cosine", help="any transformers SchedulerType: linear, cosine, ...")
    warmup_steps: float = setting("${model.recipe.warmup_steps}", ge=0,
                                  help="steps, or a share of all steps when < 1")
    weight_decay: float = setting(0.01, ge=0)
    batch_size: int = setting("${model.recipe.batch_size}", ge=1, help="per device")
    eval_batch_size: int = setting("${train.batch_size}", ge=1)
    max_eval_rows: Optional[int] = setting("${model.recipe.max_eval_rows}", ge=1,
                                           help="validation rows per eval, spread evenly; null: all")
    gradient_accumulation_steps: int = setting("${model.recipe.gradient_accumulation_steps}", ge=1)
    block_size: int = setting("${model.recipe.block_size}", ge=2, help="tokens per training row (<= the context)")
    eval_steps: int = setting("${model.recipe.eval_steps}", ge=1, help="validation loss at step 0 and every N")
    save_steps: int = setting("${train.eval_steps}", ge=1, help="a multiple of eval_steps (the best is kept)")
    logging_steps: int = setting("${model.recipe.logging_steps}", ge=1)
    save_total_limit: int = setting(2, ge=1, help="newest checkpoints kept in run_dir, plus the best one")
    seed: int = setting(42)
    precision: str = setting("fp32", choices=("fp32", "fp16", "bf16"),
                             help="fp16 needs CUDA; bf16 runs on CUDA with bf16 or on CPUs")
    gradient_checkpointing: bool = setting(False, help="trade compute for memory (rugpt3large, gamegpt_xl)")
    dataloader_num_workers: int = setting(0, ge=0)


METHODS = ("full", "lora", "qlora", "dpo")
TRACKERS = ("tensorboard", "mlflow", "wandb", "none")


@dataclass
class LoraSettings:
    """method=lora|qlora (and dpo with dpo.lora=true): low-rank adapters on these modules (peft)."""
    r: int = setting(8, ge=1, help="rank of each adapter")
    alpha: float = setting(16.0, gt=0, help="scale: the update is alpha/r * B@A")
    dropout: float = setting(0.05, ge=0, le=1)
    target_modules: List[str] = setting(["c_attn", "c_proj", "c_fc"], help="GPT-2's attention and MLP layers")


@dataclass
class DpoSettings:
    """method=dpo: preference training (TRL's DPOTrainer) of the SFT model `model.path` on `preferences`."""
    beta: float = setting(0.1, gt=0, help="how far from the SFT (reference) model the policy may move")
    loss_type: str = setting("sigmoid", help="any TRL DPO loss: sigmoid (the DPO paper), ipo, hinge, robust, ...")
    learning_rate: Optional[float] = setting(None, gt=0, help="null: a tenth of train.learning_rate (the SFT rate)")
    epochs: float = setting(3.0, gt=0, help="passes over the training votes (unless dpo.max_steps is set)")
    max_steps: int = setting(-1, check=_steps, help="optimizer steps; -1: `dpo.epochs` epochs")
    eval_steps: Optional[int] = setting(None, ge=1, help="held-out evaluation every N steps; null: 4 per run")
    batch_size: int = setting(4, ge=1, help="preference pairs per device and step")
    heldout_share: float = setting(0.2, gt=0, le=0.9, help="share of the games whose votes are held out")
    min_votes: int = setting(10, ge=2, help="fewer usable votes are refused")
    max_length: Optional[int] = setting(None, ge=8, help="prompt+reply tokens (the prompt is cut from the left); "
                                                         "null: the model's context")
    model_name: Optional[str] = setting(None, help="the name the arena knew the SFT model by; null: the folder's")
    foreign_votes: str = setting("error", choices=("error", "skip"),
                                 help="votes that do not involve the SFT model: error, or skip them")


@dataclass
class TrainingConfig:
    paths: PathsConfig = MISSING
    model: ModelConfig = MISSING
    generation: GenerationSettings = MISSING  # -> the model folder's generation_config.json
    dataset_dir: str = setting("${paths.artifacts}/data/dataset", help="written by `python -m scraping`")
    run_dir: str = setting("${paths.artifacts}/runs/${model.name}", help="checkpoints (resume=true finds them)")
    out_dir: str = setting("${paths.artifacts}/models/${model.name}", help="the finished model folder")
    resume: bool = setting(False, help="continue from the last complete checkpoint in run_dir")
    loss_on: str = setting("all", choices=("all", "result"),
                           help="all: pack prompt+result+EOS into blocks (run_clm); result: loss on the result only")
    history_turns: int = setting(10, ge=0, help="loss_on=result: turns the prompt budget keeps")
    method: str = setting("full", choices=METHODS, help="full fine-tuning | lora | qlora (4-bit base, CUDA) | dpo")
    lora: LoraSettings = field(default_factory=LoraSettings)
    dpo: DpoSettings = field(default_factory=DpoSettings)
    preferences: Optional[str] = setting(None, help="method=dpo: the serving database (SQLite) holding the arena's "
                                                    "votes, or a saved preference dataset (eval's preferences/)")
    tracking: str = setting("tensorboard", choices=TRACKERS,
                            help="the Trainer's report_to; logs go to <run_dir>/<tracker> (offline)")
    train: TrainConfig = field(default_factory=TrainConfig)
    trainer_args: Dict[str, Any] = setting({}, help="passed to transformers.TrainingArguments as is (FSDP, ...)")
