"""method=lora: adapters on under 5% of the tiny model's parameters, published as an ordinary model folder (the
adapters merged in at the root, peft's adapter/ beside them) that serving and eval load like any other; QLoRA
refuses cleanly without a GPU."""
from __future__ import annotations

import pytest
import requests
from tests.helpers.training import (QUICK, build_story_dataset, compose_training, evaluate_models, read_metrics,
                                    run_training)

from adventure.errors import GamioError
from training.train import train

LORA = ("method=lora", *QUICK, "train.learning_rate=0.01")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """(artifacts, metrics) of one LoRA run of the tiny model, in process."""
    artifacts = tmp_path_factory.mktemp("lora")
    build_story_dataset(artifacts)
    return artifacts, train(compose_training(artifacts, *LORA))


def test_lora_trains_under_5_percent_and_the_merged_folder_is_the_adapted_model(lora_run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    artifacts, metrics = lora_run
    out = artifacts / "models" / "tiny"
    assert metrics["method"] == "lora" and read_metrics(out)["trainable_params"] == metrics["trainable_params"]
    assert 0 < metrics["trainable_params"] < 0.05 * metrics["total_params"]
    assert metrics["eval_loss_end"] < metrics["eval_loss_start"]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (out / "adapter").iterdir()}
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    # tracking=tensorboard (the default): the Trainer's event files in the run dir, with the logged losses
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (artifacts / "runs" / "tiny" / "runs").iterdir()
    scalars = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert {"train/loss", "eval/loss"} <= set(scalars)
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{metrics['trainable_params']:,} / {metrics['total_params']:,}" in card and "`lora`" in card

    # The root is the base with the adapters merged in: the same outputs as base + adapter/, unlike the base.
    base_dir = artifacts / "runs" / "tiny" / "init"
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(out)(ids).logits
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), out / "adapter")(ids).logits
        base = AutoModelForCausalLM.from_pretrained(base_dir)(ids).logits
    assert torch.allclose(merged, adapted, atol=1e-4)
    assert not torch.allclose(merged, base, atol=1e-3)


@pytest.mark.slow
def test_lora_folder_is_served_on_the_default_engine_and_evaluated(lora_run, tmp_path):
    from serving.launch import ServerProcess

    artifacts, _ = lora_run
    out = artifacts / "models" / "tiny"
    server = ServerProcess([f"model={out}", f"paths.artifacts={tmp_path}", "port=0", "generation.max_new_tokens=8"],
                           log_path=tmp_path / "server.log")
    try:
        game = requests.post(server.url + "api/games", json={}, timeout=60).json()
        auth = {"Authorization": f"Bearer {game['token']}"}
        job = requests.post(server.url + f"api/games/{game['game_id']}/turns", json={"action": "осмотреться"},
                            headers=auth, timeout=60).json()
        for _ in range(60):
            done = requests.get(server.url + f"api/jobs/{job['job_id']}?wait=10", headers=auth, timeout=60).json()
            if done["status"] in ("done", "failed"):
                break
        assert done["status"] == "done" and done["turn"]["result"], done
        assert "ct2" in requests.get(server.url + "healthz", timeout=30).json()["engine"]  # serving's default
    finally:
        server.stop()
    report = evaluate_models(artifacts, "lora", f"models=[{out}]")
    assert report["results"]["test"]["tiny"]["bits_per_char"] > 0


def test_qlora_without_a_gpu_refuses_in_one_line_and_writes_nothing(tmp_path):
    build_story_dataset(tmp_path)
    proc = run_training(tmp_path, "method=qlora", *QUICK, check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "method=qlora" in errors[0] and "CUDA" in errors[0] and "method=lora" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()


def test_unknown_target_module_names_the_model_layers(tmp_path):
    build_story_dataset(tmp_path)
    with pytest.raises(GamioError, match=r"lora.target_modules=\['q_proj'\].*no layer named \['q_proj'\].*c_attn"):
        train(compose_training(tmp_path, *LORA, "lora.target_modules=[q_proj]"))
