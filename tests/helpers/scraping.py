"""The scraping config as `python -m scraping` composes it, for in-process runs of the stage."""
from __future__ import annotations

from pathlib import Path


def scraping_cfg(*overrides: str):
    from adventure.config import compose
    from scraping.config import ScrapingConfig

    return compose("scraping", list(overrides), ScrapingConfig)


def cys_overrides(tmp: Path, site, ids: str, out: Path) -> list[str]:
    """Crawl `ids` (e.g. "[1,2]") of the test site into `out`, fast (no delay, short backoff), untranslated."""
    return [f"paths.artifacts={tmp}", "source=cys", f"source.base_url={site.base_url}", f"source.story_ids={ids}",
            "source.delay=0", "source.backoff=0.2", "translator=none", f"out_dir={out}"]
