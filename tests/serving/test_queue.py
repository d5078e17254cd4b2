"""The model worker's queue without HTTP: FIFO batches of at most max_batch, 1-based positions that count down,
the queue bound (429 with Retry-After), 409 before 429, recovered jobs first, and a failed row failing alone.
The pipeline is the real one on the tiny model (2 new tokens per turn)."""
from __future__ import annotations

import time

import pytest

from adventure.engines.hf import HFEngine
from adventure.generation import GenerationSettings
from adventure.turns import TurnPipeline
from serving.errors import Conflict, QueueFull
from serving.storage import open_store
from serving.storage.records import FINAL
from serving.queue.jobs import MAIN, JobPlanner
from serving.queue.worker import ModelWorker
from tests.helpers.serving import Gate, poisoned_prompts


@pytest.fixture(scope="module")
def pipeline(tiny_untrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = GenerationSettings.from_mapping({**vars(GenerationSettings.load("greedy")), "max_new_tokens": 2})
    engine = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_untrained_dir),
                      AutoTokenizer.from_pretrained(tiny_untrained_dir))
    return TurnPipeline(engine, settings)


@pytest.fixture
def make_worker(pipeline, tmp_path):
    workers = []

    def make(max_size=64, max_batch=8, recovered=()):
        store = open_store(tmp_path / f"db{len(workers)}.sqlite")
        worker = ModelWorker(JobPlanner({MAIN: pipeline}, {}), store, max_size=max_size, max_batch=max_batch, seed=0)
        workers.append(worker)
        return worker, store

    yield make
    for worker in workers:
        worker.stop()
        vars(worker.pipeline).pop("run", None)  # undo a Gate: the shared pipeline is used by the next test
        worker.store.close()


def submit_turn(worker, store, action="иду"):
    game_id, _ = store.create_game("Мир.")
    return worker.submit(lambda: store.add_job(game_id, "turn", action),
                         check=lambda: store.check_job(game_id, "turn")), game_id


def wait_final(worker, job_id, timeout=120):
    job = worker.wait(job_id, timeout)
    assert job.status in FINAL, job
    return job


def test_fifo_batches_and_positions(make_worker):
    worker, store = make_worker(max_batch=2)
    gate = Gate(worker)
    worker.start()
    (first, _), _ = submit_turn(worker, store)
    assert gate.entered.wait(60)  # the worker holds a batch of one; the next five wait
    waiting = [submit_turn(worker, store)[0] for _ in range(5)]
    assert [position for _, position in waiting] == [1, 2, 3, 4, 5]
    assert [worker.position(job_id) for job_id, _ in waiting] == [1, 2, 3, 4, 5]
    assert worker.position(first) is None and worker.queue_depth == 5
    gate.opened.set()
    for job_id, _ in [(first, 1), *waiting]:
        assert wait_final(worker, job_id).status == "done"
    assert gate.batches == [1, 2, 2, 1]  # first come, first served, never more than max_batch at once
    order = [store.job(job_id).started for job_id, _ in waiting]
    assert order == sorted(order)


def test_queue_bound_and_conflicts(make_worker):
    worker, store = make_worker(max_size=2, max_batch=1)
    gate = Gate(worker)
    worker.start()
    (running, _), busy_game = submit_turn(worker, store)
    assert gate.entered.wait(60)
    submit_turn(worker, store)
    submit_turn(worker, store)
    with pytest.raises(QueueFull) as full:
        submit_turn(worker, store)
    assert full.value.retry_after_s >= 1  # web/errors.py turns it into Retry-After
    with pytest.raises(Conflict):  # the game's own pending turn is reported before the full queue
        worker.submit(lambda: store.add_job(busy_game, "turn", "ещё"), check=lambda: store.check_job(busy_game, "turn"))
    gate.opened.set()
    assert wait_final(worker, running).status == "done"


def test_recovered_jobs_run_first_whatever_the_bound(make_worker, tmp_path):
    worker, store = make_worker(max_size=1, max_batch=8)
    games = [store.create_game(f"Мир {i}.")[0] for i in range(3)]
    recovered = [store.add_job(game, "turn", "иду") for game in games]
    gate = Gate(worker)
    worker.start(recovered)
    assert gate.entered.wait(60)
    gate.opened.set()
    for job_id in recovered:
        assert wait_final(worker, job_id).status == "done"
    assert gate.batches[0] == 3


def test_a_failing_row_fails_alone_and_the_worker_goes_on(make_worker):
    worker, store = make_worker(max_batch=8)
    gate = Gate(worker)
    with poisoned_prompts(worker.pipeline):
        worker.start()
        (first, _), _ = submit_turn(worker, store)
        assert gate.entered.wait(60)
        (bad, _), _ = submit_turn(worker, store, "пью яд")
        (good, _), _ = submit_turn(worker, store, "пью воду")
        gate.opened.set()
        failed = wait_final(worker, bad)
        assert failed.status == "failed" and "poisoned prompt" in failed.error
        assert wait_final(worker, good).status == "done" and wait_final(worker, first).status == "done"
        assert gate.batches[1] == 2 and worker.stats()["jobs_failed"] == 1
    deadline = time.monotonic() + 5
    while worker.queue_depth and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.alive
