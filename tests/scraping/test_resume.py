"""A real crawler process killed with SIGKILL mid-crawl, then rerun: nothing it had cached is fetched again,
and the result equals an uninterrupted crawl. A third run, fully cached, sends no request at all."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from adventure.paths import REPO_ROOT
from tests.helpers.cys_test_site import CysTestSite
from tests.helpers.scraping import cys_overrides, scraping_cfg
from scraping.stage import run

STORIES = "[3,1]"  # the 24-page maze first, so the kill lands mid-story


def cached_links(cache_dir: Path) -> set[tuple[str, str]]:
    index = cache_dir / "index.sqlite"
    if not index.is_file():
        return set()
    db = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return {(s, l) for s, l in db.execute("SELECT story_id, link_id FROM pages")}
    except sqlite3.OperationalError:  # the table is not created yet
        return set()
    finally:
        db.close()


def crawler_command(tmp: Path, site: CysTestSite, out: Path) -> list[str]:
    args = cys_overrides(tmp, site, STORIES, out)
    args = [a for a in args if not a.startswith("source.delay")] + ["source.delay=0.05"]
    return [sys.executable, "-m", "scraping", *args]


def test_kill_9_then_resume_fetches_nothing_twice(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with CysTestSite(transient={}) as site:
        reference = tmp_path / "reference"
        run(scraping_cfg(*cys_overrides(tmp_path, site, STORIES, reference)))
        all_links = set(site.link_posts())
        site.clear_log()

        out = tmp_path / "out"
        cache_dir = out / "cache" / "cys"
        process = subprocess.Popen(crawler_command(tmp_path, site, out), cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while len(cached_links(cache_dir)) < 8 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        before_kill = cached_links(cache_dir)
        assert 8 <= len(before_kill) < len(all_links) + 2, "the kill did not land mid-crawl"
        assert not (out / "stats.json").exists()

        site.clear_log()
        rerun = subprocess.run(crawler_command(tmp_path, site, out), cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        refetched = {(s, l) for (m, s, l, status) in site.log if m == "POST"} & before_kill
        assert not refetched, f"pages cached before the kill were fetched again: {sorted(refetched)}"
        start_pages = {(s, "") for s in ("1", "3")}
        assert not {(s, "") for (m, s, _, st) in site.log if m == "GET"} - start_pages
        assert set(site.link_posts()) == all_links - before_kill  # the rest, each once
        assert site.violations == []

        for name in ("1.json", "3.json"):
            assert (out / "trees" / name).read_text() == (reference / "trees" / name).read_text()
        assert (out / "samples.jsonl").read_text() == (reference / "samples.jsonl").read_text()

        # Everything is cached now: a third run sends not a single request.
        site.clear_log()
        again = subprocess.run(crawler_command(tmp_path, site, out), cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and site.log == []
