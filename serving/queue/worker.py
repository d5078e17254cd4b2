"""The model worker: one thread owns the models and consumes a bounded queue of jobs.

The seed's server queued every request and had one worker serve them one by one, because parallel generation
"sends the server into shock". Here the one worker stays, but it takes every waiting job up to `max_batch` and
generates them together as one left-padded batch: on a CPU a batch of 8 costs little more than one prompt.
`max_batch=1` is the seed's strictly sequential queue.

The queue lives in memory for ordering and positions; the jobs themselves live in the store, so nothing is lost
when the process dies. The worker never dies on a bad job: that job fails with its reason and the next runs.
When the database refuses writes (disk full, read-only), the jobs it could not finish go back to the front of
the queue and wait, probed every second, until writes work again: nothing is lost and nothing stays stuck.
Each client (remote address) may have `max_per_client` jobs queued or running at once, so one client cannot
fill the shared queue. Game jobs (ids of stored jobs) and raw jobs (the OpenAI / Kobold endpoints, in memory)
share the queue and its batches (serving/jobs.py); replies are published to the stream hub as they are written.

Continuous batching (`concurrent_batches` > 1): with one worker thread a batch is a barrier, since a turn that
arrives while a batch generates waits until the whole batch has finished. Engines that batch continuously
themselves (vLLM, a remote OpenAI-compatible server) can take new rows between two decoding steps, so the worker
then runs `concurrent_batches` threads, each taking the next batch from the same queue: a turn that arrives
mid-generation is sent to the engine at once and joins the running generation at its next step. Each thread has
its own view of the pipelines (its own tokenizer: serving/jobs.py `thread_views`); everything else the worker
guarantees (FIFO batches, positions, per-client shares, storage faults and requeue, stream events, stats) holds
for every thread. With 1 (the default of engines that batch per call) the worker is the one thread it always was.

Several processes on one PostgreSQL database: each worker claims the jobs it generates (storage/jobs.py), so a job
runs in exactly one process. An idle worker also claims jobs no live process holds (queued elsewhere, or running
in a process whose lease lapsed: killed mid-turn), and the database's notifications wake long-polls and streams
here when another process finishes a job (its stream here then ends with the whole text in one piece).
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque

from adventure.stats import percentile as shared_percentile
from serving.errors import QueueFull, Unavailable
from serving.queue.jobs import MAIN, JobPlanner, RawJob, variants
from serving.queue.streams import StreamHub
from serving.storage import Store, StorageUnavailable

log = logging.getLogger(__name__)
ADOPT_INTERVAL_S = 1.0  # shared database: an idle worker looks for jobs no live process holds this often
SHARED_WAIT_S = 2.0  # shared database: a long-poll looks at the job at least this often (a missed notification)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])(?:/[\w.@+-]+){2,}/?")


def without_paths(reason: str) -> str:
    """A failure reason as players see it: the server's file system layout is not theirs to read."""
    return _ABSOLUTE_PATH.sub("<path>", reason)


