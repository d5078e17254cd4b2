"""The worker with several batches at once (queue.concurrent_batches > 1, continuous batching) on the tiny hf
engine, without vLLM: a turn that arrives mid-generation is generated at once instead of waiting behind the
running batch (with 1, the barrier, it waits); no job is lost or generated twice; positions, per-client shares
and the requeue after a storage fault hold for every batch thread; an engine that is not continuous is still
called by one thread at a time."""
from __future__ import annotations

import threading
import time

import pytest

from adventure.engines.hf import HFEngine
from adventure.generation import GenerationSettings
from adventure.turns import TurnPipeline
from serving.storage import StorageUnavailable
from serving.errors import QueueFull
from serving.queue.jobs import MAIN, JobPlanner
from serving.storage import open_store
from serving.storage.records import FINAL
from serving.queue.worker import ModelWorker


class HeldEngine:
    """The tiny hf engine behind a continuous engine's interface: its first call waits for `release` (a long
    generation in progress); calls run one at a time inside, as a real engine's step loop would serialise them."""
    continuous = True

    def __init__(self, engine):
        self.engine, self.tokenizer, self.context_length = engine, engine.tokenizer, engine.context_length
        self.name, self.description = "held", "hf held"
        self.holding, self.release = threading.Event(), threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def generate(self, prompts, settings, **kwargs):
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.holding.set()
            assert self.release.wait(120)
        with self._lock:
            return self.engine.generate(prompts, settings, **kwargs)

    def close(self):
        pass


@pytest.fixture(scope="module")
def hf_engine(tiny_untrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return HFEngine(AutoModelForCausalLM.from_pretrained(tiny_untrained_dir),
                    AutoTokenizer.from_pretrained(tiny_untrained_dir))


@pytest.fixture
def make_worker(hf_engine, tmp_path):
    settings = GenerationSettings.from_mapping({**vars(GenerationSettings.load("greedy")), "max_new_tokens": 2})
    workers = []

    def make(engine=None, **kwargs):
        store = open_store(tmp_path / f"db{len(workers)}.sqlite")
        pipeline = TurnPipeline(engine or hf_engine, settings)
        worker = ModelWorker(JobPlanner({MAIN: pipeline}, {}), store, seed=0, **kwargs)
        workers.append(worker)
        return worker, store

    yield make
    for worker in workers:
        worker.stop()
        worker.store.close()


def submit_turn(worker, store, action="иду", client=None):
    game_id, _ = store.create_game("Мир.")
    job_id, position = worker.submit(lambda: store.add_job(game_id, "turn", action),
                                     check=lambda: store.check_job(game_id, "turn"), client=client)
    return job_id, position, game_id


def final(worker, job_id, timeout=120):
    job = worker.wait(job_id, timeout)
    assert job.status in FINAL, job
    return job


def test_a_turn_arriving_mid_generation_does_not_wait_for_the_running_batch(make_worker, hf_engine):
    held = HeldEngine(hf_engine)
    worker, store = make_worker(held, concurrent_batches=2)
    worker.start()
    first, _, _ = submit_turn(worker, store)
    assert held.holding.wait(60)  # the first batch is generating (and will for a while)
    second, position, _ = submit_turn(worker, store)
    assert position == 1
    assert final(worker, second, 60).status == "done"  # joined at once, finished while the first still runs
    assert store.job(first).status == "running" and worker.stats()["batches_running"] == 1
    held.release.set()
    assert final(worker, first).status == "done"


def test_with_one_batch_at_a_time_the_running_batch_is_a_barrier(make_worker, hf_engine):
    held = HeldEngine(hf_engine)
    worker, store = make_worker(held, concurrent_batches=1)
    worker.start()
    first, _, _ = submit_turn(worker, store)
    assert held.holding.wait(60)
    second, _, _ = submit_turn(worker, store)
    time.sleep(1.0)
    assert store.job(second).status == "queued" and worker.position(second) == 1
    held.release.set()
    assert final(worker, first).status == final(worker, second).status == "done"


def test_no_job_lost_or_doubled_and_positions_count_down(make_worker, hf_engine):
    held = HeldEngine(hf_engine)
    worker, store = make_worker(held, concurrent_batches=3, max_batch=2)
    worker.start()
    first, _, first_game = submit_turn(worker, store)
    assert held.holding.wait(60)
    submitted = [submit_turn(worker, store, f"шаг {i}") for i in range(9)]
    # The two free threads take batches as soon as jobs come: whatever still waits is numbered 1, 2, ... in order.
    waiting = [job for job, _, _ in submitted if worker.position(job) is not None]
    assert [worker.position(job) for job in waiting] == list(range(1, len(waiting) + 1))
    held.release.set()
    games = [first_game] + [game for _, _, game in submitted]
    for job in [first] + [job for job, _, _ in submitted]:
        assert final(worker, job).status == "done"
    for game in games:
        assert len(store.game(game).turns) == 1  # each job wrote its turn exactly once
    stats = worker.stats()
    assert stats["turns_served"] == 10 and stats["jobs_failed"] == 0 and stats["queue_depth"] == 0
    assert held.calls == stats["batches"] and worker.batched_jobs == 10


def test_a_clients_share_counts_jobs_running_in_every_batch_thread(make_worker, hf_engine):
    held = HeldEngine(hf_engine)
    worker, store = make_worker(held, concurrent_batches=2, max_per_client=2)
    worker.start()
    first, _, _ = submit_turn(worker, store, client="a")
    assert held.holding.wait(60)
    second, _, _ = submit_turn(worker, store, client="a")
    assert final(worker, second, 60).status == "done"  # done in the other thread: its share is free again
    third, _, _ = submit_turn(worker, store, client="a")  # the first still runs: 2 of 2 in use
    with pytest.raises(QueueFull):
        submit_turn(worker, store, client="a")
    submit_turn(worker, store, client="b")  # another client is not affected
    held.release.set()
    assert final(worker, first).status == final(worker, third).status == "done"


def test_a_storage_fault_requeues_only_that_batchs_jobs(make_worker, hf_engine):
    worker, store = make_worker(concurrent_batches=2, max_batch=1)
    complete, refused = store.complete, []

    def flaky(job_id, **kwargs):
        if not refused:
            refused.append(job_id)
            raise StorageUnavailable("database or disk is full")
        return complete(job_id, **kwargs)

    store.complete = flaky
    worker.start()
    jobs = [submit_turn(worker, store, f"шаг {i}") for i in range(4)]
    for job, _, game in jobs:
        assert final(worker, job).status == "done"
        assert len(store.game(game).turns) == 1
    assert refused and worker.stats()["turns_served"] == 4


def test_an_engine_that_is_not_continuous_is_called_by_one_thread_at_a_time(make_worker, hf_engine):
    inside, most = [0], [0]
    original = hf_engine.generate
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.05)
            return original(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    hf_engine.generate = counting
    try:
        worker, store = make_worker(concurrent_batches=3, max_batch=1)
        worker.start()
        jobs = [submit_turn(worker, store, f"шаг {i}") for i in range(6)]
        assert all(final(worker, job).status == "done" for job, _, _ in jobs)
    finally:
        del hf_engine.generate
    assert most[0] == 1
