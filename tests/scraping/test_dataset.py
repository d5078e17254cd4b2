"""Dataset building: split by story (deterministic, from tree_id), stats, and the offline default run."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict

import pytest

from adventure.errors import GamioError
from adventure.paths import REPO_ROOT, SAMPLE_STORIES_DIR
from adventure.story_format import samples_from_tree
from adventure.trees import load_trees
from scraping.dataset import assign_splits, story_hash
from scraping.stage import run, safe_file_stem
from tests.helpers.scraping import scraping_cfg

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_split_depends_on_the_tree_ids_not_their_order_and_a_new_story_moves_few():
    ids = [f"https://chooseyourstory.com/story/viewer/default.aspx?StoryId={i}" for i in range(2000)]
    splits = assign_splits(ids, RATIOS)
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert assign_splits(shuffled, RATIOS) == splits
    grown = assign_splits(ids + ["one-more-story"], RATIOS)
    assert sum(grown[i] != splits[i] for i in ids) <= 2  # one rank boundary shift per split boundary
    assert Counter(splits.values()) == {"train": 1600, "validation": 200, "test": 200}
    assert story_hash(ids[0]) == story_hash(str(ids[0]))  # not Python's per-process hash()


@pytest.mark.parametrize("stories", range(1, 40))
@pytest.mark.parametrize("ratios", [RATIOS, {"train": 0.5, "test": 0.5}, {"train": 0.6, "validation": 0.15,
                                                                         "test": 0.25}])
def test_every_split_gets_its_share_of_stories_whatever_the_stories_weigh(stories, ratios):
    ids = [f"story-{stories}-{i}" for i in range(stories)]
    counts = Counter(assign_splits(ids, ratios).values())
    assert sum(counts.values()) == stories
    wanted = [s for s, r in ratios.items() if r > 0]
    for split, ratio in ratios.items():
        if stories >= len(wanted):
            assert counts[split] >= 1, (split, counts)  # a non-zero split is never left empty
        # within one story of its exact share, or the one story a small split must get (taken from the largest)
        largest = ratio == max(ratios.values())
        slack = len(wanted) if largest else 1
        assert abs(counts[split] - ratio * stories) < slack or counts[split] == 1, (split, counts)
    assert set(counts) <= set(ratios)


def test_few_stories_still_fill_every_split():
    for n in range(3, 13):
        ids = [f"story-{n}-{i}" for i in range(n)]
        assert set(assign_splits(ids, RATIOS).values()) == {"train", "validation", "test"}
    assert set(assign_splits(["a", "b"], RATIOS).values()) <= {"train", "validation", "test"}
    assert set(assign_splits([f"s{i}" for i in range(9)], {"train": 0.5, "test": 0.5}).values()) == {"train", "test"}
    assert Counter(assign_splits([f"s{i}" for i in range(12)], RATIOS).values()) == {"train": 10, "validation": 1,
                                                                                     "test": 1}
    assert Counter(assign_splits([f"s{i}" for i in range(6)], RATIOS).values()) == {"train": 4, "validation": 1,
                                                                                    "test": 1}


@pytest.mark.parametrize("ratios", [{"train": 0.9, "test": 0.2}, {"train": 1.2, "test": -0.2},
                                    {"train": 0.5, "dev": 0.5}])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(GamioError, match="dataset.ratios"):
        assign_splits(["a"], ratios)


def test_safe_file_names():
    assert safe_file_stem("1234") == "1234"
    odd = safe_file_stem("../../etc/passwd")
    assert "/" not in odd and not odd.startswith(".") and odd != safe_file_stem("..-..-etc-passwd")


def test_default_offline_run_builds_a_dataset_split_by_story(tmp_path):
    """The contract `python -m scraping`: the embedded Russian corpus, no network, no model."""
    done = subprocess.run([sys.executable, "-m", "scraping", f"paths.artifacts={tmp_path}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "data"
    from datasets import load_from_disk

    dataset = load_from_disk(str(out / "dataset"))
    stories_by_split = {split: set(dataset[split]["tree_id"]) for split in ("train", "validation", "test")}
    assert all(stories_by_split.values()), "a split is empty with the 12-story corpus"
    assert not (stories_by_split["train"] & stories_by_split["validation"]
                or stories_by_split["train"] & stories_by_split["test"]
                or stories_by_split["validation"] & stories_by_split["test"])

    trees = {tree.tree_id: tree for tree in load_trees(SAMPLE_STORIES_DIR)}
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["failed"] == [] and stats["succeeded"] == len(trees) == 12
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    per_tree = Counter(line["tree_id"] for line in lines)
    for story_id, row in stats["stories"].items():
        tree = trees[row["tree_id"]]
        assert row["nodes"] == tree.count_nodes() and row["characters"] == tree.count_characters()
        assert row["samples"] == per_tree[row["tree_id"]] == len(list(samples_from_tree(tree)))
        assert (out / row["file"]).is_file() and tree.tree_id in stories_by_split[row["split"]]
    totals = defaultdict(int)
    for row in stats["stories"].values():
        totals[row["split"], "samples"] += row["samples"]
        totals[row["split"], "nodes"] += row["nodes"]
    for split, row in stats["splits"].items():
        assert row["samples"] == totals[split, "samples"] == dataset[split].num_rows
        assert row["nodes"] == totals[split, "nodes"]
    first = lines[0]
    assert first["prompt"].endswith(f"\n> {first['action']}\n") and first["split"] == "train"

    # Deterministic: the same run in-process gives byte-identical samples.
    run(scraping_cfg(f"paths.artifacts={tmp_path}", f"out_dir={tmp_path / 'again'}"))
    assert (tmp_path / "again" / "samples.jsonl").read_bytes() == (out / "samples.jsonl").read_bytes()


def test_one_huge_story_is_not_made_the_whole_test_set_while_others_fit():
    ids = [f"tree-{i}" for i in range(6)]
    for huge in ids:  # whichever story is huge, and wherever its hash ranks
        sizes = {t: (107 if t == huge else 25) for t in ids}
        splits = assign_splits(ids, RATIOS, sizes)
        assert Counter(splits.values()) == {"train": 4, "validation": 1, "test": 1}
        assert splits[huge] == "train"
    assert assign_splits(ids, RATIOS, {t: 10 for t in ids}) == assign_splits(ids, RATIOS)  # even sizes: hash order
