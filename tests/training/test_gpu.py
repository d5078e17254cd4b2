"""What needs CUDA: QLoRA (bitsandbytes 4-bit), DeepSpeed ZeRO-2/3 and FSDP across GPUs. `make test-gpu` runs these
on a GPU machine (it installs bitsandbytes and deepspeed first); everywhere else they are skipped."""
from __future__ import annotations

import importlib.util
import sys

import pytest
from tests.helpers.training import QUICK, build_story_dataset, read_metrics, run_training

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def gpus() -> int:
    return torch.cuda.device_count()


def torchrun(n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m"]


def loads_as_a_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).num_parameters() > 0


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="pip install bitsandbytes")
def test_qlora_trains_adapters_on_a_4bit_base_and_publishes_a_full_precision_merge(tmp_path):
    build_story_dataset(tmp_path)
    run_training(tmp_path, "method=qlora", *QUICK, "train.learning_rate=0.01", "train.precision=bf16")
    out = tmp_path / "models" / "tiny"
    metrics = read_metrics(out)
    assert metrics["method"] == "qlora" and metrics["trainable_params"] < 0.05 * metrics["total_params"]
    assert metrics["eval_loss_end"] < metrics["eval_loss_start"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and loads_as_a_model(out)


@pytest.mark.parametrize("preset", ["deepspeed_zero2", "deepspeed_zero3"])
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="pip install deepspeed")
def test_deepspeed_presets_train_and_publish_whole_weights(tmp_path, preset):
    build_story_dataset(tmp_path)
    n = min(gpus(), 2)
    run_training(tmp_path, f"distributed={preset}", *QUICK, "train.precision=bf16", launcher=torchrun(n), timeout=900)
    metrics = read_metrics(tmp_path / "models" / "tiny")
    assert metrics["world_size"] == n and metrics["eval_loss_end"] < metrics["eval_loss_start"]
    assert loads_as_a_model(tmp_path / "models" / "tiny")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_fsdp_across_gpus(tmp_path):
    build_story_dataset(tmp_path)
    run_training(tmp_path, "distributed=fsdp", *QUICK, launcher=torchrun(gpus()), timeout=900)
    metrics = read_metrics(tmp_path / "models" / "tiny")
    assert metrics["world_size"] == gpus() and loads_as_a_model(tmp_path / "models" / "tiny")
