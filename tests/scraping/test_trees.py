"""source=trees over the six real AI Dungeon trees (../shared/data/cys-trees): import as they are, and
translated en->ru by the tiny Marian through the real opus-mt code path (translator=opus_mt model=tiny)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from adventure.paths import REPO_ROOT, SAMPLE_STORIES_DIR
from adventure.trees import load_tree
from tests.helpers.real_data import REAL_TREE_NODE_COUNTS
from scraping.stage import run
from tests.helpers.scraping import scraping_cfg


def test_cli_contract_trees_without_translation(real_trees_dir, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "scraping", f"paths.artifacts={tmp_path}", "source=trees",
                           f"source.path={real_trees_dir}", "translator=none", f"out_dir={out}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert {f"{k}.json": v["nodes"] for k, v in stats["stories"].items()} == REAL_TREE_NODE_COUNTS
    tree = load_tree(out / "trees" / "story7.json")
    assert tree.language == "en" and tree.tree_id == load_tree(real_trees_dir / "story7.json").tree_id
    assert stats["failed"] == [] and sum(s["samples"] for s in stats["splits"].values()) > 200


def test_a_broken_tree_file_is_listed_and_the_rest_imported(real_trees_dir, tmp_path):
    folder = tmp_path / "trees"
    shutil.copytree(real_trees_dir, folder)
    (folder / "broken.json").write_text('{"tree_id": "x", "first_story_block": ', encoding="utf-8")
    (folder / "wrong.json").write_text('{"title": "no tree here"}', encoding="utf-8")
    stats = run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=trees", f"source.path={folder}",
                             f"out_dir={tmp_path / 'out'}"))
    reasons = {f["story_id"]: f["reason"] for f in stats["failed"]}
    assert set(reasons) == {"broken", "wrong"} and "missing key" in reasons["wrong"]
    assert stats["succeeded"] == 6


@pytest.mark.slow
def test_translate_the_real_trees_with_the_tiny_marian(real_trees_dir, tiny_marian_artifacts, tmp_path):
    out = tmp_path / "out"
    overrides = [f"paths.artifacts={tiny_marian_artifacts}", "source=trees", f"source.path={real_trees_dir}",
                 "translator=opus_mt", "translator.model=tiny", "translator.batch_size=32", f"out_dir={out}"]
    stats = run(scraping_cfg(*overrides))
    assert stats["translator"]["translated"] > 100  # (a text met again in the same run is served by the cache)
    assert stats["translator"]["model"].startswith("tiny-opus-mt-en-ru@")
    for name, nodes in REAL_TREE_NODE_COUNTS.items():
        english, russian = load_tree(real_trees_dir / name), load_tree(out / "trees" / name)
        assert russian.language == "ru" and russian.tree_id == english.tree_id
        assert russian.count_nodes() == nodes == english.count_nodes()  # same shape, node for node
        pairs = list(zip((n for n, _ in english.walk()), (n for n, _ in russian.walk())))
        for en, ru in pairs:  # paragraph layout survives translation
            assert ru.result.count("\n") == en.result.count("\n")
            assert "\n" not in ru.action.strip()
        translated = sum(1 for en, ru in pairs if en.result.strip() and ru.result != en.result)
        assert translated >= 0.9 * sum(1 for en, _ in pairs if en.result.strip())
        assert any("а" <= ch <= "я" for _, ru in pairs for ch in ru.result.lower())  # Cyrillic came out
    assert (out / "translation_cache.sqlite").is_file()

    # A rerun translates nothing: every segment comes from the SQLite cache, with the same result.
    first = (out / "samples.jsonl").read_text(encoding="utf-8")
    again = run(scraping_cfg(*overrides))
    assert again["translator"]["translated"] == 0 and again["translator"]["cached"] > 100
    assert (out / "samples.jsonl").read_text(encoding="utf-8") == first


def test_a_pathologically_deep_tree_is_skipped_and_the_rest_kept(tmp_path):
    folder = tmp_path / "trees"
    shutil.copytree(SAMPLE_STORIES_DIR, folder)
    depth = 15_000  # JSON nesting of 30,000: past what the parser may recurse, far past any real story
    (folder / "deep.json").write_text('{"tree_id": "deep", "first_story_block": "x", "action_results": ['
                                      + '{"action": "a", "result": "r", "action_results": [' * depth
                                      + "]}" * depth + "]}", encoding="utf-8")
    stats = run(scraping_cfg(f"paths.artifacts={tmp_path}", "source=trees", f"source.path={folder}",
                             f"out_dir={tmp_path / 'out'}"))
    reasons = {f["story_id"]: f["reason"] for f in stats["failed"]}
    assert list(reasons) == ["deep"] and "nested too deeply" in reasons["deep"]
    assert stats["succeeded"] == len(list(SAMPLE_STORIES_DIR.glob("*.json")))
    assert not (tmp_path / "out" / "trees" / "deep.json").exists()
