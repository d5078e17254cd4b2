"""Story trees -> training samples -> a `DatasetDict` split by story, plus samples.jsonl and stats.json.

Samples of one story share their world text and most of their history, so a random split by sample would
leak every test story into training. Each story goes wholly to one split. Each split gets its share of the
*stories* (largest remainder of ratio x stories; at least one story for every non-zero split when there are
enough stories): 12 stories at 0.8 / 0.1 / 0.1 are 10 / 1 / 1, 6 are 4 / 1 / 1. Which stories: the stories
ranked by a hash of their tree_id (the same on every run and every machine, whatever the input order), train
taking the lowest ranks, then validation, then test. Adding a story to a corpus shifts the rank boundaries by
at most one story each. (Thresholds on the hash alone would keep every story in place as the corpus grows,
but leave the split sizes to chance: one large story could become the whole test set, or none.)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError
from adventure.publish import publish_file, publish_folder
from adventure.story_format import Sample, samples_from_tree
from adventure.trees import StoryTree

SPLITS = ("train", "validation", "test")


def split_ratios(ratios) -> dict[str, float]:
    """Validated {split: ratio} in SPLITS order; ratios must be >= 0 and sum to 1."""
    ratios = {str(k): float(v) for k, v in dict(ratios).items()}
    unknown = set(ratios) - set(SPLITS)
    if unknown:
        raise GamioError(f"dataset.ratios: unknown split(s) {sorted(unknown)}; use {list(SPLITS)}")
    values = {s: ratios.get(s, 0.0) for s in SPLITS}
    if any(v < 0 for v in values.values()) or abs(sum(values.values()) - 1.0) > 1e-6:
        raise GamioError(f"dataset.ratios must be >= 0 and sum to 1, got {values}")
    return values


def story_hash(tree_id: str) -> float:
    """A uniform number in [0, 1) from the tree id, the same on every machine (unlike Python's hash())."""
    return int(hashlib.sha256(tree_id.encode("utf-8")).hexdigest()[:15], 16) / 16 ** 15


def story_counts(stories: int, ratios) -> dict[str, int]:
    """How many stories each split gets: the largest-remainder rounding of ratio x stories (ties in SPLITS
    order), then one story moved from the largest split to every non-zero split left empty, if there are
    enough stories for all of them."""
    ratios = split_ratios(ratios)
    exact = {s: ratios[s] * stories for s in SPLITS}
    counts = {s: int(exact[s]) for s in SPLITS}
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - counts[s]), SPLITS.index(s)))
    for split in by_remainder[: stories - sum(counts.values())]:
        counts[split] += 1
    wanted = [s for s in SPLITS if ratios[s] > 0]
    if stories >= len(wanted):
        for split in wanted:
            if counts[split] == 0:
                donor = max(SPLITS, key=lambda s: (counts[s], -SPLITS.index(s)))
                counts[donor] -= 1
                counts[split] += 1
    return counts


def assign_splits(tree_ids: list[str], ratios, sizes: dict[str, int] | None = None) -> dict[str, str]:
    """{tree_id: split}: story_counts() stories per split, by hash rank (train the lowest ranks, then validation,
    then test). With `sizes` (samples per story), a validation or test story more than twice its split's share of
    the samples is passed over for the next one in rank, while there are others: one huge story would otherwise
    be the whole test set."""
    ranked = sorted(set(tree_ids), key=lambda tid: (story_hash(tid), tid))
    counts = story_counts(len(ranked), ratios)
    shares = split_ratios(ratios)
    total = sum((sizes or {}).get(t, 1) for t in ranked)
    assigned: dict[str, str] = {}
    free = list(reversed(ranked))  # the small splits take from the top ranks, test first
    for split in ("test", "validation"):
        cap = 2 * shares[split] * total
        for _ in range(counts[split]):
            fitting = [t for t in free if sizes is None or sizes.get(t, 1) <= cap] or free
            assigned[fitting[0]] = split
            free.remove(fitting[0])
    for tid in free:
        assigned[tid] = "train"
    return assigned


@dataclass
class BuiltDataset:
    samples: dict[str, list[Sample]]  # split -> samples
    splits: dict[str, str]  # story_id -> split
    per_story: dict[str, dict]
    per_split: dict[str, dict]


def build_samples(stories: list[tuple[str, StoryTree]], ratios, history_turns: int) -> BuiltDataset:
    if len({tree.tree_id for _, tree in stories}) != len(stories):
        raise GamioError("two stories share a tree_id; a story could then land in two splits")
    sizes = {tree.tree_id: tree.count_nodes() for _, tree in stories}
    by_tree = assign_splits([tree.tree_id for _, tree in stories], ratios, sizes)
    samples: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    per_story, splits = {}, {}
    per_split = {s: {"stories": 0, "nodes": 0, "samples": 0, "characters": 0} for s in SPLITS}
    for story_id, tree in stories:
        split = by_tree[tree.tree_id]
        story_samples = list(samples_from_tree(tree, history_turns))
        samples[split].extend(story_samples)
        splits[story_id] = split
        row = {"split": split, "tree_id": tree.tree_id, "title": tree.title, "language": tree.language,
               "nodes": tree.count_nodes(), "samples": len(story_samples), "characters": tree.count_characters(),
               "max_depth": tree.max_depth()}
        per_story[story_id] = row
        totals = per_split[split]
        totals["stories"] += 1
        for key in ("nodes", "samples", "characters"):
            totals[key] += row[key]
    return BuiltDataset(samples, splits, per_story, per_split)


def save_dataset(built: BuiltDataset, out_dir: Path) -> None:
    """`dataset/` (DatasetDict.save_to_disk) and `samples.jsonl`, each replaced whole once complete."""
    from datasets import Dataset, DatasetDict, Features, List, Value

    features = Features({"tree_id": Value("string"), "node_id": Value("string"), "depth": Value("int32"),
                         "world": Value("string"), "history": List(List(Value("string"))),
                         "action": Value("string"), "prompt": Value("string"), "target": Value("string")})
    # Columns, not rows: an empty split (two stories, three splits) still gets the full schema.
    rows = {split: [s.to_dict() for s in samples] for split, samples in built.samples.items()}
    dataset = DatasetDict({split: Dataset.from_dict({name: [r[name] for r in split_rows] for name in features},
                                                    features=features)
                           for split, split_rows in rows.items()})
    with publish_folder(out_dir / "dataset") as staging:
        # One shard per split: an empty split would otherwise be written with no shard and fail to load.
        dataset.save_to_disk(str(staging), num_shards={split: 1 for split in dataset})
    with publish_file(out_dir / "samples.jsonl") as fh:
        for split in SPLITS:
            for sample in built.samples[split]:
                fh.write(json.dumps({"split": split, **sample.to_dict()}, ensure_ascii=False) + "\n")
