"""Wiring: from the serving config to a running service (store, engines, translators, turn pipelines, worker).

The model is loaded before the server listens, so a missing model is one clear error at start, and a server
that answers /healthz can generate. An existing database is opened (and its integrity checked) before the model
loads, so a damaged one is refused at once; a new one is created only once the model is there, so a refused
start leaves no database behind. Jobs left by a crash are queued again before new ones are accepted.
Arena models (`arena.models`) are loaded beside the main one, each behind its own turn pipeline.
"""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adventure.engines import BEAMLESS, check_decoding, load_engine, require_engine
from adventure.engines.base import ThreadView
from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.paths import artifacts_dir
from adventure.translation import build_translators
from adventure.turns import TurnPipeline
from serving.config import ApiConfig, LimitsConfig, SteeringConfig, is_database_url
from serving.game.scenarios import load_scenarios
from serving.game.tier import GameTier
from serving.janitor import Janitor
from serving.limits import ClientLimits
from serving.model_choice import ModelChoice, choose_model
from serving.queue.jobs import MAIN, JobPlanner
from serving.queue.worker import ModelWorker
from serving.storage import open_store
from serving.storage.story import StoryEditor

log = logging.getLogger(__name__)
CONTINUOUS_BATCHES = 8  # batches in flight at once for an engine that batches continuously (queue.concurrent_batches)


def build_pipeline(cfg: DictConfig, choice: ModelChoice, artifacts: Path) -> TurnPipeline:
    """The engine serving `choice`, wrapped in translation for an English model."""
    log.info("loading model %s (%s) with engine %s", choice.name, choice.language, cfg.engine.name)
    engine = load_engine(cfg.engine, choice.spec, artifacts)
    translators = build_translators(cfg.translation, artifacts) if choice.language == "en" else None
    settings = GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True))
    return TurnPipeline(engine, settings, language=choice.language, translators=translators,
                        history_turns=int(cfg.history_turns),
                        world_info_scan_turns=int(cfg.steering.world_info_scan_turns),
                        world_info_share=float(cfg.steering.world_info_share))


def load_model(cfg: DictConfig, artifacts: Path, spec: str, key: str = "model") -> tuple[ModelChoice, TurnPipeline]:
    """A model and its pipeline; an error names the setting it came from."""
    try:
        choice = choose_model(spec, str(cfg.language) if key == "model" else "auto", artifacts)
        return choice, build_pipeline(cfg, choice, artifacts)
    except GamioError as exc:
        prefix = f"{key}={spec}: "
        message = str(exc)
        raise GamioError(message if message.startswith(prefix) else prefix + message) from None


def request_side(pipeline: TurnPipeline) -> TurnPipeline:
    """The main pipeline for request threads (the context view): a tokenizer of their own, since a fast tokenizer
    is not safe to share with the worker thread."""
    return pipeline.with_engine(ThreadView(pipeline.engine))


def offered_presets(cfg: DictConfig) -> dict[str, GenerationSettings]:
    """The presets games may choose (`presets`). An engine without beam search refuses a beam default at start
    (check_decoding: one error line, exit 2) and does not offer beam presets, so no game can pick a decoding the
    engine would not run."""
    engine = str(cfg.engine.name)
    require_engine(engine)
    check_decoding(engine, GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True)))
    presets = {name: GenerationSettings.load(name) for name in cfg.presets}
    refused = [name for name, settings in presets.items() if settings.num_beams > 1 and engine in BEAMLESS]
    if refused:
        log.warning("engine=%s has no beam search: presets %s are not offered", engine, refused)
    return {name: settings for name, settings in presets.items() if name not in refused}


def concurrent_batches(cfg: DictConfig, engine) -> int:
    """queue.concurrent_batches; null: several for an engine that batches continuously, else 1 (the barrier)."""
    if cfg.queue.concurrent_batches is not None:
        return int(cfg.queue.concurrent_batches)
    return CONTINUOUS_BATCHES if getattr(engine, "continuous", False) else 1


def build_service(cfg: DictConfig) -> GameTier:
    artifacts = artifacts_dir(cfg)
    presets = offered_presets(cfg)  # before anything loads: a refused preset costs no model load
    scenarios = load_scenarios(cfg.scenarios.folder, bool(cfg.scenarios.corpus), int(cfg.limits.max_world_chars))
    if str(cfg.engine.name) == "openai" and cfg.arena.models:
        raise GamioError(f"arena.models={list(cfg.arena.models)}: engine=openai serves one remote model "
                         f"(engine.model); run an arena with engine=hf, ct2 or vllm")
    db = str(cfg.db) if is_database_url(str(cfg.db)) else Path(str(cfg.db)).expanduser()
    # An existing SQLite file, or a PostgreSQL server: opened (and checked) before the model loads.
    store = open_store(db) if isinstance(db, str) or db.exists() else None
    pipelines, names = {}, {}
    try:
        choice, pipelines[MAIN] = load_model(cfg, artifacts, str(cfg.model))
        names[MAIN] = choice.name
        for index, spec in enumerate(cfg.arena.models):
            arena_choice, pipeline = load_model(cfg, artifacts, str(spec), f"arena.models[{index}]")
            if arena_choice.name in names.values():
                raise GamioError(f"arena.models[{index}]={spec}: its name {arena_choice.name!r} is taken; each "
                                 f"model of an arena needs its own")
            pipelines[arena_choice.name], names[arena_choice.name] = pipeline, arena_choice.name
    except BaseException:
        if store is not None:
            store.close()
        for pipeline in pipelines.values():
            pipeline.engine.close()
        raise
    store = store or open_store(db)
    store.lease_s = float(cfg.storage.lease_s)
    recovered = store.recover()
    if recovered:
        log.info("recovered %d job(s) accepted before the last stop; they run first", len(recovered))
    limits = LimitsConfig(**OmegaConf.to_container(cfg.limits, resolve=True))
    worker = ModelWorker(JobPlanner(pipelines, presets), store, max_size=int(cfg.queue.max_size),
                         max_batch=int(cfg.queue.max_batch), seed=cfg.seed, names=names,
                         max_per_client=limits.max_queued_per_client,
                         concurrent_batches=concurrent_batches(cfg, pipelines[MAIN].engine))
    worker.start(recovered)
    janitor = Janitor(store, checkpoint_interval_s=float(cfg.storage.checkpoint_interval_s),
                      expire_after_days=cfg.games.expire_after_days, expire_every_s=float(cfg.games.expire_every_s))
    janitor.start()
    main = pipelines[MAIN]
    log.info("model %s ready: context %d tokens, %d new tokens per turn, max_batch=%d, concurrent_batches=%d%s",
             choice.name, main.engine.context_length, main.settings.max_new_tokens, worker.max_batch,
             worker.concurrent_batches,
             f"; arena with {sorted(names.values())}" if len(names) > 1 else "")
    return GameTier(store=store, worker=worker, choice=choice, limits=limits, default_world=str(cfg.default_world),
                    janitor=janitor, clients=ClientLimits(limits, store if store.shared else None),
                    story=StoryEditor(store, int(cfg.limits.max_variants_per_turn)), presets=presets,
                    viewer=request_side(main),
                    steering=SteeringConfig(**OmegaConf.to_container(cfg.steering)), api=ApiConfig(**OmegaConf.to_container(cfg.api)), arena_rate=float(cfg.arena.rate),
                    scenarios=scenarios)
