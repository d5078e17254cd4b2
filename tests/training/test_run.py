"""`python -m training` end to end: the default run, the loss_on=result mode, and a two-model multirun."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from tests.helpers.training import QUICK, build_story_dataset, compose_training, read_metrics, run_training

from adventure.generation import GenerationSettings
from adventure.models import resolve_model_spec
from training.publish import model_card
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
    assert (out / "README.md").read_text() == (out / "MODEL_CARD.md").read_text()
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
    # The Hugging Face card: metadata and model-index read back by huggingface_hub, metrics as measured.
    from huggingface_hub import ModelCard

    out = tmp_path / "models" / "tiny"
    card = ModelCard.load(out / "README.md")
    assert (out / "MODEL_CARD.md").read_text() == (out / "README.md").read_text()
    data = card.data
    assert (data.language, data.license, data.pipeline_tag, data.base_model) == ("ru", "other", "text-generation",
                                                                                  None)  # scratch: no base model
    assert data.datasets == ["gamio-local-dataset"] and "`gamio-local-dataset`: a story dataset" in card.text
    assert {"gamio", "text-adventure", "gpt2", "russian"} <= set(data.tags)
    assert {r.dataset_split for r in data.eval_results} == {"validation"}
    assert {(r.metric_type, r.metric_name): r.metric_value for r in data.eval_results} == {
        ("loss", "validation loss at start"): metrics["eval_loss_start"],
        ("loss", "validation loss at end"): metrics["eval_loss_end"],
        ("perplexity", "validation perplexity at start"): metrics["eval_perplexity_start"],
        ("perplexity", "validation perplexity at end"): metrics["eval_perplexity_end"]}
    assert str(tmp_path) not in card.content  # folder names, not the machine's paths


def test_card_names_a_hub_base_model_but_only_describes_a_local_one(tmp_path):
    from huggingface_hub import ModelCard

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stats.json").write_text('{"source": "cys"}')
    metrics = {"eval_loss_start": None, "eval_loss_end": 2.0, "eval_perplexity_start": None,
               "eval_perplexity_end": 7.39, "best_step": 4, "global_step": 4, "max_steps": 4, "tokens_seen": 10,
               "tokens_per_second": 5.0, "world_size": 1, "resumed_from_step": 0}
    hub_id = "sberbank-ai/rugpt3small_based_on_gpt2"
    for path, base in ((None, hub_id), (str(tmp_path / "copies" / "rugpt3small"), None)):
        cfg = {"model": {"name": "rugpt3small", "source": "hub", "hub_id": hub_id, "path": path, "language": "ru"},
               "train": {"seed": 1}, "loss_on": "all", "history_turns": 10, "trainer_args": {},
               "generation": {"name": "gamio"}, "dataset_dir": str(tmp_path / "data" / "dataset")}
        model_card(tmp_path, cfg, metrics, {}, "rugpt3small")
        card = ModelCard.load(tmp_path / "README.md")
        assert card.data.base_model == base and card.data.datasets == ["gamio-scraping-cys"]
        assert [r.metric_name for r in card.data.eval_results] == ["validation loss at end",
                                                                   "validation perplexity at end"]
        assert str(tmp_path) not in card.content
    assert "a local folder `rugpt3small` (a copy of `sberbank-ai/rugpt3small_based_on_gpt2`)" in card.text


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
    assert len(sweeps) == 1
    assert sorted(p.name for p in sweeps[0].iterdir()) == ["0", "1", "multirun.yaml", "sweep.json", "sweep.md"]
