"""`python -m training [model=tiny|tiny_wide|rugpt3small|rugpt3medium|rugpt3large|gamegpt_xl] [resume=true] ...`

Multirun: `python -m training -m model=rugpt3small,rugpt3medium,rugpt3large` (or any setting: one folder per job,
sweep.json/md; `+hparams_search=optuna`); method=full|lora|qlora|dpo; tracking=tensorboard|mlflow|wandb|none;
DDP: `torchrun --nproc_per_node=N -m training ...` (distributed=fsdp|deepspeed_zero2|deepspeed_zero3 to shard).
See training/config.py for every setting.
"""
from adventure.cli import stage_main
from training.config import TrainingConfig
from training.train import run

main = stage_main("training", TrainingConfig, run)

if __name__ == "__main__":
    main()
