"""The scraping config: every key, its default and its meaning (configs/scraping.yaml lists only the groups).

    python -m scraping [source=sample|cys|snapshot|trees] [translator=none|opus_mt] [out_dir=<dir>]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from adventure.config import CT2_COMPUTE_TYPES, PathsConfig, TranslationConfig, setting
from scraping.site_protocol import DEFAULT_ENDING_LINKS


def _ratios_problem(ratios) -> str | None:
    from adventure.errors import GamioError
    from scraping.dataset import split_ratios

    try:
        split_ratios(ratios)
    except (GamioError, TypeError, ValueError) as exc:
        return str(exc).removeprefix("dataset.ratios").lstrip(": ")
    return None


@dataclass
class SourceConfig:
    """One schema for every source (configs/source/<name>.yaml sets what it uses)."""
    name: str = setting(choices=("sample", "cys", "snapshot", "trees"))
    language: str = setting("en", choices=("ru", "en"), help="of trees that do not say (scraped trees are English)")
    path: Optional[str] = setting(None, help="trees: a folder of tree JSON files; snapshot: a page cache folder")
    story_ids: Any = setting([], help='e.g. "source.story_ids=[1234,5678]"; snapshot: empty = every story')
    base_url: str = setting("https://chooseyourstory.com")
    delay: float = setting(1.0, ge=0, help="seconds between requests (be polite to the live site)")
    max_pages: int = setting(2000, ge=1, help="pages per story (start page and every link followed)")
    max_depth: int = setting(100, ge=1, help="deepest choice from the start page")
    user_agent: str = setting("gamio-scraper/0.1 (research; a few requests per second at most)")
    respect_robots: bool = setting(True)
    timeout: float = setting(20.0, gt=0, help="seconds, on every request")
    max_retries: int = setting(5, ge=0, help="on 429/5xx/timeouts, with exponential backoff (Retry-After honoured)")
    backoff: float = setting(1.0, ge=0, help="first backoff in seconds, doubled per retry")
    max_backoff: float = setting(60.0, ge=0)
    cache_dir: str = setting("${out_dir}/cache/cys", help="raw pages + SQLite index; a rerun fetches nothing it has")
    ending_links: List[str] = setting(list(DEFAULT_ENDING_LINKS), help="never followed; the page holding them is an ending")


@dataclass
class TranslatorConfig:
    """`translator=none|opus_mt`: whether trees not in Russian are translated; the settings default to the shared
    `translation` group's (configs/translation/), so `translation=tiny` makes scraping translate offline too."""
    name: str = setting(choices=("none", "opus_mt"))
    direction: str = setting("en-ru", choices=("en-ru", "ru-en"), help="stories are translated this way")
    model: Optional[str] = setting(None, help="hub id | folder | tiny; null: translation.en_ru (or ru_en)")
    device: str = setting("${translation.device}")
    batch_size: int = setting("${translation.batch_size}", ge=1)
    num_beams: Optional[int] = setting("${translation.num_beams}", ge=1)
    cache: Optional[str] = setting("${translation.cache}", help="SQLite translation cache; reruns translate nothing twice")
    engine: str = setting("${translation.engine}", choices=("hf", "ct2"), help="hf | ct2 (CTranslate2)")
    compute_type: str = setting("${translation.compute_type}", choices=CT2_COMPUTE_TYPES, help="ct2 only")
    threads: Optional[int] = setting("${translation.threads}", ge=1, help="ct2 only: CTranslate2 intra_threads")


@dataclass
class DatasetConfig:
    ratios: Dict[str, float] = setting({"train": 0.8, "validation": 0.1, "test": 0.1},
                                       check=_ratios_problem,
                                       help="whole stories go to one split, chosen by a hash of tree_id")
    history_turns: int = setting(10, ge=0, help="the seed fed the model the player's last 10 actions")


@dataclass
class ScrapingConfig:
    paths: PathsConfig = MISSING
    source: SourceConfig = MISSING
    translation: TranslationConfig = MISSING  # the shared translator settings (configs/translation/)
    translator: TranslatorConfig = MISSING  # none | opus_mt: whether and how trees not in Russian are translated
    out_dir: str = setting("${paths.artifacts}/data", help="trees/, dataset/, samples.jsonl, stats.json")
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
