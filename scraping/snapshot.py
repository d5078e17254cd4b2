"""`source=snapshot`: rebuild story trees from a raw-page cache folder alone, with no network.

The folder is the one `source=cys` writes (scraping/page_cache.py), so a crawl made once (or shipped with
the tests) gives the same trees on any machine. A link whose page is not in the folder is listed as a
failed link of its story and its branch is left out; a story without its start page fails.
"""
from __future__ import annotations

from pathlib import Path

from adventure.errors import GamioError
from scraping.crawler import CrawlSettings, StoryCrawl, crawl_stories
from scraping.page_cache import PageCache


def read_snapshot(path: str | Path, settings: CrawlSettings, story_ids=None) -> list[StoryCrawl]:
    path = Path(path)
    if not path.is_dir():
        raise GamioError(f"snapshot folder not found: {path} (set source.path to a page cache folder)")
    with PageCache(path, read_only=True) as cache:
        ids = [str(s) for s in story_ids] if story_ids else cache.story_ids()
        if not ids:
            raise GamioError(f"snapshot {path} holds no story start pages")
        return crawl_stories(ids, cache, settings, client=None)
