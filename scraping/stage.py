"""The scraping stage as a plain function: source -> (translation) -> trees/, dataset/, samples.jsonl, stats.json.

    out_dir/trees/<story_id>.json   one AI Dungeon-format tree per story that worked
    out_dir/dataset/                DatasetDict(train, validation, test) split by story (save_to_disk)
    out_dir/samples.jsonl           the same samples, one JSON object per line with its split
    out_dir/stats.json              per split and per story: nodes, samples, characters; plus `failed`

Stories that fail are listed under `failed` with the reason and the others go on; the run fails (exit 2)
only when no story worked, after writing stats.json so the reasons are on disk.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

from omegaconf import DictConfig

from adventure.cli import resolved_config
from adventure.errors import GamioError
from adventure.paths import artifacts_dir
from adventure.publish import publish_folder, write_file
from adventure.trees import save_tree
from scraping.dataset import build_samples, save_dataset
from scraping.sources import load_source
from scraping.translate import translate_trees

log = logging.getLogger(__name__)


def safe_file_stem(story_id: str) -> str:
    """A file name for any story id: path separators and odd characters replaced, a hash keeps it unique."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", story_id).strip("._")[:80]
    if stem != story_id or not stem:
        stem = f"{stem or 'story'}-{hashlib.sha256(story_id.encode('utf-8')).hexdigest()[:8]}"
    return stem


def run(cfg: DictConfig) -> dict:
    started = time.perf_counter()
    out_dir = Path(str(cfg.out_dir)).expanduser().resolve()  # created by the first write: a refused run leaves none
    artifacts = artifacts_dir(cfg)

    loaded = load_source(cfg.source)
    stories = loaded.stories
    trees, translation = translate_trees([s.tree for s in stories], cfg.translator, cfg.translation, artifacts)
    for story, tree in zip(stories, trees):
        story.tree = tree

    built = build_samples([(s.story_id, s.tree) for s in stories], cfg.dataset.ratios,
                          int(cfg.dataset.history_turns))
    if stories:  # a run where everything failed leaves the previous trees and dataset in place
        _write_trees(out_dir, [(s.story_id, s.tree) for s in stories])
        save_dataset(built, out_dir)
    for story in stories:
        built.per_story[story.story_id].update(file=f"trees/{safe_file_stem(story.story_id)}.json",
                                               source=story.info)

    stats = {"source": cfg.source.name, "translator": translation, "splits": built.per_split,
             "stories": built.per_story, "failed": loaded.failed,
             "succeeded": len(stories), "seconds": round(time.perf_counter() - started, 2),
             "config": resolved_config(cfg)}
    write_file(out_dir / "stats.json", json.dumps(stats, ensure_ascii=False, indent=1) + "\n")

    failed_stories = sorted({f["story_id"] for f in loaded.failed if "link_id" not in f})
    if not stories:
        reasons = "; ".join(f"{f['story_id']}: {f['reason']}" for f in loaded.failed) or "the source had none"
        raise GamioError(f"no story succeeded ({reasons}); see {out_dir / 'stats.json'}")
    log.info("%d stories -> %s (samples: %s)%s", len(stories), out_dir,
             {s: len(v) for s, v in built.samples.items()},
             f"; failed: {failed_stories}" if failed_stories else "")
    return stats


def _write_trees(out_dir: Path, stories) -> None:
    """trees/ is rebuilt whole and swapped in, so it never mixes this run's trees with an older run's."""
    with publish_folder(out_dir / "trees") as staging:
        for story_id, tree in stories:
            save_tree(tree, staging / f"{safe_file_stem(story_id)}.json")
