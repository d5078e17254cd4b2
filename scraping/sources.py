"""Where story trees come from: `source.name` = sample | cys | snapshot | trees.

Every source returns the same thing: the stories that worked (id, tree, source-specific stats) and the ones
that failed with a reason, so one bad story never stops the others.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adventure.errors import GamioError
from adventure.paths import SAMPLE_STORIES_DIR
from adventure.trees import StoryTree, read_tree_json, tree_from_dict

log = logging.getLogger(__name__)


@dataclass
class Story:
    story_id: str
    tree: StoryTree
    info: dict = field(default_factory=dict)  # e.g. crawl counters, the file it came from


@dataclass
class Loaded:
    stories: list[Story] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"story_id", "reason"[, "link_id", "action"]}


def load_source(source: DictConfig) -> Loaded:
    name = source.name
    if name in ("sample", "trees"):
        folder = SAMPLE_STORIES_DIR if name == "sample" else source.path
        if not folder:
            raise GamioError("source=trees needs source.path=<folder of AI Dungeon tree JSON files>")
        try:
            return load_tree_folder(Path(str(folder)), source.language)
        except GamioError as exc:  # the folder itself is missing or empty: name the setting
            raise GamioError(f"source.path={folder}: {exc}" if name == "trees" else str(exc)) from None
    return _crawled(name, source)


def load_tree_folder(folder: Path, default_language: str | None) -> Loaded:
    """Every *.json tree in `folder` (sorted); a file that is not a valid tree is listed as failed."""
    if not folder.is_dir():
        raise GamioError(f"story tree folder not found: {folder}")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise GamioError(f"no story trees (*.json) in {folder}")
    loaded = Loaded()
    for path in files:
        try:
            data = read_tree_json(path)  # a pathologically deep file fails alone, like any unreadable one
            if isinstance(data, dict) and default_language and not data.get("language"):
                # AI Dungeon's scraped trees carry no language; the source config says what they are.
                data = {**data, "language": default_language}
            tree = tree_from_dict(data, str(path))
        except GamioError as exc:
            log.error("skipping %s: %s", path, exc)
            reason = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            loaded.failed.append({"story_id": path.stem, "reason": reason})
            continue
        loaded.stories.append(Story(path.stem, tree, {"file": str(path)}))
    return loaded


def _story_ids(source: DictConfig) -> list[str]:
    ids = source.story_ids
    if ids is None:
        return []
    ids = OmegaConf.to_container(ids) if OmegaConf.is_config(ids) else ids
    if isinstance(ids, (str, int)):
        ids = [ids]  # source.story_ids=1234
    ids = [str(s).strip() for s in ids]
    bad = [s for s in ids if not re.fullmatch(r"[A-Za-z0-9_-]+", s)]
    if bad:
        raise GamioError(f"source.story_ids: not story ids: {bad} (numbers as on chooseyourstory.com)")
    return list(dict.fromkeys(ids))


def _crawled(name: str, source: DictConfig) -> Loaded:
    from scraping.crawler import CrawlSettings, crawl_stories
    settings = CrawlSettings(base_url=str(source.base_url), ending_links=tuple(source.ending_links),
                             max_pages=int(source.max_pages), max_depth=int(source.max_depth),
                             language=str(source.language))
    if name == "snapshot":
        from scraping.snapshot import read_snapshot

        if not source.path:
            raise GamioError("source=snapshot needs source.path=<page cache folder>")
        crawls = read_snapshot(Path(str(source.path)), settings, _story_ids(source) or None)
    else:
        from scraping.http_client import HttpClient
        from scraping.page_cache import PageCache

        ids = _story_ids(source)
        if not ids:
            raise GamioError('source=cys needs story ids, e.g. "source.story_ids=[1234,5678]"')
        client = HttpClient(user_agent=str(source.user_agent), timeout=float(source.timeout),
                            max_retries=int(source.max_retries), backoff=float(source.backoff),
                            max_backoff=float(source.max_backoff), delay=float(source.delay),
                            respect_robots=bool(source.respect_robots))
        with PageCache(Path(str(source.cache_dir))) as cache:
            crawls = crawl_stories(ids, cache, settings, client)
        client.close()
        log.info("%d HTTP requests (%d retries) for %d links followed", client.stats.requests,
                 client.stats.retries, sum(c.fetched for c in crawls))

    loaded = Loaded()
    for crawl in crawls:
        if crawl.tree is None:
            loaded.failed.append({"story_id": crawl.story_id, "reason": crawl.error})
            continue
        loaded.stories.append(Story(crawl.story_id, crawl.tree, crawl.summary()))
        loaded.failed.extend({"story_id": crawl.story_id, **failure} for failure in crawl.link_failures)
    return loaded
