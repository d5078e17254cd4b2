"""The model worker: one thread owns the model and consumes a bounded queue of job ids.

The seed's server queued every request and had one worker serve them one by one, because parallel generation
"sends the server into shock". Here the one worker stays, but it takes every waiting job up to `max_batch` and
generates them together as one left-padded batch: on a CPU a batch of 8 costs little more than one prompt.
`max_batch=1` is the seed's strictly sequential queue.

The queue lives in memory for ordering and positions; the jobs themselves live in the store, so nothing is lost
when the process dies. The worker never dies on a bad job: that job fails with its reason and the next runs.
When the database refuses writes (disk full, read-only), the jobs it could not finish go back to the front of
the queue and wait, probed every second, until writes work again: nothing is lost and nothing stays stuck.
Each client (remote address) may have `max_per_client` jobs queued or running at once, so one client cannot
fill the shared queue.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque

from adventure.stats import percentile as shared_percentile
from adventure.turns import TurnPipeline, TurnResult
from serving.database import StorageUnavailable
from serving.errors import QueueFull, Unavailable
from serving.game import turn_input
from serving.store import FINAL, Store

log = logging.getLogger(__name__)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])(?:/[\w.@+-]+){2,}/?")


def without_paths(reason: str) -> str:
    """A failure reason as players see it: the server's file system layout is not theirs to read."""
    return _ABSOLUTE_PATH.sub("<path>", reason)


class ModelWorker:
    def __init__(self, pipeline: TurnPipeline, store: Store, *, max_size: int = 64, max_batch: int = 8,
                 seed: int | None = None, max_per_client: int | None = None, probe_interval_s: float = 1.0):
        if max_size < 1 or max_batch < 1:
            raise ValueError(f"queue.max_size and queue.max_batch must be >= 1, got {max_size}, {max_batch}")
        self.pipeline, self.store, self.seed = pipeline, store, seed
        self.max_size, self.max_batch, self.max_per_client = max_size, max_batch, max_per_client
        self.probe_interval_s = probe_interval_s
        self._queue: deque[str] = deque()
        self._owners: dict[str, str] = {}  # job id -> client, while the job is queued or running
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

    def submit(self, accept, check=None, client: str | None = None) -> tuple[str, int]:
        """Queue the job that `accept()` writes to the store; (job_id, 1-based queue position).

        `accept` runs under the queue lock, so a job is only written when there is room for it (429 otherwise),
        and the store refuses a second pending job of the same game (409) inside its own transaction.
        `check()` raises the store's 409 first, so a client is told about its own mistake before a full queue;
        then the client's share of the queue (429), then the queue's bound (429).
        """
        with self._lock:
            if not self.alive:
                raise Unavailable("no model worker is running; try again later")
            if check is not None:
                check()
            if client is not None and self.max_per_client is not None:
                mine = sum(1 for owner in self._owners.values() if owner == client)
                if mine >= self.max_per_client:
                    raise QueueFull(f"you already have {mine} turns waiting or being generated (the limit per "
                                    f"client is {self.max_per_client}); wait for them first", self.retry_after_s())
            if len(self._queue) >= self.max_size:
                raise QueueFull(f"the queue is full ({self.max_size} turns waiting); try again later",
                                self.retry_after_s())
            job_id = accept()
            self._queue.append(job_id)
            if client is not None:
                self._owners[job_id] = client
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
        database = self.store.database
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
            if database.probe(self.probe_interval_s) is not None:  # no writes possible: the jobs wait queued
                with self._lock:
                    self._lock.wait(self.probe_interval_s)
                continue
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            unfinished = set(batch)
            try:
                self._run(batch, unfinished)
            except StorageUnavailable as exc:
                log.warning("the database refused a write (%s): %d job(s) wait for it", exc, len(unfinished))
            except Exception:  # noqa: BLE001 - the worker must survive anything a batch does
                log.exception("batch of %d jobs failed unexpectedly", len(batch))
                for job_id in list(unfinished):
                    self._fail(job_id, "internal error while generating this turn", unfinished)
            finally:
                self._requeue([job_id for job_id in batch if job_id in unfinished])
                self._notify()
            if not self.queue_depth and database.checkpoint_due(0, idle=True):
                database.checkpoint()  # idle: the main file gets every finished turn now

    def _requeue(self, job_ids: list[str]) -> None:
        """Jobs the database could not finish go back to the front, in their order; the rest leave the queue."""
        with self._lock:
            self._queue.extendleft(reversed(job_ids))
            for job_id in list(self._owners):
                if job_id not in self._queue:
                    del self._owners[job_id]

    def _run(self, batch: list[str], unfinished: set[str]) -> None:
        """Generate `batch`; a job leaves `unfinished` once its outcome is in the store."""
        started = time.perf_counter()
        self.store.mark_running(batch)
        self._notify()
        contexts, ids = [], []
        for job_id in batch:
            try:
                contexts.append(self.store.job_context(job_id))
                ids.append(job_id)
            except StorageUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                self._fail(job_id, f"cannot read the job: {exc}", unfinished)
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
                unfinished.discard(job_id)
            else:
                log.warning("job %s failed: %s", job_id, outcome.reason)
                self._fail(job_id, outcome.reason, unfinished)
        self.batches += 1
        self.batched_jobs += len(batch)
        self._batch_seconds.append(time.perf_counter() - started)
        log.info("batch of %d done in %.2f s (%d waiting)", len(batch), time.perf_counter() - started,
                 self.queue_depth)

    def _fail(self, job_id: str, reason: str, unfinished: set[str]) -> None:
        """Mark the job failed; if the database refuses even that, it stays unfinished (and runs again later)."""
        try:
            self.store.fail(job_id, without_paths(reason))
        except StorageUnavailable:
            return
        except Exception:  # noqa: BLE001
            log.exception("cannot mark job %s failed", job_id)
        self.jobs_failed += 1
        unfinished.discard(job_id)

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
