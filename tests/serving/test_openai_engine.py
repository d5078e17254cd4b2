"""engine=openai against a fake OpenAI-compatible server (tests/helpers/fake_openai.py, a subprocess), without
vLLM: how settings map to the request, streaming, a server that hangs, answers 500 or is killed mid-turn (the
row fails with a clear reason after its retries, never a hung worker, never a 5xx to players), /healthz showing
the remote's state and recovering without a restart, and the beam preset refused at start. The same game against
a real `vllm serve` is in tests/vllm/."""
from __future__ import annotations

import time

import pytest
from omegaconf import OmegaConf

from adventure.config import ConfigError, OpenAIEngineConfig
from adventure.engines.openai import HEALTH_CACHE_S, OpenAIEngine, RemoteError
from adventure.generation import GenerationSettings
from tests.helpers.fake_openai import MODEL, FakeOpenAI
from tests.helpers.serving import AppFactory, new_game, wait_done

SAMPLE = GenerationSettings.load("gamio_sample")


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI()
    yield server
    server.stop()


def make_engine(fake, tiny_untrained_dir, tmp_path, **changes) -> OpenAIEngine:
    values = {"timeout_s": 5.0, "retries": 1, "retry_backoff_s": 0.05, **changes}
    cfg = OmegaConf.structured(OpenAIEngineConfig(name="openai", base_url=fake.base_url, **values))
    return OpenAIEngine.load(cfg, str(tiny_untrained_dir), tmp_path)


def test_settings_map_to_the_completions_request(fake, tiny_untrained_dir, tmp_path):
    engine = make_engine(fake, tiny_untrained_dir, tmp_path)
    prompt = engine.tokenizer("Мир.\n> иду\n").input_ids
    single = engine.tokenizer(" лес", add_special_tokens=False).input_ids[:1]
    settings = GenerationSettings.from_mapping({**vars(SAMPLE), "max_new_tokens": 12, "stop_strings": ["\n>"],
                                                "bad_words_ids": [single, [5, 6]]})
    [out] = engine.generate([prompt], settings, seed=3)
    body = fake.received()[-1]
    assert body["model"] == MODEL and body["prompt"] == "Мир.\n> иду\n" and body["max_tokens"] == 12
    assert (body["temperature"], body["top_p"], body["top_k"], body["repetition_penalty"]) == (0.9, 0.95, 50, 5.0)
    assert body["stop"] == ["\n>"] and body["logit_bias"] == {str(single[0]): -100} and body["n"] == 1
    assert isinstance(body["seed"], int) and body["stream"] is False
    assert out.text.startswith(" Вы идёте по тропе") and "\n>" not in out.text
    assert out.token_ids == tuple(engine.tokenizer(out.text, add_special_tokens=False).input_ids)
    assert engine.health() == {"ok": True, "state": "ok", "models": [MODEL]}
    greedy = GenerationSettings.load("greedy")
    engine.generate([prompt], greedy)
    assert fake.received()[-1]["temperature"] == 0.0 and "top_k" not in fake.received()[-1]
    engine.close()


def test_token_ids_streaming_and_scoring(fake, tiny_untrained_dir, tmp_path):
    engine = make_engine(fake, tiny_untrained_dir, tmp_path, prompt_format="token_ids")
    prompt = engine.tokenizer("Мир.\n> иду\n").input_ids
    seen = []
    [out] = engine.generate([prompt], SAMPLE, on_progress=lambda row, ids: seen.append((row, list(ids))))
    assert fake.received()[-1]["prompt"] == prompt and fake.received()[-1]["stream"] is True
    assert len(seen) > 3 and all(row == 0 for row, _ in seen)
    assert engine.tokenizer.decode(seen[-1][1]) == out.text  # the growing text, as local token ids
    assert engine.score([(prompt, [5, 6, 7])]) == [3.0]  # the fake gives every prompt token -1 nats
    engine.close()


