"""Sweeps: every multirun job trains into its own folder named by its swept settings, the sweep folder gets a
summary, eval's models=auto finds every job, and the shipped Optuna search minimises the validation loss."""
from __future__ import annotations

import json

import pytest
import yaml
from tests.helpers.training import QUICK, build_story_dataset, evaluate_models, read_metrics, run_training

from training.sweep import job_name, swept_keys


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_story_dataset(tmp_path_factory.mktemp("sweep")).parent.parent  # <artifacts>/data/dataset


def sweep_folder(artifacts):
    return min((artifacts / "hydra" / "training-multirun").iterdir())  # the first sweep of the module


def test_job_names_are_the_swept_settings_only():
    swept = swept_keys(["-m", "loss_on=all,result", "train.learning_rate=choice(0.1,0.2)", "train.max_steps=6",
                        "paths.artifacts=/x", "model=tiny,tiny_wide"], {"+lora.r": "choice(4,8)"})
    assert swept == {"loss_on", "train.learning_rate", "model", "lora.r"}
    overrides = ["train.max_steps=6", "train.learning_rate=0.2", "model=tiny_wide", "loss_on=result",
                 "paths.artifacts=/x", "+lora.r=4"]
    assert job_name(overrides, swept) == "lora.r=4,loss_on=result,train.learning_rate=0.2"
    assert job_name(["model=tiny", "train.max_steps=6"], swept) == ""  # a sweep over models: plain folders
    assert job_name(["model.path=/a/b"], {"model.path"}) == "model.path=_a_b"  # one folder level, always
    long = job_name([f"trainer_args.k{i}={'x' * 30}" for i in range(20)], {f"trainer_args.k{i}" for i in range(20)})
    assert len(long.encode()) <= 200


@pytest.mark.slow
def test_two_job_multirun_leaves_two_folders_a_summary_and_eval_compares_both(artifacts):
    proc = run_training(artifacts, "loss_on=all,result", *QUICK, multirun=True)
    assert "Launching 2 jobs" in proc.stdout + proc.stderr
    jobs = {name: artifacts / "models" / "tiny" / f"loss_on={name}" for name in ("all", "result")}
    for name, folder in jobs.items():
        assert read_metrics(folder)["loss_on"] == name
        assert yaml.safe_load((folder / "training_config.yaml").read_text())["loss_on"] == name
    summary = json.loads((sweep_folder(artifacts) / "sweep.json").read_text())
    assert len(summary["jobs"]) == 2
    for job in summary["jobs"]:
        metrics = read_metrics(artifacts / job["folder"])
        assert job["status"] == "done" and any(o.startswith("loss_on=") for o in job["overrides"])
        assert (job["best_eval_loss"], job["best_step"]) == (metrics["best_eval_loss"], metrics["best_step"])
    assert summary["jobs"][0]["best_eval_loss"] <= summary["jobs"][1]["best_eval_loss"]  # best first
    assert summary["best"]["folder"] == summary["jobs"][0]["folder"]
    table = (sweep_folder(artifacts) / "sweep.md").read_text()
    assert "models/tiny/loss_on=all" in table and "models/tiny/loss_on=result" in table

    # A plain run of the same model replaces models/tiny, and keeps the sweep's folders inside it.
    run_training(artifacts, *QUICK)
    assert read_metrics(artifacts / "models" / "tiny")["loss_on"] == "all"
    assert all(read_metrics(folder) for folder in jobs.values())

    report = evaluate_models(artifacts, "sweep")
    assert {"tiny", "tiny-untrained", "tiny/loss_on=all", "tiny/loss_on=result"} <= set(report["model_order"])
    for name in ("tiny/loss_on=all", "tiny/loss_on=result"):
        assert report["models"][name]["location"] == f"models/{name}"  # relative to paths.artifacts (portable)
        assert report["results"]["test"][name]["bits_per_char"] > 0


@pytest.mark.slow
def test_optuna_search_minimises_the_validation_loss_over_trials(artifacts):
    run_training(artifacts, "+hparams_search=optuna", "hydra.sweeper.n_trials=2", *QUICK,
                 "train.max_steps=2", "train.eval_steps=1")
    folder = max((artifacts / "hydra" / "training-multirun").iterdir())  # the newest sweep
    optuna = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    summary = json.loads((folder / "sweep.json").read_text())
    assert len(summary["jobs"]) == 2 and all(job["status"] == "done" for job in summary["jobs"])
    assert summary["best"]["best_eval_loss"] == pytest.approx(optuna["best_value"])
    best = artifacts / summary["best"]["folder"]
    assert best.parent == artifacts / "models" / "tiny"
    # The folder is named by the sampled values, which are the settings it was trained with.
    trained = yaml.safe_load((best / "training_config.yaml").read_text())
    assert f"train.learning_rate={trained['train']['learning_rate']}" in best.name
    assert trained["train"]["learning_rate"] == optuna["best_params"]["train.learning_rate"]
