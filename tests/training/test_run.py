"""`python -m training` end to end: the default run, the loss_on=result mode, and a two-model multirun."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from tests.helpers.training import QUICK, build_story_dataset, compose_training, read_metrics, run_training

from adventure.generation import GenerationSettings
from adventure.models import resolve_model_spec
from training.train import train

CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.mark.slow
def test_default_run_learns_and_publishes_a_reloadable_russian_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_story_dataset(tmp_path)
    proc = run_training(tmp_path, timeout=900)  # no overrides: the default tiny recipe
    out = tmp_path / "models" / "tiny"
    metrics = read_metrics(out)
    assert metrics["eval_loss_end"] < 0.9 * metrics["eval_loss_start"]
    assert metrics["global_step"] == metrics["max_steps"] > 0
    assert [e["step"] for e in metrics["eval_loss_history"]][:2] == [0, metrics["eval_loss_history"][1]["step"]]
    assert metrics["tokens_seen"] > 0 and metrics["tokens_per_second"] > 0
    assert len(metrics["train_loss_history"]) >= 5
    # One log line per evaluation, with the loss and the training speed.
    evals = re.findall(r"step (\d+)/\d+ eval_loss ([\d.]+) .*train tokens/s", proc.stdout + proc.stderr)
    assert len(evals) == len(metrics["eval_loss_history"])
    # Standard HF folder + provenance; `tiny` now resolves to it for eval and serving.
    for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json",
                 "MODEL_CARD.md", "training_config.yaml"):
        assert (out / name).is_file(), name
    assert yaml.safe_load((out / "training_config.yaml").read_text())["model"]["name"] == "tiny"
    assert f"{metrics['eval_loss_end']:.4f}" in (out / "MODEL_CARD.md").read_text()
    assert resolve_model_spec("tiny", tmp_path).location == str(out)
    assert list((tmp_path / "hydra" / "training").iterdir())  # Hydra's run dir is under the artifacts

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    seed = GenerationSettings.load("gamio")
    stored = json.loads((out / "generation_config.json").read_text())
    assert {k: stored[k] for k in seed.generate_kwargs()} == seed.generate_kwargs()
    torch.manual_seed(0)
    inputs = tokenizer("Вы стоите на берегу моря.\n> осмотреться\n", return_tensors="pt")
    new = model.generate(**inputs)[0, inputs["input_ids"].shape[1]:]  # generation_config.json's settings
    assert len(new) > 5
    assert len(CYRILLIC.findall(tokenizer.decode(new, skip_special_tokens=True))) >= 5


def test_result_loss_with_gradient_checkpointing_trains_in_process(tmp_path):
    build_story_dataset(tmp_path)
    cfg = compose_training(tmp_path, *QUICK, "loss_on=result", "train.gradient_checkpointing=true",
                           "train.block_size=96", "train.learning_rate=0.01")
    metrics = train(cfg)
    assert metrics["loss_on"] == "result"
    assert metrics["eval_loss_end"] < metrics["eval_loss_start"]
    saved = yaml.safe_load((tmp_path / "models" / "tiny" / "training_config.yaml").read_text())
    assert saved["loss_on"] == "result" and saved["train"]["gradient_checkpointing"] is True
    assert read_metrics(tmp_path / "models" / "tiny") == json.loads(json.dumps(metrics))


def test_multirun_trains_each_model_into_its_own_folder(tmp_path):
    build_story_dataset(tmp_path)
    proc = run_training(tmp_path, "model=tiny,tiny_wide", *QUICK, multirun=True)
    widths = {}
    for name in ("tiny", "tiny_wide"):
        out = tmp_path / "models" / name
        assert read_metrics(out)["model"] == name
        widths[name] = json.loads((out / "config.json").read_text())["n_embd"]
    assert widths == {"tiny": 128, "tiny_wide": 256}
    assert "Launching 2 jobs" in proc.stdout + proc.stderr
    sweeps = list((tmp_path / "hydra" / "training-multirun").iterdir())  # the sweep dir is under the artifacts
    assert len(sweeps) == 1 and sorted(p.name for p in sweeps[0].iterdir()) == ["0", "1", "multirun.yaml"]
