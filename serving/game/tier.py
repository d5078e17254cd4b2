"""The game tier: the only place with game rules. web/ and compat/ parse a request, make one call here and show
the record it returns; storage/ keeps the world and queue/ generates.

Rules decided here: one pending job per game (409 before any 429), the order of refusals (the game's state, then
the client's rate, then its share of the queue, then the queue's bound), the arena's coin flip (a blind
two-model turn for `arena.rate` of an arena game's turns), steering that must fit the model's context, imports
checked against the server's limits, and raw jobs for the OpenAI / Kobold endpoints.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from adventure import token_probs
from adventure.engines.base import health
from adventure.generation import GenerationSettings
from adventure.turns import TurnFailure, TurnPipeline
from serving.config import ApiConfig, LimitsConfig, SteeringConfig
from serving.errors import BadRequest, Conflict, NotFound, TooLarge, Unavailable
from serving.game.context import context_view, steering_update
from serving.game.scenarios import Scenario
from serving.game.turn_input import move_of
from serving.janitor import Janitor
from serving.limits import ClientLimits
from serving.model_choice import ModelChoice
from serving.queue.jobs import MAIN, RawJob
from serving.queue.worker import ModelWorker, without_paths
from serving.storage import Store
from serving.storage.story import ARENA_STATES, EXPORT_FORMAT, StoryEditor

__all__ = ["ARENA_STATES", "EXPORT_FORMAT", "GameTier"]
RAW_WAIT_S = 900.0  # an OpenAI / Kobold client waits this long for its reply


@dataclass
class GameTier:
    store: Store
    worker: ModelWorker
    choice: ModelChoice
    limits: LimitsConfig
    default_world: str
    janitor: Janitor
    clients: ClientLimits
    story: StoryEditor
    presets: dict[str, GenerationSettings]
    viewer: TurnPipeline  # the main pipeline for request threads: its own tokenizer (the context view)
    steering: SteeringConfig
    api: ApiConfig
    arena_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    scenarios: dict[str, Scenario] = field(default_factory=dict)  # ready-made openings (game/scenarios.py)

    @property
    def arena_models(self) -> list[str]:
        return [name for key, name in self.worker.names.items() if key != MAIN]

    @property
    def default_preset(self) -> str:
        return self.worker.pipeline.settings.name

    @property
    def engine_name(self) -> str:
        return self.worker.pipeline.engine.name

    def close(self) -> None:
        """Stop the threads that write, then checkpoint and close the database (SIGTERM comes here too)."""
        self.worker.stop()
        self.janitor.stop()
        self.store.close()
        for pipeline in self.worker.planner.pipelines.values():
            pipeline.engine.close()
            if pipeline.translators is not None:
                pipeline.translators.close()

    def health(self) -> tuple[dict, bool]:
        """/healthz: the body and whether the server can take and finish turns now."""
        write_error = self.store.database.probe()  # while writes fail, try one: recovery needs no restart
        remote = health(self.worker.pipeline.engine)  # engine=openai: is the inference server answering now?
        ok = self.worker.alive and write_error is None and (remote is None or remote["ok"])
        body = {"status": "ok" if ok else "unavailable", "model": self.choice.name, "language": self.choice.language,
                "engine": self.worker.pipeline.engine.description,
                "database": "ok" if write_error is None else f"cannot be written: {write_error}",
                "long_polls": self.clients.long_polls.active, "games_expired": self.janitor.expired,
                **self.worker.stats()}
        if remote is not None:
            body["remote"] = {key: value for key, value in remote.items() if key != "ok"}
        if not self.worker.alive:
            body["worker"] = "not running"
        return body, ok

    # ---- games -------------------------------------------------------------------------------------------

    def authorize(self, game_id: str, token: str | None) -> None:
        self.store.authorize(game_id, token)

    def game(self, game_id: str):
        return self.store.game(game_id)

    def create_game(self, world: str | None, arena: bool, client: str, scenario: str | None = None):
        """(game_id, token, the game); a blank world is the server's default, a scenario gives its own."""
        if scenario is not None:
            if world is not None and world.strip():
                raise BadRequest("send either 'world' or 'scenario', not both")
            if scenario not in self.scenarios:
                raise BadRequest(f"unknown scenario {scenario!r}; GET /api/scenarios lists them")
            world = self.scenarios[scenario].world
        if world is None or not world.strip():
            world = self.default_world
        self.clients.games.take(client)
        game_id, token = self.store.create_game(world, arena=arena)
        return game_id, token, self.store.game(game_id)

    def play(self, game_id: str, action: str, n: int, client: str, mode: str = "do",
             max_new_tokens: int | None = None) -> tuple[str, int]:
        """Queue a turn: (job_id, position). An arena game's turn is a blind two-model comparison for
        `arena.rate` of its turns. The empty action continues the story (game/turn_input.py: moves)."""
        arena = bool(self.arena_models) and self.store.game(game_id).arena and self.rng.random() < self.arena_rate
        return self._submit(game_id, "turn", client, action, n=n, arena=arena, mode=move_of(action, mode),
                            max_new_tokens=self.checked_length(max_new_tokens))

    @property
    def max_new_tokens_limit(self) -> int:
        """The longest reply a player may ask for: `limits.max_new_tokens`, and half the model's context (the
        prompt keeps the other half)."""
        return max(1, min(self.limits.max_new_tokens, self.viewer.engine.context_length // 2))

    def checked_length(self, max_new_tokens: int | None) -> int | None:
        if max_new_tokens is not None and not 1 <= max_new_tokens <= self.max_new_tokens_limit:
            raise BadRequest(f"'max_new_tokens' must be from 1 to {self.max_new_tokens_limit}, got {max_new_tokens}")
        return max_new_tokens

    def cancel(self, job_id: str) -> None:
        """Stop a queued or running job: it ends `cancelled`, nothing of it is stored, its game is free at once
        (409 for a job that is over)."""
        self.store.cancel(job_id)
        self.worker.cancel(job_id)

    def retry(self, game_id: str, client: str) -> tuple[str, int]:
        turns = self.store.game(game_id).turns
        if turns:  # (no turn: the store's 409)
            self.story.refuse_full(turns[-1])
        return self._submit(game_id, "retry", client)

    def _submit(self, game_id: str, kind: str, client: str, action: str | None = None, n: int = 1,
                arena: bool = False, mode: str | None = None, max_new_tokens: int | None = None) -> tuple[str, int]:
        """409 first (the game's own state), then the client's rate and share, then the queue."""

        def check():
            self.store.check_job(game_id, kind)
            self.clients.turns.take(client)

        share = self.limits.max_queued_per_client if self.store.shared else None
        return self.worker.submit(lambda: self.store.add_job(game_id, kind, action, n=n, arena=arena, client=client,
                                                             max_per_client=share, mode=mode,
                                                             max_new_tokens=max_new_tokens),
                                  check=check, client=client)

    def undo(self, game_id: str) -> None:
        self.store.undo(game_id)

    # ---- jobs --------------------------------------------------------------------------------------------

    def job(self, job_id: str):
        return self.store.job(job_id)

    def wait_job(self, job_id: str, wait_s: float, client: str):
        """The job once final or after `wait_s` (capped); beyond the long-poll caps: its state now."""
        self.store.job(job_id)  # 404 before waiting
        with self.clients.long_polls.slot(client) as granted:
            return self.worker.wait(job_id, min(wait_s, self.limits.max_wait_s) if granted else 0)

    def position(self, job_id: str) -> int | None:
        return self.worker.position(job_id)

    @property
    def write_error(self) -> str | None:
        return self.store.database.write_error

    def long_poll_slot(self, client: str):
        return self.clients.long_polls.slot(client)

    def events(self, job_id: str, after: int, timeout_s: float):
        """(events after id `after`, finished?) of the job's stream, waiting up to `timeout_s` (queue/streams.py)."""
        return self.worker.hub.wait(job_id, after, timeout_s)

    def streamed_here(self, job_id: str) -> bool:
        """Whether this process holds the job's stream events (it was accepted or generated here)."""
        return self.worker.hub.known(job_id)

    def same_attempt(self, event_id: int) -> bool:
        """Whether a stream's Last-Event-ID comes from this process's run of its job (queue/streams.py)."""
        return self.worker.hub.same_attempt(event_id)

    def text_streamed(self, job_id: str) -> bool:
        return self.worker.hub.wrote(job_id)

    # ---- story: variants, edits, steering, sharing, export / import ------------------------------------------

    def choose(self, game_id: str, index: int, variant: int) -> dict | None:
        return self.story.choose(game_id, index, variant)

    def edit(self, game_id: str, index: int, action: str | None, result: str | None, client: str) -> None:
        """An edit counts as a turn in the client's rate limit: each one grows the story."""
        self.clients.turns.take(client)
        self.story.edit(game_id, index, action, result)

    def redo(self, game_id: str) -> None:
        self.story.redo(game_id)

    def patch(self, game_id: str, data: dict) -> None:
        """Steering and preset; a refused change changes nothing. Memory and the note must fit the context."""
        game = self.store.game(game_id)
        data = dict(data)
        length = data.pop("max_new_tokens", game.max_new_tokens)
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
            raise BadRequest(f"'max_new_tokens' must be an integer from 1 to {self.max_new_tokens_limit} or null, "
                             f"not {length!r}")
        self.checked_length(length)
        steering, preset = steering_update(game, data, self.presets)
        if not self.viewer.english:  # memory and the note are never cut: they must fit this model's context
            self.context(game, "", steering=steering, preset=preset, history=False)
        self.story.set_steering(game_id, steering.to_dict(), preset, "preset" in data)
        if length != game.max_new_tokens:
            self.store.set_max_new_tokens(game_id, length)

    def context(self, game, action: str, *, steering=None, preset: str | None = None, history: bool = True,
                mode: str | None = None) -> dict:
        """The prompt the next turn of `game` with `action` would send (the context view)."""
        if len(action) > self.limits.max_action_chars:
            raise TooLarge(f"'action' is {len(action)} characters long; the limit is {self.limits.max_action_chars}")
        return context_view(self.viewer, game, action, self.presets, steering=steering, preset=preset,
                            history=history, mode=mode)

    def token_probs(self, game_id: str, index: int, variant: int | None, top: int) -> dict:
        """Per token of a turn's reply (the chosen variant, or `variant`): its probability and the alternatives
        (adventure/token_probs.py). 409 where they are not available: beam presets, engines without the full
        distribution, English models, replies another model or the player wrote, turns without a stored prompt."""
        game = self.store.game(game_id)
        if not 0 <= index < len(game.turns):
            raise NotFound(f"this game has no turn {index}")
        turn = game.turns[index]
        variant = turn.chosen if variant is None else variant
        if not 0 <= variant < len(turn.variants):
            raise BadRequest(f"turn {index} has variants 0..{len(turn.variants) - 1}, not {variant}")
        preset = self.presets.get(game.preset or self.default_preset) or self.worker.pipeline.settings
        engine, model = self.viewer.engine, turn.variants[variant].model
        reason = (f"engine={self.engine_name} does not give the full distribution" if not token_probs.supported(engine)
                  else f"the preset {preset.name} is a beam search" if preset.num_beams > 1
                  else "an English model's reply is a translation" if self.viewer.english or game.english
                  else "this reply was not written by the served model" if model not in (None, self.choice.name)
                  else "this turn's prompt was not stored (an imported turn)" if not turn.prompt else None)
        if reason:
            raise Conflict(f"token probabilities are not available: {reason}")
        probs = token_probs.reply_probs(engine, turn.prompt, turn.variants[variant].text, top)
        return {"turn": index, "variant": variant, "preset": preset.name, "model": self.choice.name,
                "tokens": [p.to_dict() for p in probs]}

    def share(self, game_id: str) -> str:
        return self.story.share(game_id)

    def unshare(self, game_id: str) -> None:
        self.story.unshare(game_id)

    def shared(self, share_id: str):
        """The game behind a read-only share id (404 for an unknown or revoked one)."""
        return self.store.game(self.story.shared_game(share_id))

    def export(self, game_id: str) -> dict:
        return self.story.export(game_id)

    def import_game(self, data: dict, client: str):
        """(game_id, token, the game) from an export already checked against the limits (game/imports.py)."""
        self.clients.games.take(client)
        game_id, token = self.story.import_game(data)
        return game_id, token, self.store.game(game_id)

    # ---- raw jobs (the OpenAI / Kobold endpoints) ------------------------------------------------------------

    def submit_raw(self, prompt: str, settings: GenerationSettings, n: int, client: str) -> RawJob:
        """Queue a raw prompt (n rows) for `client`, with a game turn's rate limit and share; the job to wait on."""
        job = RawJob(prompt, settings, n)
        self.worker.submit(lambda: job, check=lambda: self.clients.turns.take(client), client=client)
        return job

    def raw_results(self, job: RawJob) -> list:
        if not job.finished.wait(RAW_WAIT_S):
            raise Unavailable("the model did not answer in time; try again later")
        failed = next((r for r in job.results if isinstance(r, TurnFailure)), None)
        if failed is not None:
            raise Unavailable(f"{without_paths(failed.reason)}; try again later")
        return job.results

    def raw_outcome(self, job: RawJob) -> list | None:
        """The results once finished (within the wait), or None; a failure stays in the list."""
        return job.results if job.finished.wait(RAW_WAIT_S) else None

