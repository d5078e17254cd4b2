"""Wiring: from the serving config to a running service (store, model, translators, engine, worker).

The model is loaded before the server listens, so a missing model is one clear error at start, and a server
that answers /healthz can generate. Jobs left by a crash are queued again before new ones are accepted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.models import load_causal_lm
from adventure.paths import artifacts_dir
from serving.game import TurnEngine
from serving.model_choice import ModelChoice, choose_model
from serving.store import Store
from serving.worker import ModelWorker

log = logging.getLogger(__name__)


@dataclass
class Limits:
    max_action_chars: int = 500
    max_world_chars: int = 4000
    max_body_bytes: int = 65536
    max_wait_s: float = 30.0


@dataclass
class GameService:
    store: Store
    worker: ModelWorker
    choice: ModelChoice
    limits: Limits
    default_world: str

    def close(self) -> None:
        self.worker.stop()
        self.store.close()


def generation_settings(cfg: DictConfig) -> GenerationSettings:
    values = OmegaConf.to_container(cfg.generation, resolve=True)
    try:
        return GenerationSettings.from_mapping(values)
    except (TypeError, ValueError) as exc:
        raise GamioError(f"bad generation settings: {exc}") from None


def load_translators(cfg: DictConfig, artifacts: Path):
    """(ru->en, en->ru) Translators for an English model, sharing one persistent cache."""
    from adventure.translation import Translator
    from adventure.translation_cache import SQLiteTranslationCache

    settings = cfg.translation
    cache = SQLiteTranslationCache(settings.cache) if settings.get("cache") else None
    common = dict(artifacts_dir=artifacts, device=str(cfg.device), batch_size=int(settings.batch_size),
                  num_beams=settings.get("num_beams"), cache=cache)
    to_english = Translator(str(settings.ru_en), "ru-en", show_progress=False, **common)
    to_russian = Translator(str(settings.en_ru), "en-ru", show_progress=False, **common)
    return to_english, to_russian


def build_service(cfg: DictConfig) -> GameService:
    artifacts = artifacts_dir(cfg)
    choice = choose_model(str(cfg.model_spec), str(cfg.get("language", "auto")), artifacts)
    settings = generation_settings(cfg)
    if cfg.get("torch_threads"):
        import torch

        torch.set_num_threads(int(cfg.torch_threads))
    log.info("loading model %s (%s) on %s", choice.name, choice.language, cfg.device)
    model, tokenizer, source = load_causal_lm(choice.spec, artifacts, device=str(cfg.device))
    to_english = to_russian = None
    if choice.language == "en":
        to_english, to_russian = load_translators(cfg, artifacts)
    engine = TurnEngine(model, tokenizer, settings, history_turns=int(cfg.history_turns), language=choice.language,
                        to_english=to_english, to_russian=to_russian,
                        seed=None if cfg.get("seed") is None else int(cfg.seed))

    store = Store(Path(str(cfg.db)).expanduser())
    recovered = store.recover()
    if recovered:
        log.info("recovered %d job(s) accepted before the last stop; they run first", len(recovered))
    worker = ModelWorker(engine, store, max_size=int(cfg.queue.max_size), max_batch=int(cfg.queue.max_batch))
    worker.start(recovered)
    limits = Limits(max_action_chars=int(cfg.limits.max_action_chars),
                    max_world_chars=int(cfg.limits.get("max_world_chars", 4000)),
                    max_body_bytes=int(cfg.limits.max_body_bytes), max_wait_s=float(cfg.limits.get("max_wait_s", 30)))
    log.info("model %s loaded from %s: context %d tokens, %d new tokens per turn, max_batch=%d",
             choice.name, source.location, engine.context_length, settings.max_new_tokens, worker.max_batch)
    return GameService(store=store, worker=worker, choice=choice, limits=limits, default_world=str(cfg.default_world))
