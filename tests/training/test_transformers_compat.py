"""Training on every transformers that pyproject.toml allows (`make test-lowest` runs these on its lower bound,
`make test` on the newest): TrainingArguments renamed gradient_checkpointing within 5.x."""
from __future__ import annotations

import dataclasses

from tests.helpers.training import QUICK, compose_training

from training.arguments import checkpointing_flag, training_arguments


@dataclasses.dataclass
class OldArguments:  # transformers <= 5.19: the old name only
    gradient_checkpointing: bool = False


@dataclasses.dataclass
class NewArguments:  # later 5.x: the new name, the old one a deprecated alias
    activation_checkpointing: bool | None = None
    gradient_checkpointing: bool | None = None


def test_checkpointing_is_asked_for_by_the_name_this_transformers_knows():
    assert checkpointing_flag(OldArguments) == "gradient_checkpointing"
    assert checkpointing_flag(NewArguments) == "activation_checkpointing"


def test_gradient_checkpointing_reaches_the_installed_trainer_arguments(tmp_path):
    cfg = compose_training(tmp_path, *QUICK, "train.gradient_checkpointing=true")
    args = training_arguments(cfg, tmp_path / "run")
    assert getattr(args, checkpointing_flag(type(args))) is True
