"""`python -m training [model=tiny|tiny_wide|rugpt3small|rugpt3medium|rugpt3large|gamegpt_xl] [resume=true] ...`

Multirun: `python -m training -m model=rugpt3small,rugpt3medium,rugpt3large`;
DDP: `torchrun --nproc_per_node=N -m training ...`. See training/config.py for every setting.
"""
from adventure.cli import stage_main
from training.config import TrainingConfig
from training.train import run

main = stage_main("training", TrainingConfig, run)

if __name__ == "__main__":
    main()
