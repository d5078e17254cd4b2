"""`translator=opus_mt`: translate English story trees to Russian with MarianMT, node for node.

Actions and results are translated in two separate calls: an action is a short imperative line ("go
north"), a result is prose, and mixing them in one length-sorted batch would only pad the short ones. The
work itself (sentence splitting to the model's limit, batching, keeping `> ` markers and paragraph breaks,
the SQLite cache that makes reruns free) is adventure.translation's; this file walks the trees.
"""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from adventure.errors import GamioError
from adventure.translation import build_translator, open_cache
from adventure.trees import StoryNode, StoryTree

log = logging.getLogger(__name__)

TARGET_LANGUAGE = "ru"


def translate_trees(trees: list[StoryTree], translator_cfg: DictConfig, translation_cfg: DictConfig,
                    artifacts: Path) -> tuple[list[StoryTree], dict]:
    """Translated copies of the trees not yet in Russian (shape, tree_id and metadata kept) and stats."""
    todo = [i for i, tree in enumerate(trees) if tree.language != TARGET_LANGUAGE]
    if translator_cfg.name == "none":
        if todo:
            log.warning("translator=none: %d tree(s) stay in their own language (%s); use translator=opus_mt "
                        "for Russian", len(todo), sorted({trees[i].language for i in todo}))
        return trees, {"name": "none"}
    if not todo:
        return trees, {"name": translator_cfg.name, "trees_translated": 0}
    direction = str(translator_cfg.direction)
    model = translator_cfg.model or translation_cfg[direction.replace("-", "_")]
    # The model first: one that is not available must not leave a cache file (and its folder) behind.
    try:
        translator = build_translator(translator_cfg, direction, artifacts, model=model, cache=None,
                                      show_progress=True)
    except GamioError as exc:
        key = "translator.model" if translator_cfg.model else f"translation.{direction.replace('-', '_')}"
        raise GamioError(f"{key}={model}: {exc}") from None
    cache = translator.cache = open_cache(translator_cfg.cache)
    try:
        sources = [trees[i] for i in todo]
        actions = [node.action for tree in sources for node, _ in tree.walk()]
        texts = [text for tree in sources
                 for text in (tree.title, tree.context, tree.first_story_block, *(n.result for n, _ in tree.walk()))]
        log.info("translating %d trees: %d actions, %d texts with %s", len(sources), len(actions), len(texts),
                 translator.model_key)
        translated_actions = iter(translator.translate(actions))
        translated_texts = iter(translator.translate(texts))
        out = list(trees)
        for i, tree in zip(todo, sources):
            out[i] = _rebuild(tree, translated_actions, translated_texts)
    finally:
        if cache is not None:
            cache.close()
    stats = {"name": translator_cfg.name, "model": translator.model_key, "trees_translated": len(todo),
             **translator.stats}
    return out, stats


def _rebuild(tree: StoryTree, actions, texts) -> StoryTree:
    """A copy of `tree` with texts drawn in the order translate_trees listed them (titles, then walk order)."""
    title, context, first = next(texts), next(texts), next(texts)
    copy = StoryTree(tree_id=tree.tree_id, first_story_block=first, context=context, title=title,
                     language=TARGET_LANGUAGE, source_url=tree.source_url)
    # walk() yields parents before children, so each new node can be hung under its already-copied parent.
    copies: dict[int, StoryNode] = {}
    for node, ancestors in tree.walk():
        new = StoryNode(action=next(actions), result=next(texts))
        copies[id(node)] = new
        (copies[id(ancestors[-1])].children if ancestors else copy.children).append(new)
    return copy