class ModelWorker:
    def __init__(self, planner: JobPlanner, store: Store, *, max_size: int = 64, max_batch: int = 8,
                 seed: int | None = None, max_per_client: int | None = None, probe_interval_s: float = 1.0,
                 names: dict[str, str] | None = None, hub: StreamHub | None = None, concurrent_batches: int = 1):
        if max_size < 1 or max_batch < 1 or concurrent_batches < 1:
            raise ValueError(f"queue.max_size, queue.max_batch and queue.concurrent_batches must be >= 1, got "
                             f"{max_size}, {max_batch}, {concurrent_batches}")
        self.planner, self.store, self.seed = planner, store, seed
        self.names = names or {name: name for name in planner.pipelines}  # pipeline -> the model's shown name
        self.hub = hub or StreamHub()
        self._raw: dict[str, RawJob] = {}
        self.max_size, self.max_batch, self.max_per_client = max_size, max_batch, max_per_client
        self.probe_interval_s = probe_interval_s
        self.concurrent_batches = concurrent_batches
        self._queue: deque[str] = deque()  # job ids; raw jobs' ids too (the jobs themselves in self._raw)
        self._owners: dict[str, str] = {}  # job id -> client, while the job is queued or running
        self._lock = threading.Condition()  # guards the queue; the worker waits on it for jobs
        self._changed = threading.Condition()  # long-polls wait on it for job state changes
        self._change_count = 0
        self._stopping = False
        self._cancelled: set[str] = set()  # jobs the player stopped while they run (cleared when their batch ends)
        self._threads: list[threading.Thread] = []
        self._running = 0  # batches being generated now (guarded by _lock)
        self._counting = threading.Lock()  # guards the counters below: several batch threads update them
        # Counters for /healthz (since this process started).
        self.turns_served = self.jobs_failed = self.batches = self.batched_jobs = 0
        self._latencies: deque[float] = deque(maxlen=2000)
        self._batch_seconds: deque[float] = deque(maxlen=50)
        if store.shared:
            store.database.listen(self._heard)

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self, recovered: list[str] = ()) -> None:
        """Start the thread; `recovered` (jobs accepted before a crash) are queued first, whatever max_size."""
        with self._lock:
            self._queue.extend(recovered)
        planners = [self.planner] if self.concurrent_batches == 1 else self.planner.thread_views(
            self.concurrent_batches)
        log.info("model worker started (max_batch=%d, max_size=%d, concurrent_batches=%d)", self.max_batch,
                 self.max_size, self.concurrent_batches)
        for index, planner in enumerate(planners):
            name = "gamio-model-worker" + (f"-{index}" if len(planners) > 1 else "")
            self._threads.append(threading.Thread(target=self._loop, args=(planner,), name=name, daemon=True))
            self._threads[-1].start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def pipeline(self):
        """The main model's turn pipeline."""
        return self.planner.pipelines[MAIN]

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads) and not self._stopping

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
                if self.store.shared:  # the client's stored jobs in every process, and its raw jobs here
                    mine = self.store.pending_of(client) + sum(
                        1 for job_id, owner in self._owners.items() if owner == client and job_id in self._raw)
                if mine >= self.max_per_client:
                    raise QueueFull(f"you already have {mine} turns waiting or being generated (the limit per "
                                    f"client is {self.max_per_client}); wait for them first", self.retry_after_s())
            if len(self._queue) >= self.max_size:
                raise QueueFull(f"the queue is full ({self.max_size} turns waiting); try again later",
                                self.retry_after_s())
            job = accept()
            job_id = job.id if isinstance(job, RawJob) else job
            if isinstance(job, RawJob):
                self._raw[job_id] = job
            self._queue.append(job_id)
            self.hub.open(job_id, time.time())
            if client is not None:
                self._owners[job_id] = client
            self._lock.notify_all()
            return job_id, len(self._queue)

    def cancel(self, job_id: str) -> None:
        """The player stops a job (the store already says `cancelled`): it leaves the queue and its client's share
        at once, and its stream ends. A running job's batch goes on; its result is refused when it is written."""
        with self._lock:
            if job_id in self._queue:
                self._queue.remove(job_id)
            self._owners.pop(job_id, None)
            self._cancelled.add(job_id)  # a running batch stops its rows at the next token (engines that can)
        self.hub.publish(job_id, "cancelled", {})
        self._notify()

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
        return max(1, math.ceil(per_batch * max(1, len(self._queue)) / (self.max_batch * self.concurrent_batches)))

    def wait(self, job_id: str, timeout_s: float) -> dict:
        """The job from the store once it is done or failed, or when `timeout_s` has passed (long-poll)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            with self._changed:
                seen = self._change_count
            job = self.store.job(job_id)
            remaining = deadline - time.monotonic()
            if job.final or remaining <= 0:
                return job
            with self._changed:
                if self._change_count == seen:  # nothing changed since we read the job: sleep until it does
                    self._changed.wait(min(remaining, SHARED_WAIT_S) if self.store.shared else remaining)

    def _notify(self) -> None:
        with self._changed:
            self._change_count += 1
            self._changed.notify_all()
        self.hub.notify()

    def _heard(self, payload: str) -> None:
        """A notification from a process on the shared database (this one too): `<event> <job id>`."""
        event, _, job_id = payload.partition(" ")
        if event in ("done", "failed"):
            self.hub.finish_elsewhere(job_id)
        if event == "queued":
            with self._lock:
                self._lock.notify_all()  # an idle worker here may take it
        else:
            self._notify()

    # ---- the worker thread -------------------------------------------------------------------------------

    def _loop(self, planner: JobPlanner) -> None:
        database = self.store.database
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    if self.store.shared:  # not only our own queue: jobs no live process holds too
                        self._lock.wait(ADOPT_INTERVAL_S)
                        break
                    self._lock.wait()
                if self._stopping:
                    return
            writable = database.probe(self.probe_interval_s) is None
            with self._lock:
                # No writes possible: the game jobs wait queued; raw jobs (OpenAI / Kobold) need no database, so
                # they still run, instead of holding their client (and a request thread) until writes work.
                batch = [job_id for job_id in self._queue if writable or job_id in self._raw][:self.max_batch]
                for job_id in batch:
                    self._queue.remove(job_id)
                if not writable and not batch:
                    self._lock.wait(self.probe_interval_s)
            if not writable and not batch:
                continue
            if not batch and self.store.shared:
                try:
                    batch = self.store.claim_next(self.max_batch)
                except StorageUnavailable:
                    continue
                if batch:
                    log.info("took over %d job(s) no live process holds", len(batch))
            if not batch:  # another batch thread took them
                continue
            with self._lock:
                # Batch i of this process gets seed + i; the batches running beside it count too, so two
                # batches generating at once never share a seed.
                seed = None if self.seed is None else self.seed + self.batches + self._running
                self._running += 1
            unfinished = set(batch)
            try:
                self._run(batch, unfinished, planner, seed)
            except StorageUnavailable as exc:
                log.warning("the database refused a write (%s): %d job(s) wait for it", exc, len(unfinished))
            except Exception:  # noqa: BLE001 - the worker must survive anything a batch does
                log.exception("batch of %d jobs failed unexpectedly", len(batch))
                for job_id in list(unfinished):
                    self._fail(job_id, "internal error while generating this turn", unfinished)
                for job_id in batch:  # a raw job's client waits on it: it ends, whatever happened
                    self._finish_raw(job_id, None)
            finally:
                idle = self._requeue(batch, unfinished)
                self._notify()
            if idle and writable and database.checkpoint_due(0, idle=True):
                database.checkpoint()  # idle: the main file gets every finished turn now

    def _requeue(self, batch: list[str], unfinished: set[str]) -> bool:
        """Jobs of `batch` the database could not finish go back to the front, in their order; the others leave
        the queue (and their client's share). True when nothing waits or runs any more."""
        with self._lock:
            self._queue.extendleft(reversed([job_id for job_id in batch if job_id in unfinished]))
            for job_id in batch:
                self._cancelled.discard(job_id)
                if job_id not in unfinished:
                    self._owners.pop(job_id, None)
            self._running -= 1
            return not self._queue and not self._running

    def _run(self, batch: list[str], unfinished: set[str], planner: JobPlanner | None = None,
             seed: int | None = None) -> None:
        """Generate `batch`; a job leaves `unfinished` once its outcome is in the store."""
        started = time.perf_counter()
        planner = planner or self.planner
        stored = [job_id for job_id in batch if job_id not in self._raw]
        won = set(self.store.claim(stored)) if stored else set()  # raw jobs alone touch no database
        for job_id in stored:
            if job_id not in won:  # another process generates it (shared database): not ours to write
                unfinished.discard(job_id)
        batch = [job_id for job_id in batch if job_id in self._raw or job_id in won]
        self._notify()
        rows, contexts = [], {}
        for job_id in batch:
            self.hub.publish(job_id, "running", {})
            try:
                contexts[job_id] = None if job_id in self._raw else self.store.job_context(job_id)
                rows += planner.rows(self._raw.get(job_id), contexts[job_id]) if job_id in self._raw else \
                    planner.rows(job_id, contexts[job_id])
            except StorageUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                self._fail(job_id, f"cannot read the job: {exc}", unfinished)
        outcomes = planner.run(rows, seed, lambda job_id, kind, text: self.hub.publish(job_id, kind,
                                                                                              {"text": text}),
                               cancelled=self._cancelled.__contains__)
        # Raw jobs first: they need no database, so a write refused below cannot send one back to the queue
        # to run (and stream) a second time.
        for job_id, ctx in sorted(contexts.items(), key=lambda item: item[0] not in self._raw):
            mine = [i for i, row in enumerate(rows) if row.job == job_id]
            stored_variants, results, error = variants([rows[i] for i in mine], [outcomes[i] for i in mine],
                                                       self.names)
            if job_id in self._raw:
                self._finish_raw(job_id, [outcomes[i] for i in mine])
                unfinished.discard(job_id)
            elif error is not None:
                log.warning("job %s failed: %s", job_id, error)
                self._fail(job_id, error, unfinished)
            else:
                main = next((r for r, i in zip(results, mine) if rows[i].model == MAIN), results[0])
                written = self.store.complete(job_id, variants=stored_variants, action_en=main.action_en,
                                              world_en=main.world_en, prompt=main.prompt)
                if written:
                    with self._counting:
                        self.turns_served += 1
                    self._latencies.append(time.time() - ctx.job.created)
                    self.hub.publish(job_id, "done", {})
                elif written is None:
                    log.info("job %s is no longer this process's (cancelled, or taken over by another process "
                             "after its lease lapsed): its result is not written", job_id)
                else:
                    self._count_failure()
                    self.hub.publish(job_id, "failed", {"error": "the game changed while this turn was generated"})
                unfinished.discard(job_id)
        with self._counting:
            self.batches += 1
            self.batched_jobs += len(batch)
        self._batch_seconds.append(time.perf_counter() - started)
        log.info("batch of %d done in %.2f s (%d waiting)", len(batch), time.perf_counter() - started,
                 self.queue_depth)

    def _count_failure(self) -> None:
        with self._counting:
            self.jobs_failed += 1

    def _finish_raw(self, job_id: str, outcomes) -> None:
        with self._lock:
            job = self._raw.pop(job_id, None)
        if job is None:
            return
        from adventure.turns import TurnFailure

        job.results = outcomes or [TurnFailure("internal error while generating")]
        failed = next((o.reason for o in job.results if isinstance(o, TurnFailure)), None)
        self.hub.publish(job_id, "failed" if failed else "done", {"error": failed} if failed else {})
        job.finished.set()

    def _fail(self, job_id: str, reason: str, unfinished: set[str]) -> None:
        """Mark the job failed; if the database refuses even that, it stays unfinished (and runs again later)."""
        if job_id in self._raw:
            return
        try:
            self.store.fail(job_id, without_paths(reason))
        except StorageUnavailable:
            return
        except Exception:  # noqa: BLE001
            log.exception("cannot mark job %s failed", job_id)
        self._count_failure()
        self.hub.publish(job_id, "failed", {"error": without_paths(reason)})
        unfinished.discard(job_id)

    # ---- /healthz ----------------------------------------------------------------------------------------

    def stats(self) -> dict:
        latencies = list(self._latencies)  # one snapshot for both, so p50 <= p95 even while turns finish

        def percentile(values: list[float], q: float) -> float | None:
            value = shared_percentile(values, q)
            return None if value is None else round(value, 3)

        first_token = list(self.hub.first_token_s)
        return {"queue_depth": self.queue_depth, "max_batch": self.max_batch, "queue_max_size": self.max_size,
                "concurrent_batches": self.concurrent_batches, "batches_running": self._running,
                "turns_served": self.turns_served, "jobs_failed": self.jobs_failed, "batches": self.batches,
                "mean_batch_size": round(self.batched_jobs / self.batches, 3) if self.batches else None,
                "latency_p50_s": percentile(latencies, 50), "latency_p95_s": percentile(latencies, 95),
                "time_to_first_token_p50_s": percentile(first_token, 50),
                "time_to_first_token_p95_s": percentile(first_token, 95)}
