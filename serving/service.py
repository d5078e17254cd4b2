"""Wiring: from the serving config to a running service (store, engine, translators, turn pipeline, worker).

The model is loaded before the server listens, so a missing model is one clear error at start, and a server
that answers /healthz can generate. An existing database is opened (and its integrity checked) before the model
loads, so a damaged one is refused at once; a new one is created only once the model is there, so a refused
start leaves no database behind. Jobs left by a crash are queued again before new ones are accepted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adventure.engines import load_engine
from adventure.generation import GenerationSettings
from adventure.paths import artifacts_dir
from adventure.translation import build_translators
from adventure.turns import TurnPipeline
from adventure.errors import GamioError
from serving.config import LimitsConfig
from serving.janitor import Janitor
from serving.limits import ClientLimits
from serving.model_choice import ModelChoice, choose_model
from serving.store import Store
from serving.worker import ModelWorker

log = logging.getLogger(__name__)


@dataclass
class GameService:
    store: Store
    worker: ModelWorker
    choice: ModelChoice
    limits: LimitsConfig
    default_world: str
    janitor: Janitor
    clients: ClientLimits

    def close(self) -> None:
        """Stop the threads that write, then checkpoint and close the database (SIGTERM comes here too)."""
        self.worker.stop()
        self.janitor.stop()
        self.store.close()
        pipeline = self.worker.pipeline
        pipeline.engine.close()
        if pipeline.translators is not None:
            pipeline.translators.close()


def build_pipeline(cfg: DictConfig, choice: ModelChoice, artifacts: Path) -> TurnPipeline:
    """The engine serving `choice`, wrapped in translation for an English model."""
    log.info("loading model %s (%s) with engine %s", choice.name, choice.language, cfg.engine.name)
    engine = load_engine(cfg.engine, choice.spec, artifacts)
    translators = build_translators(cfg.translation, artifacts) if choice.language == "en" else None
    settings = GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True))
    return TurnPipeline(engine, settings, language=choice.language, translators=translators,
                        history_turns=int(cfg.history_turns))


def load_model(cfg: DictConfig, artifacts: Path) -> tuple[ModelChoice, TurnPipeline]:
    """The model and its pipeline; an error names the `model` setting."""
    try:
        choice = choose_model(str(cfg.model), str(cfg.language), artifacts)
        return choice, build_pipeline(cfg, choice, artifacts)
    except GamioError as exc:
        prefix = f"model={cfg.model}: "
        message = str(exc)
        raise GamioError(message if message.startswith(prefix) else prefix + message) from None


def build_service(cfg: DictConfig) -> GameService:
    artifacts = artifacts_dir(cfg)
    db_path = Path(str(cfg.db)).expanduser()
    store = Store(db_path) if db_path.exists() else None
    try:
        choice, pipeline = load_model(cfg, artifacts)
    except BaseException:
        if store is not None:
            store.close()
        raise
    store = store or Store(db_path)
    recovered = store.recover()
    if recovered:
        log.info("recovered %d job(s) accepted before the last stop; they run first", len(recovered))
    limits = LimitsConfig(**OmegaConf.to_container(cfg.limits, resolve=True))
    worker = ModelWorker(pipeline, store, max_size=int(cfg.queue.max_size), max_batch=int(cfg.queue.max_batch),
                         seed=cfg.seed, max_per_client=limits.max_queued_per_client)
    worker.start(recovered)
    janitor = Janitor(store, checkpoint_interval_s=float(cfg.storage.checkpoint_interval_s),
                      expire_after_days=cfg.games.expire_after_days, expire_every_s=float(cfg.games.expire_every_s))
    janitor.start()
    log.info("model %s ready: context %d tokens, %d new tokens per turn, max_batch=%d", choice.name,
             pipeline.engine.context_length, pipeline.settings.max_new_tokens, worker.max_batch)
    return GameService(store=store, worker=worker, choice=choice, limits=limits, default_world=str(cfg.default_world),
                       janitor=janitor, clients=ClientLimits(limits))
