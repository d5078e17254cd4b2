"""DDP under torchrun (2 CPU ranks, gloo) and resuming a run that was killed with SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tests.helpers.training import QUICK, build_story_dataset, read_metrics, run_training

from adventure.paths import REPO_ROOT
from training.run_dir import last_complete_checkpoint


def test_torchrun_two_cpu_ranks_both_step_and_only_rank0_writes(tmp_path):
    build_story_dataset(tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    proc = run_training(tmp_path, *QUICK, launcher=torchrun)
    log = proc.stdout + proc.stderr
    assert "rank 0/2 ran 6 optimizer steps" in log
    assert "rank 1/2 ran 6 optimizer steps" in log
    metrics = read_metrics(tmp_path / "models" / "tiny")
    assert metrics["world_size"] == 2
    # 6 steps x 4 rows x 64 tokens on each of the 2 ranks, gathered by the Trainer.
    assert metrics["tokens_seen"] == 6 * 4 * 64 * 2
    assert log.count(f"wrote {tmp_path / 'models' / 'tiny'}") == 1  # rank 0 alone published
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny"]  # no leftovers of a 2nd writer


@pytest.mark.parametrize("method", ["full", "lora"])
def test_resume_after_kill_continues_from_the_checkpoint(tmp_path, method):
    build_story_dataset(tmp_path)
    settings = [*QUICK, "train.max_steps=12", "train.eval_steps=3", "train.save_steps=3", f"method={method}"]
    run_dir = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, "-m", "training", f"paths.artifacts={tmp_path}", *settings]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while last_complete_checkpoint(run_dir) is None:
        assert first.poll() is None, "the first run ended before it saved a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    killed_at = int(last_complete_checkpoint(run_dir).name.split("-")[1])
    assert 0 < killed_at < 12
    assert not (tmp_path / "models" / "tiny").exists()  # nothing half-published

    proc = run_training(tmp_path, *settings, "resume=true")
    assert f"resuming from {run_dir / f'checkpoint-{killed_at}'}" in proc.stdout + proc.stderr
    metrics = read_metrics(tmp_path / "models" / "tiny")
    assert metrics["resumed_from_step"] == killed_at
    assert metrics["steps_this_run"] == 12 - killed_at
    assert metrics["global_step"] == 12
    # The history before the kill came back with the checkpoint: the step-0 evaluation is still the start.
    assert metrics["eval_loss_history"][0]["step"] == 0
    assert metrics["tokens_seen"] == 12 * 4 * 64
    if method == "lora":  # the adapters came back from the checkpoint and were merged once at the end
        assert metrics["trainable_params"] < 0.05 * metrics["total_params"]
        assert (tmp_path / "models" / "tiny" / "adapter" / "adapter_model.safetensors").is_file()


def test_fsdp_on_two_cpu_processes_matches_one_process(tmp_path):
    """distributed=fsdp under torchrun, 2 CPU ranks x 4 rows, against one process x 8 rows: the same model and
    global batch, so the same loss curve up to the order the rows come in."""
    build_story_dataset(tmp_path)
    curve = [*QUICK, "train.logging_steps=1"]
    run_training(tmp_path, *curve, "train.batch_size=8", f"out_dir={tmp_path / 'models' / 'single'}",
                 f"run_dir={tmp_path / 'runs' / 'single'}")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    proc = run_training(tmp_path, *curve, "distributed=fsdp", launcher=torchrun)
    assert "FSDP2 on 2 CPU processes" in proc.stdout + proc.stderr  # sharded, not a silent DDP fallback
    single, sharded = read_metrics(tmp_path / "models" / "single"), read_metrics(tmp_path / "models" / "tiny")
    assert sharded["world_size"] == 2 and sharded["global_step"] == single["global_step"] == 6
    evals = [(a["eval_loss"], b["eval_loss"]) for a, b in zip(single["eval_loss_history"],
                                                              sharded["eval_loss_history"])]
    assert evals[0][0] == pytest.approx(evals[0][1], abs=1e-4)  # step 0: the same initial model
    assert all(a == pytest.approx(b, rel=0.01) for a, b in evals)
    trains = [(a["loss"], b["loss"]) for a, b in zip(single["train_loss_history"], sharded["train_loss_history"])]
    assert len(trains) == 6 and all(a == pytest.approx(b, rel=0.02) for a, b in trains)
    assert sharded["eval_loss_end"] < sharded["eval_loss_start"]
    # The published folder holds whole weights (checkpoints were sharded): an ordinary model folder.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "models" / "tiny")
    assert model.num_parameters() == sharded["total_params"]
