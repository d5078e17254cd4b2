"""source=snapshot: the shipped page cache (tests/data/cys_snapshot, made by `python -m tests.helpers.cys_test_site
--snapshot`) rebuilds the trees offline, identical to a live crawl of the same stories."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adventure.errors import GamioError
from adventure.trees import load_tree
from tests.helpers.cys_test_site import CysTestSite
from scraping.stage import run
from tests.helpers.scraping import cys_overrides, scraping_cfg

SNAPSHOT = Path(__file__).parent.parent / "data" / "cys_snapshot"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: any request would fail


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_snapshot_rebuilds_the_live_crawl_offline(tmp_path):
    before = folder_digest(SNAPSHOT)
    offline = run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=snapshot", f"source.path={SNAPSHOT}",
                               f"source.base_url={UNREACHABLE}", "translator=none", f"out_dir={tmp_path / 'snap'}"))
    assert folder_digest(SNAPSHOT) == before  # read-only: not even a WAL file appears
    assert offline["succeeded"] == 2 and sorted(offline["stories"]) == ["1", "2"]
    assert offline["stories"]["1"]["source"]["fetched"] == 0
    # Story 2's broken link never made it into the cache, so the snapshot says so instead of fetching it.
    [missing] = offline["failed"]
    assert (missing["story_id"], missing["link_id"]) == ("2", "202") and "not in the page cache" in missing["reason"]

    with CysTestSite(transient={}) as site:
        run(scraping_cfg(*cys_overrides(tmp_path, site, "[1,2]", tmp_path / "live")))
    for name in ("1.json", "2.json"):
        live, snap = load_tree(tmp_path / "live" / "trees" / name), load_tree(tmp_path / "snap" / "trees" / name)
        assert snap.to_dict() | {"tree_id": "", "source_url": ""} == live.to_dict() | {"tree_id": "", "source_url": ""}
        assert snap.count_nodes() > 3


def test_snapshot_errors_name_the_problem(tmp_path):
    with pytest.raises(GamioError, match="snapshot folder not found"):
        run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=snapshot", f"source.path={tmp_path / 'nope'}",
                         f"out_dir={tmp_path / 'o'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GamioError, match="no page cache"):
        run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=snapshot", f"source.path={tmp_path / 'empty'}",
                         f"out_dir={tmp_path / 'o'}"))
    stats_failed = run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=snapshot", f"source.path={SNAPSHOT}",
                                    "source.story_ids=[1,77]", f"out_dir={tmp_path / 'o'}"))["failed"]
    assert [f["story_id"] for f in stats_failed if "link_id" not in f] == ["77"]
