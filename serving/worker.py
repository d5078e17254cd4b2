"""The model worker: one thread owns the model and consumes a bounded queue of job ids.

The seed's server queued every request and had one worker serve them one by one, because parallel generation
"sends the server into shock". Here the one worker stays, but it takes every waiting job up to `max_batch` and
generates them together as one left-padded batch: on a CPU a batch of 8 costs little more than one prompt.
`max_batch=1` is the seed's strictly sequential queue.

The queue lives in memory for ordering and positions; the jobs themselves live in the store, so nothing is lost
when the process dies. The worker never dies on a bad job: that job fails with its reason and the next runs.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque

from adventure.stats import percentile as shared_percentile
from adventure.turns import TurnPipeline, TurnResult
from serving.errors import QueueFull, Unavailable
from serving.game import turn_input
from serving.store import FINAL, Store

log = logging.getLogger(__name__)


class ModelWorker:
    def __init__(self, pipeline: TurnPipeline, store: Store, *, max_size: int = 64, max_batch: int = 8,
                 seed: int | None = None):
        if max_size < 1 or max_batch < 1:
            raise ValueError(f"queue.max_size and queue.max_batch must be >= 1, got {max_size}, {max_batch}")
        self.pipeline, self.store, self.seed = pipeline, store, seed
        self.max_size, self.max_batch = max_size, max_batch
        self._queue: deque[str] = deque()
        self._lock = threading.Condition()  # guards the queue; the worker waits on it for jobs
        self._changed = threading.Condition()  # long-polls wait on it for job state changes
        self._change_count = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Counters for /healthz (since this process started).
        self.turns_served = self.jobs_failed = self.batches = self.batched_jobs = 0
        self._latencies: deque[float] = deque(maxlen=2000)
        self._batch_seconds: deque[float] = deque(maxlen=50)

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self, recovered: list[str] = ()) -> None:
        """Start the thread; `recovered` (jobs accepted before a crash) are queued first, whatever max_size."""
        with self._lock:
            self._queue.extend(recovered)
        self._thread = threading.Thread(target=self._loop, name="gamio-model-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    # ---- the request side --------------------------------------------------------------------------------

    def submit(self, accept, check=None) -> tuple[str, int]:
        """Queue the job that `accept()` writes to the store; (job_id, 1-based queue position).

        `accept` runs under the queue lock, so a job is only written when there is room for it (429 otherwise),
        and the store refuses a second pending job of the same game (409) inside its own transaction.
        `check()` raises the store's 409 first, so a client is told about its own mistake before a full queue.
        """
        with self._lock:
            if not self.alive:
                raise Unavailable("no model worker is running; try again later")
            if check is not None:
                check()
            if len(self._queue) >= self.max_size:
                raise QueueFull(f"the queue is full ({self.max_size} turns waiting); try again later",
                                self.retry_after_s())
            job_id = accept()
            self._queue.append(job_id)
            self._lock.notify_all()
            return job_id, len(self._queue)

    def position(self, job_id: str) -> int | None:
        """1-based place in the queue (1: in the next batch's first row), None when not waiting."""
        with self._lock:
            try:
                return self._queue.index(job_id) + 1
            except ValueError:
                return None

    @property
    def queue_depth(self) -> int:
        with self._lock:
            return len(self._queue)

    def retry_after_s(self) -> int:
        """Seconds until the queue has room, from recent batch times (at least 1)."""
        per_batch = sum(self._batch_seconds) / len(self._batch_seconds) if self._batch_seconds else 1.0
        return max(1, math.ceil(per_batch * max(1, len(self._queue)) / self.max_batch))

    def wait(self, job_id: str, timeout_s: float) -> dict:
        """The job from the store once it is done or failed, or when `timeout_s` has passed (long-poll)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            with self._changed:
                seen = self._change_count
            job = self.store.job(job_id)
            remaining = deadline - time.monotonic()
            if job["status"] in FINAL or remaining <= 0:
                return job
            with self._changed:
                if self._change_count == seen:  # nothing changed since we read the job: sleep until it does
                    self._changed.wait(remaining)

    def _notify(self) -> None:
        with self._changed:
            self._change_count += 1
            self._changed.notify_all()

    # ---- the worker thread -------------------------------------------------------------------------------

    def _loop(self) -> None:
        log.info("model worker started (max_batch=%d, max_size=%d)", self.max_batch, self.max_size)
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            try:
                self._run(batch)
            except Exception:  # noqa: BLE001 - the worker must survive anything a batch does
                log.exception("batch of %d jobs failed unexpectedly", len(batch))
                for job_id in batch:
                    self._fail(job_id, "internal error while generating this turn")
            finally:
                self._notify()

    def _run(self, batch: list[str]) -> None:
        started = time.perf_counter()
        self.store.mark_running(batch)
        self._notify()
        contexts, ids = [], []
        for job_id in batch:
            try:
                contexts.append(self.store.job_context(job_id))
                ids.append(job_id)
            except Exception as exc:  # noqa: BLE001
                self._fail(job_id, f"cannot read the job: {exc}")
        seed = None if self.seed is None else self.seed + self.batches  # batch i of this process: seed + i
        outcomes = self.pipeline.run([turn_input(ctx, self.pipeline.english) for ctx in contexts], seed=seed)
        for job_id, ctx, outcome in zip(ids, contexts, outcomes):
            if isinstance(outcome, TurnResult):
                if self.store.complete(job_id, result=outcome.result, action_en=outcome.action_en,
                                       result_en=outcome.result_en, world_en=outcome.world_en):
                    self.turns_served += 1
                    self._latencies.append(time.time() - ctx["job"]["created"])
                else:
                    self.jobs_failed += 1
            else:
                log.warning("job %s failed: %s", job_id, outcome.reason)
                self._fail(job_id, outcome.reason)
        self.batches += 1
        self.batched_jobs += len(batch)
        self._batch_seconds.append(time.perf_counter() - started)
        log.info("batch of %d done in %.2f s (%d waiting)", len(batch), time.perf_counter() - started,
                 self.queue_depth)

    def _fail(self, job_id: str, reason: str) -> None:
        self.jobs_failed += 1
        try:
            self.store.fail(job_id, reason)
        except Exception:  # noqa: BLE001
            log.exception("cannot mark job %s failed", job_id)

    # ---- /healthz ----------------------------------------------------------------------------------------

    def stats(self) -> dict:
        latencies = list(self._latencies)  # one snapshot for both, so p50 <= p95 even while turns finish

        def percentile(q: float) -> float | None:
            value = shared_percentile(latencies, q)
            return None if value is None else round(value, 3)

        return {"queue_depth": self.queue_depth, "max_batch": self.max_batch, "queue_max_size": self.max_size,
                "turns_served": self.turns_served, "jobs_failed": self.jobs_failed, "batches": self.batches,
                "mean_batch_size": round(self.batched_jobs / self.batches, 3) if self.batches else None,
                "latency_p50_s": percentile(50), "latency_p95_s": percentile(95)}