def test_a_hanging_server_fails_the_row_after_its_timeout_and_retries(fake, tiny_untrained_dir, tmp_path):
    engine = make_engine(fake, tiny_untrained_dir, tmp_path, timeout_s=0.5)
    fake.control(hang=True)
    try:
        started = time.monotonic()
        [out] = engine.generate([[1, 2, 3]], SAMPLE)
        assert time.monotonic() - started < 5
        assert isinstance(out, RemoteError) and str(out) == "the inference server failed: no answer within 0.5 s " \
                                                             "(2 tries)"
    finally:
        fake.control(hang=False)
    fake.control(fail=1)  # one 500, then an answer: the retry gets it
    [out] = engine.generate([[1, 2, 3]], SAMPLE)
    assert out.text.startswith(" Вы идёте")
    engine.close()


def test_a_server_that_is_down_fails_fast_and_health_says_so(tiny_untrained_dir, tmp_path):
    down = FakeOpenAI()
    down.kill()
    engine = make_engine(down, tiny_untrained_dir, tmp_path, model=MODEL)
    assert engine.health() == {"ok": False, "state": "unreachable: connection refused", "models": []}
    [out] = engine.generate([[1, 2, 3]], SAMPLE)
    assert str(out) == "the inference server failed: connection refused (2 tries)"
    engine.close()


@pytest.fixture(scope="module")
def make_app(tiny_untrained_dir, tmp_path_factory):
    factory = AppFactory(tiny_untrained_dir, tmp_path_factory,
                         ["engine=openai", "generation=gamio_sample", "engine.retries=1",
                          "engine.retry_backoff_s=0.1", "engine.timeout_s=5"])
    yield factory
    factory.close()


def test_the_game_is_served_by_a_remote_that_dies_mid_turn_and_returns(make_app):
    remote = FakeOpenAI()
    try:
        client, service = make_app(f"engine.base_url={remote.base_url}", "generation.max_new_tokens=20")
        health = client.get("/healthz")
        assert health.status_code == 200 and health.get_json()["remote"] == {"state": "ok", "models": [MODEL]}
        assert health.get_json()["concurrent_batches"] == 8  # a continuous engine: several batches at once
        assert list(client.get("/api/presets").get_json()) == ["gamio_sample", "greedy"]  # no beam preset offered
        game, auth, _ = new_game(client)
        job = wait_done(client, client.post(f"/api/games/{game}/turns", json={"action": "иду"},
                                            headers=auth).get_json()["job_id"])
        assert job["status"] == "done" and "тропе" in job["turn"]["result"]

        remote.control(delay_s=0.3)  # a slow reply: the server is killed while it is written
        job_id = client.post(f"/api/games/{game}/turns", json={"action": "жду"}, headers=auth).get_json()["job_id"]
        deadline = time.monotonic() + 30
        while not service.worker.hub.wait(job_id, 0, 0.2)[0][1:] and time.monotonic() < deadline:
            pass  # until the first streamed text (event 1 is "running")
        remote.kill()
        job = wait_done(client, job_id, 60)
        assert job["status"] == "failed"
        assert job["error"] == ("generation failed: RemoteError: the inference server failed: connection refused "
                                "(2 tries)")
        time.sleep(HEALTH_CACHE_S)  # the first text streams at once now: the cached "ok" may be younger than that
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["remote"]["state"] == \
            "unreachable: connection refused"
        refused = client.post(f"/api/games/{game}/turns", json={"action": "жду"}, headers=auth)
        assert refused.status_code == 202  # players get their job (which fails with its reason), never a 5xx
        assert wait_done(client, refused.get_json()["job_id"], 60)["status"] == "failed"

        remote.start()  # the same port, no gamio restart
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/healthz").get_json()
            time.sleep(0.2)
        job = wait_done(client, client.post(f"/api/games/{game}/turns", json={"action": "иду дальше"},
                                            headers=auth).get_json()["job_id"])
        assert job["status"] == "done"
        assert service.worker.alive
    finally:
        remote.stop()


def test_the_beam_preset_is_refused_before_anything_loads(make_app):
    with pytest.raises(ConfigError) as refused:
        make_app("generation=gamio", "engine.base_url=http://127.0.0.1:9/v1")
    assert str(refused.value) == ("engine=openai cannot run generation.num_beams=2 (beam sampling); use "
                                  "generation=gamio_sample, the seed's sampling without beams")
