"""`python -m training [model=tiny|tiny_wide|rugpt3small|rugpt3medium|rugpt3large|gamegpt_xl] [resume=true] ...`

Multirun: `python -m training -m model=rugpt3small,rugpt3medium,rugpt3large`;
DDP: `torchrun --nproc_per_node=N -m training ...`. See configs/training.yaml for every setting.
"""
import hydra

from adventure.cli import run_stage
from adventure.paths import CONFIGS_DIR
from training.train import train


@hydra.main(version_base="1.3", config_path=str(CONFIGS_DIR), config_name="training")
def main(cfg) -> None:
    run_stage(train, cfg)


if __name__ == "__main__":
    main()
