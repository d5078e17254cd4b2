"""The evaluation sets: the dataset's test split, a play-through set drawn from it, and the parallel set.

All three are fixed by (dataset, seed, sizes): the same config always evaluates the same texts, and each set
carries a content hash so a report says exactly what it measured.

- test:        samples of stories never seen in training (the scraping stage's `test` split).
- playthrough: (world, last actions, new action) prompts as a player meets them mid-game: drawn from the test
               stories round-robin (so every story counts), preferring turns that have history; each model
               renders them with the shared prompt budget for its own tokenizer and context.
- parallel:    aligned (English, Russian) sentences of data/sample/parallel, for the translators in use.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError
from adventure.story_format import Sample, render_prompt

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("tree_id", "node_id", "depth", "world", "history", "action", "target")


@dataclass(frozen=True)
class ParallelPair:
    en: str
    ru: str


def load_test_split(dataset_dir: Path) -> list[Sample]:
    """The `test` split of a saved DatasetDict as Samples, in stored order; clear errors for a bad dataset."""
    return load_split(dataset_dir, "test")


def load_split(dataset_dir: Path, split: str, required: bool = True) -> list[Sample]:
    """One split of a saved DatasetDict as Samples, in stored order (a missing or empty split that is not
    `required` gives []); clear errors for a bad dataset."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise GamioError(f"dataset not found: {dataset_dir} (run `python -m scraping` first, or set dataset=<dir>)")
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(dataset_dir))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise GamioError(f"dataset {dataset_dir} cannot be loaded with datasets.load_from_disk: {exc}") from None
    if not isinstance(data, DatasetDict) or split not in data:
        if isinstance(data, DatasetDict) and not required:
            return []
        splits = list(data.keys()) if isinstance(data, DatasetDict) else "a single Dataset"
        raise GamioError(f"dataset {dataset_dir} has no `{split}` split (found {splits})")
    rows = data[split]
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.column_names]
    if missing:
        raise GamioError(f"dataset {dataset_dir} {split} split lacks column(s) {missing}")
    if len(rows) == 0:
        if not required:
            return []
        raise GamioError(f"dataset {dataset_dir} has an empty {split} split")
    samples = []
    for row in rows:
        history = tuple((str(a), str(r)) for a, r in row["history"])
        samples.append(Sample(tree_id=str(row["tree_id"]), node_id=str(row["node_id"]), depth=int(row["depth"]),
                              world=row["world"], history=history, action=row["action"],
                              prompt=row.get("prompt") or render_prompt(row["world"], history, row["action"]),
                              target=row["target"]))
    return samples


def dataset_files_sha256(dataset_dir: Path) -> str:
    """One hash over every file of the saved dataset (relative path + bytes), in path order."""
    digest = hashlib.sha256()
    root = Path(dataset_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def content_sha256(items: list) -> str:
    """Hash of a set's texts, independent of how they were stored."""
    def plain(item):
        if isinstance(item, Sample):
            return item.to_dict()
        return item.__dict__ if hasattr(item, "__dict__") else item

    blob = json.dumps([plain(i) for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cap(items: list, max_items: int | None, seed: int) -> list:
    """At most `max_items` of `items`: a seeded choice, kept in the original order."""
    if not max_items or len(items) <= max_items:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), max_items))
    return [items[i] for i in keep]


def playthrough_set(test: list[Sample], size: int, seed: int) -> list[Sample]:
    """`size` mid-game turns from the test stories: round-robin over stories, turns with history first."""
    if size < 1:
        raise GamioError(f"playthrough.size must be >= 1, got {size}")
    by_story: dict[str, list[Sample]] = {}
    for sample in test:
        by_story.setdefault(sample.tree_id, []).append(sample)
    queues = []
    for tree_id in sorted(by_story):
        turns = list(by_story[tree_id])
        random.Random(f"{seed}:{tree_id}").shuffle(turns)
        turns.sort(key=lambda s: not s.history)  # stable: shuffled order within "has history" / "opening turn"
        queues.append(turns)
    chosen: list[Sample] = []
    while len(chosen) < size and any(queues):
        for queue in queues:
            if queue and len(chosen) < size:
                chosen.append(queue.pop(0))
    if len(chosen) < size:
        log.warning("the test split has only %d turns: the play-through set has %d prompts, not %d",
                    len(chosen), len(chosen), size)
    return sorted(chosen, key=lambda s: (s.tree_id, [int(i) for i in s.node_id.split(".")]))


def parallel_set(max_pairs: int | None, seed: int, parallel_dir: Path | None = None) -> list[ParallelPair]:
    from adventure.parallel import load_sentence_pairs
    from adventure.paths import SAMPLE_PARALLEL_DIR

    pairs = load_sentence_pairs(parallel_dir or SAMPLE_PARALLEL_DIR)
    return [ParallelPair(en=en, ru=ru) for en, ru in cap(pairs, max_pairs, seed)]


def sample_id(sample: Sample) -> str:
    return f"{sample.tree_id}:{sample.node_id}"
