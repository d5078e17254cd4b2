"""From queued jobs to generation rows and back: what one batch of the worker asks the turn pipelines for.

A game job becomes one row per variant: a turn asks for `n` variants of the main model (rows of one batch
sample independently), an arena turn for one variant from each of two different models in random order, a retry
for one more variant. A raw job (the OpenAI / Kobold endpoints) is `n` rows of a raw prompt; it lives only in
memory, since its client waits on the open request. Rows of all jobs that go to the same model run through that
model's pipeline together; each job then gets its rows back in variant order.
"""
from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field

from adventure.engines.base import ThreadView
from adventure.generation import GenerationSettings
from adventure.turns import TurnFailure, TurnInput, TurnPipeline, TurnResult
from serving.game.turn_input import job_input

MAIN = "main"


@dataclass
class RawJob:
    prompt: str
    settings: GenerationSettings
    n: int = 1
    id: str = field(default_factory=lambda: "raw-" + secrets.token_urlsafe(12))
    created: float = field(default_factory=time.time)
    results: list[TurnResult | TurnFailure] | None = None
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Row:
    job: str  # the job's id
    model: str  # which pipeline: MAIN or an arena model's name
    turn: TurnInput


class JobPlanner:
    def __init__(self, pipelines: dict[str, TurnPipeline], presets: dict[str, GenerationSettings],
                 rng: random.Random | None = None):
        self.pipelines, self.presets, self.rng = pipelines, presets, rng or random.Random()

    def thread_views(self, count: int) -> list["JobPlanner"]:
        """`count` planners for as many worker threads: the same engines, each thread with its own tokenizers
        (an engine that cannot run two calls at once gets them one after the other: ThreadView)."""
        locks = {name: threading.Lock() for name in self.pipelines}
        return [JobPlanner({name: pipeline.with_engine(ThreadView(pipeline.engine, locks[name]))
                            for name, pipeline in self.pipelines.items()}, self.presets, self.rng)
                for _ in range(count)]

    def rows(self, job, ctx=None) -> list[Row]:
        """A raw job's rows, or a stored job's (`ctx`: its storage JobContext)."""
        if isinstance(job, RawJob):
            return [Row(job.id, MAIN, TurnInput("", (), "", raw=job.prompt, settings=job.settings))] * job.n
        settings = self.presets.get(ctx.game.preset) if ctx.game.preset else None
        stored = ctx.job
        if stored.arena and len(self.pipelines) > 1:
            pair = self.rng.sample(sorted(self.pipelines), 2)  # two different models, in random order
            return [Row(stored.id, name, job_input(ctx, self.pipelines[name].english, settings,
                                                   self.pipelines[name].settings)) for name in pair]
        n = 1 if stored.kind == "retry" else stored.n
        main = self.pipelines[MAIN]
        return [Row(stored.id, MAIN, job_input(ctx, main.english, settings, main.settings))] * n

    def run(self, rows: list[Row], seed: int | None, publish, cancelled=None) -> list[TurnResult | TurnFailure]:
        """Every row's outcome, in order; `publish(job, kind, text)` hears the first row of each job as written;
        `cancelled(job)` true: its rows may stop (the player stopped the turn)."""
        outcomes: list[TurnResult | TurnFailure | None] = [None] * len(rows)
        first = {}
        for i, row in enumerate(rows):
            first.setdefault(row.job, i)
        for name in dict.fromkeys(r.model for r in rows):
            indexes = [i for i, r in enumerate(rows) if r.model == name]

            def listener(local: int, kind: str, text: str, indexes=indexes) -> None:
                row = indexes[local]
                if first[rows[row].job] == row:
                    publish(rows[row].job, kind, text)

            def stop(local: int, indexes=indexes) -> bool:
                return bool(cancelled and cancelled(rows[indexes[local]].job))

            out = self.pipelines[name].run([rows[i].turn for i in indexes], seed=seed, listener=listener, stop=stop)
            for i, outcome in zip(indexes, out):
                outcomes[i] = outcome
        return outcomes  # type: ignore[return-value]


def variants(rows: list[Row], outcomes, names: dict[str, str]) -> tuple[list[dict], list[TurnResult], str | None]:
    """A job's successful rows as stored variants [{text, text_en, model}], their results, and the first failure's
    reason when none succeeded."""
    done = [(row, out) for row, out in zip(rows, outcomes) if isinstance(out, TurnResult)]
    if not done:
        return [], [], next((out.reason for out in outcomes if isinstance(out, TurnFailure)), "no variant")
    return ([{"text": out.result, "text_en": out.result_en, "model": names[row.model]} for row, out in done],
            [out for _, out in done], None)
