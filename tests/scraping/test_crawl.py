"""The cys crawler end to end over real HTTP against tests/helpers/cys_test_site.py: tree shape, endings, loops,
each link once within two requests, retries, failures listed with reasons, limits, exit status."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.paths import REPO_ROOT
from adventure.trees import load_tree
from tests.helpers.cys_test_site import CysTestSite
from tests.helpers.scraping import cys_overrides, scraping_cfg
from scraping.crawler import CrawlSettings, crawl_story
from scraping.http_client import HttpClient
from scraping.page_cache import PageCache
from scraping.stage import run

ENDING_LINKS = {"190", "191", "290", "291"}
LIGHTHOUSE_LINKS = {str(i) for i in range(101, 111)}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crawl")
    with CysTestSite() as site:
        stats = run(scraping_cfg(*cys_overrides(tmp, site, "[1,2,3,404,5,6]", tmp / "out")))
    return site, tmp / "out", stats


def shape(node) -> tuple:
    """(action, first words of the result, children...) for comparing trees by eye."""
    return (node.action, " ".join(node.result.split()[:3]), *[shape(c) for c in node.children])


def test_lighthouse_tree_shape(crawled):
    _, out, _ = crawled
    tree = load_tree(out / "trees" / "1.json")
    assert tree.title == "The Old Lighthouse" and tree.language == "en"
    assert tree.first_story_block == "The storm drove you onto the rocks.\n\nAbove you, the old lighthouse is dark."
    assert tree.tree_id.endswith("/story/viewer/default.aspx?StoryId=1")
    # BFS: a page is expanded where first reached; reaching it again gives a leaf that repeats its text.
    assert [shape(c) for c in tree.children] == [
        ("Climb the stairs", "The stairs wind", (
            "Open the door", "The lamp room.", (
                "Light the lamp", "The beam sweeps"),
            ("Smash the lamp", "Glass crunches underfoot.",
             ("Wait", "Glass crunches underfoot."),  # self-loop: a leaf
             ("Climb down to the beach", "Footprints lead along"))),  # back to a known page: a leaf
         ("Go back down", "The storm drove")),  # loop to the start page: a leaf
        ("Walk along the beach", "Footprints lead along",
         ("Follow the footprints", "The lamp room."),  # merge into the lamp room: a leaf
         ("Swim out to the wreck", "The current is")),
    ]


def test_endings_are_never_followed(crawled):
    site, out, stats = crawled
    assert not {link for _, link in site.link_posts(ok_only=False)} & ENDING_LINKS
    assert stats["stories"]["1"]["source"]["endings"] == 2
    tree = load_tree(out / "trees" / "1.json")
    saved = tree.children[0].children[0].children[0]
    assert saved.action == "Light the lamp" and saved.is_ending


def test_each_link_once_and_at_most_two_requests_per_link(crawled):
    site, _, stats = crawled
    posts = site.link_posts()
    assert set(posts.values()) == {1}, "a link was followed twice"
    assert {link for story, link in posts if story == "1"} == LIGHTHOUSE_LINKS
    followed = sum(s["source"]["links_followed"] for s in stats["stories"].values()) + 1  # + story 2's broken link
    assert len(posts) == followed
    good = [e for e in site.log if e[1] in ("1", "2", "3") and e[3] == 200]  # retries come on top of this
    assert len(good) <= 2 * followed
    assert site.violations == []


def test_loops_terminate_and_merges_are_counted(crawled):
    _, out, stats = crawled
    maze = stats["stories"]["3"]
    assert maze["source"]["pages"] == 24 and maze["source"]["merges"] > 0 and not maze["source"]["truncated"]
    assert maze["nodes"] == maze["source"]["links_followed"]  # one node per link, however the graph loops
    assert stats["stories"]["1"]["source"]["merges"] == 4


def test_retries_honour_retry_after_and_backoff(crawled):
    site, _, _ = crawled
    lamp = [(status, t) for (m, s, link, status), t in zip(site.log, site.times) if (s, link) == ("1", "107")]
    assert [status for status, _ in lamp] == [429, 200]
    assert lamp[1][1] - lamp[0][1] >= 0.9  # the site said Retry-After: 1
    assert [st for m, s, link, st in site.log if (s, link) == ("1", "106")] == [500, 200]


def test_failures_are_listed_with_reasons_and_the_rest_goes_on(crawled):
    _, out, stats = crawled
    failed = {(f["story_id"], f.get("link_id")): f["reason"] for f in stats["failed"]}
    assert "HTTP 404" in failed[("404", None)]
    assert "pbForm" in failed[("5", None)]
    assert "END MAIN" in failed[("6", None)]
    assert "pbForm" in failed[("2", "202")]  # a broken link loses its branch, not its story
    assert stats["succeeded"] == 3
    assert sorted(p.name for p in (out / "trees").iterdir()) == ["1.json", "2.json", "3.json"]
    on_disk = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert on_disk["failed"] == stats["failed"]
    # The shared link id 203 ("Run home", on two pages) was fetched once and appears twice in the tree.
    goblin = load_tree(out / "trees" / "2.json")
    assert sum(1 for n, _ in goblin.walk() if n.action == "Run home") == 2


def test_max_pages_and_max_depth_cut_the_crawl(tmp_path):
    with CysTestSite(transient={}) as site, PageCache(tmp_path / "c") as cache:
        small = crawl_story("3", cache, CrawlSettings(site.base_url, max_pages=5), HttpClient(delay=0))
        shallow = crawl_story("3", cache, CrawlSettings(site.base_url, max_depth=1), HttpClient(delay=0))
    assert small.truncated and small.tree.count_nodes() == 4 and small.fetched == 5
    assert shallow.truncated and shallow.tree.max_depth() == 1
    assert shallow.fetched == 0  # every page it needed was already cached by the first crawl


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scraping", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})


def test_cli_contract_cys_exit_status(tmp_path):
    with CysTestSite() as site:
        ok = cli(f"paths.artifacts={tmp_path}", "source=cys", f"source.base_url={site.base_url}",
                 "source.story_ids=[1,2]", "source.delay=0", "translator=none", f"out_dir={tmp_path / 'ok'}",
                 cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert sorted(p.name for p in (tmp_path / "ok" / "trees").iterdir()) == ["1.json", "2.json"]
        assert (tmp_path / "ok" / "dataset" / "dataset_dict.json").is_file()

        bad = cli(f"paths.artifacts={tmp_path}", "source=cys", f"source.base_url={site.base_url}",
                  "source.story_ids=[404,5]", "source.delay=0", "translator=none", f"out_dir={tmp_path / 'bad'}",
                  cwd=tmp_path)
    assert bad.returncode == 2
    assert "no story succeeded" in bad.stderr and "HTTP 404" in bad.stderr
    stats = json.loads((tmp_path / "bad" / "stats.json").read_text(encoding="utf-8"))
    assert {f["story_id"] for f in stats["failed"]} == {"404", "5"} and stats["succeeded"] == 0
    assert not list(tmp_path.glob("outputs")), "hydra wrote outside paths.artifacts"
