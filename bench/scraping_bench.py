"""Scraping benchmarks: crawler requests per link and pages/s; translation batched vs one at a time vs cached.

    python bench/scraping_bench.py [--artifacts artifacts] [--sentences 96] [--quick] [--record]

1. Crawl the test site (tests/helpers/cys_test_site.py, 127.0.0.1, delay 0, no transient errors) from an empty cache:
   HTTP requests the site saw per link followed (goal <= 2) and pages/s. Baseline in the same run: the naive
   crawl public scrapers do, a reset GET before every POST (always exactly 2 per link).
2. Translate English story sentences with the tiny Marian (built into <artifacts>/models if missing): one
   sentence per call (baseline) vs batched (goal >= 4x), and a rerun served by the SQLite cache (goal >= 50x).
`--record` writes the table into the `## Scraping` section of bench/RESULTS.md (other sections untouched).
`--quick`: 16 sentences, one torch thread, and the test suite's 300-step tiny Marian in a temporary artifacts
folder (unless --artifacts is given), which the build cache usually already holds: well under a minute.
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.results import record_section  # noqa: E402

from tests.helpers.cys_test_site import CysTestSite  # noqa: E402
from scraping.crawler import CrawlSettings, ViewerSession, crawl_stories  # noqa: E402
from scraping.http_client import HttpClient  # noqa: E402
from scraping.page_cache import PageCache  # noqa: E402

STORIES = ["1", "2", "3"]


def bench_crawl(naive: bool) -> dict:
    original = ViewerSession.follow
    if naive:  # what public scrapers do: reset with a GET before every single link
        def follow(self, link_id):
            self.shown = None
            return original(self, link_id)
        ViewerSession.follow = follow
    try:
        with CysTestSite(transient={}) as site, tempfile.TemporaryDirectory() as tmp:
            client = HttpClient(delay=0, respect_robots=False)
            started = time.perf_counter()
            with PageCache(tmp) as cache:
                crawls = crawl_stories(STORIES, cache, CrawlSettings(site.base_url), client)
            seconds = time.perf_counter() - started
            links = sum(c.links_followed + len(c.link_failures) for c in crawls)
            pages = sum(c.fetched for c in crawls)
            requests = site.count()
    finally:
        ViewerSession.follow = original
    return {"links": links, "pages": pages, "requests": requests, "seconds": seconds,
            "per_link": requests / links, "pages_s": pages / seconds}


def bench_translation(artifacts: Path, count: int) -> dict:
    from adventure.parallel import load_sentence_pairs
    from adventure.translation import Translator
    from adventure.translation_cache import SQLiteTranslationCache

    sentences = sorted({en for en, _ in load_sentence_pairs()})[:count]
    results = {"sentences": len(sentences)}
    one = Translator("tiny", "en-ru", artifacts, batch_size=1, show_progress=False)
    started = time.perf_counter()
    for sentence in sentences:
        one.translate([sentence])
    results["one_s"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp, SQLiteTranslationCache(Path(tmp) / "cache.sqlite") as cache:
        batched = Translator("tiny", "en-ru", artifacts, batch_size=32, cache=cache,
                             show_progress=False)
        started = time.perf_counter()
        first = batched.translate(sentences)
        results["batched_s"] = time.perf_counter() - started
        rerun = Translator("tiny", "en-ru", artifacts, batch_size=32, cache=cache,
                           show_progress=False)
        started = time.perf_counter()
        second = rerun.translate(sentences)
        results["cached_s"] = time.perf_counter() - started
        assert second == first and rerun.stats["translated"] == 0, "the cached rerun translated again"
    return results


def table(crawl: dict, naive: dict, tr: dict | None) -> tuple[str, list[str]]:
    rows = [
        "| measurement | value | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        f"| crawl: HTTP requests per link followed ({crawl['links']} links, 3 stories) | {crawl['per_link']:.2f} "
        f"| {naive['per_link']:.2f} (reset GET before every POST) | {crawl['per_link'] / naive['per_link']:.2f}x "
        f"| <= 2 | {'yes' if crawl['per_link'] <= 2 else 'NO'} |",
        f"| crawl: pages/s, delay 0 | {crawl['pages_s']:.1f} | {naive['pages_s']:.1f} "
        f"| {crawl['pages_s'] / naive['pages_s']:.2f}x | - | - |",
    ]
    if tr is None:
        rows.append("| tiny Marian translation | not measured (--no-translation) | | | >= 4x, >= 50x | - |")
        return "\n".join(rows), rows
    n = tr["sentences"]
    rows += [
        f"| tiny Marian: sentences/s batched (32) | {n / tr['batched_s']:.1f} | {n / tr['one_s']:.1f} (one at a time) "
        f"| {tr['one_s'] / tr['batched_s']:.1f}x | >= 4x | {'yes' if tr['one_s'] / tr['batched_s'] >= 4 else 'NO'} |",
        f"| tiny Marian: sentences/s, cached rerun | {n / tr['cached_s']:.0f} | {n / tr['batched_s']:.1f} (batched) "
        f"| {tr['batched_s'] / tr['cached_s']:.0f}x | >= 50x "
        f"| {'yes' if tr['batched_s'] / tr['cached_s'] >= 50 else 'NO'} |",
    ]
    return "\n".join(rows), rows


def record(rows: list[str], sentences: int, quick: bool) -> None:
    body = "\n".join([
        f"`python bench/scraping_bench.py{' --quick' if quick else ''} --record` ({date.today().isoformat()}). "
        f"Machine: 2-core CPU container "
        f"(shared with other jobs while measured), CPython {platform.python_version()}. Crawl: tests/helpers/cys_test_site.py "
        f"on 127.0.0.1, delay 0, empty cache. "
        + (f"Translation: {sentences} English sentences of the embedded parallel set, tiny Marian en-ru "
           "(num_beams 4), CPU." if sentences else "Translation not measured in this run (see the notes below)."),
        "", *rows, ""])
    record_section("Scraping", body, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, help="default: ./artifacts (a temporary folder with --quick)")
    parser.add_argument("--sentences", type=int, help="default: 96 (16 with --quick)")
    parser.add_argument("--quick", action="store_true", help="16 sentences, 1 torch thread, the tests' 300-step Marian")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--no-translation", action="store_true", help="crawl part only (no tiny Marian needed)")
    parser.add_argument("--marian-steps", type=int, default=None,
                        help="train the tiny Marian this many steps (default: the full default build)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.quick:
        args.sentences, args.marian_steps = args.sentences or 16, args.marian_steps or 300
        import torch

        # One thread: beside other jobs on 2 cores the 2-thread pool ran translation 10-40x slower.
        torch.set_num_threads(1)
    crawl, naive = bench_crawl(naive=False), bench_crawl(naive=True)
    # A quick run's 300-step model must not land in ./artifacts, where a real run would then reuse it.
    scratch = tempfile.TemporaryDirectory() if args.quick and not args.artifacts else nullcontext()
    with scratch as tmp:
        artifacts = Path(tmp) if tmp else args.artifacts or ROOT / "artifacts"
        if args.marian_steps and not args.no_translation:
            from adventure.tiny_marian import ensure_tiny_marian

            ensure_tiny_marian(artifacts, "en-ru", steps=args.marian_steps)
        translation = None if args.no_translation else bench_translation(artifacts, args.sentences or 96)
    text, rows = table(crawl, naive, translation)
    print(text)
    if args.record:
        record(rows, translation["sentences"] if translation else 0, args.quick)


if __name__ == "__main__":
    main()
