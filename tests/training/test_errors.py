"""Bad input gets one clear line naming the problem (and the fix), before anything is trained or moved."""
from __future__ import annotations

import importlib.util
import json

import pytest
from tests.helpers.training import QUICK, build_story_dataset, compose_training, run_training

from adventure.config import ConfigError
from adventure.errors import GamioError
from training.run_dir import _checkpoint_to_resume, last_complete_checkpoint
from training.train import train


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    path = tmp_path_factory.mktemp("artifacts")
    build_story_dataset(path)
    return path


def test_missing_dataset_says_to_run_scraping_first(tmp_path):
    proc = run_training(tmp_path, *QUICK, check=False)
    assert proc.returncode == 2
    assert "run `python -m scraping` first" in proc.stderr
    assert str(tmp_path / "data" / "dataset") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "models").exists()


def test_unknown_model_lists_the_choices(tmp_path):
    proc = run_training(tmp_path, "model=rugpt3huge", check=False)
    assert proc.returncode != 0
    for choice in ("tiny", "tiny_wide", "rugpt3small", "rugpt3medium", "rugpt3large", "gamegpt_xl"):
        assert choice in proc.stderr
    assert "rugpt3huge" in proc.stderr


def test_hub_model_absent_offline_names_the_id_and_the_local_dir_option(artifacts):
    # HF_HUB_OFFLINE=1 (set by run_training) fails at once instead of retrying the network for a minute.
    proc = run_training(artifacts, "model=rugpt3small", "train.max_steps=1", check=False)
    assert proc.returncode == 2
    assert "sberbank-ai/rugpt3small_based_on_gpt2" in proc.stderr
    assert "model.path=" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("overrides, message", [
    (("train.block_size=4096",), r"block_size=4096 exceeds the context of model 'tiny' \(512 tokens\)"),
    (("model=rugpt3large", "train.block_size=4096"), r"exceeds the context of model 'rugpt3large' \(2048"),
    (("train.precision=fp16",), "fp16 needs a CUDA GPU"),
    (("model=gamegpt_xl",), r"no Hugging Face model folder at .*gamegpt_xl; convert AI Dungeon 2's checkpoint"),
    (("train.save_steps=5", "train.eval_steps=2"), "saving steps to be a (round )?multiple of the evaluation"),
    (("+trainer_args.no_such_option=1",), "no_such_option"),
])
def test_bad_settings_are_refused_before_training(artifacts, overrides, message):
    cfg = compose_training(artifacts, *QUICK, *overrides)
    with pytest.raises(GamioError, match=message):
        train(cfg)
    assert not (artifacts / "models").exists()


@pytest.mark.parametrize("override, message", [
    ("train.precision=fp8", r"train.precision='fp8': must be one of \['fp32', 'fp16', 'bf16'\]"),
    ("loss_on=prompt", r"loss_on='prompt': must be one of \['all', 'result'\]"),
    ("train.max_steps=-5", r"train.max_steps=-5: must be >= 1 \(or -1"),
    ("train.batch_size=0", "train.batch_size=0: must be >= 1"),
    ("train.learning_rate=abc", "train.learning_rate=abc: .*Float"),
    ("model.recipe.block_sise=8", "block_sise"),
])
def test_bad_config_values_are_refused_at_composition(artifacts, override, message):
    with pytest.raises(ConfigError, match=message):
        compose_training(artifacts, *QUICK, override)


def fake_checkpoint(run_dir, step: int):
    """A complete checkpoint as the Trainer leaves it (trainer_state.json is written last), with a marker."""
    checkpoint = run_dir / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (checkpoint / "model.safetensors").write_bytes(b"weights of step %d" % step)
    return checkpoint


def test_refused_runs_never_cost_a_resumable_checkpoint(artifacts):
    """A run with a checkpoint, then the same run dir with a bad input found late (a hub model not available
    offline) twice: the checkpoint is still where resume=true looks, untouched, and nothing was moved aside."""
    run_dir = artifacts / "runs" / "resumable"
    checkpoint = fake_checkpoint(run_dir, 6)
    for _ in range(2):
        cfg = compose_training(artifacts, *QUICK, "model=rugpt3small", f"run_dir={run_dir}")
        with pytest.raises(GamioError, match="sberbank-ai/rugpt3small_based_on_gpt2.*model.path="):
            train(cfg)
    assert last_complete_checkpoint(run_dir) == checkpoint
    assert (checkpoint / "model.safetensors").read_bytes() == b"weights of step 6"
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["resumable"]


def test_starting_afresh_keeps_every_earlier_checkpoint(tmp_path, caplog):
    run_dir = tmp_path / "runs" / "tiny"
    fake_checkpoint(run_dir, 10)
    assert _checkpoint_to_resume(run_dir, resume=False, is_main=True) is None
    assert last_complete_checkpoint(tmp_path / "runs" / "tiny.previous").name == "checkpoint-10"
    fake_checkpoint(run_dir, 20)  # a second run that also got far: the first one is not deleted for it
    _checkpoint_to_resume(run_dir, resume=False, is_main=True)
    assert last_complete_checkpoint(tmp_path / "runs" / "tiny.previous-2").name == "checkpoint-20"
    (run_dir / "init").mkdir(parents=True)  # a run that failed before its first checkpoint: nothing to resume
    _checkpoint_to_resume(run_dir, resume=False, is_main=True)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny.previous", "tiny.previous-2"]
    assert last_complete_checkpoint(tmp_path / "runs" / "tiny.previous").name == "checkpoint-10"
    with caplog.at_level("WARNING"):
        assert _checkpoint_to_resume(run_dir, resume=True, is_main=True) is None
    assert f"run_dir={tmp_path / 'runs' / 'tiny.previous-2'}" in caplog.text


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_a_tracker_that_is_not_installed_is_named_with_its_install_command(artifacts):
    with pytest.raises(GamioError, match=r"tracking=mlflow: the mlflow package is not installed; `pip install mlflow`"):
        train(compose_training(artifacts, *QUICK, "tracking=mlflow"))
    assert not (artifacts / "models").exists()
