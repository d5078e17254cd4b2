"""The embedded English/Russian parallel set: node-aligned story trees -> aligned text and sentence pairs.

`data/sample/parallel/<id>.en.json` and `<id>.ru.json` are the same story tree in two languages (AI Dungeon
schema, node for node, `null` children in the same places). The pairs feed the tiny Marian models and the
translation metrics. Sentences are cut with the translator's own splitter (adventure/segmentation.py), so a
model trained on these pairs sees the same kind of segment it will be asked to translate.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError
from adventure.paths import SAMPLE_PARALLEL_DIR
from adventure.segmentation import split_lines, split_sentences

DIRECTIONS = ("en-ru", "ru-en")  # the two ways gamio translates: English stories in, an English model's output out
ROOT_FIELDS = ("title", "context", "first_story_block")
NODE_FIELDS = ("action", "result")


@dataclass(frozen=True)
class ParallelText:
    """One aligned field of one node: `node` is the path of child indices ("" for the tree's own fields)."""

    tree_id: str
    node: str
    field: str
    en: str
    ru: str


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise GamioError(f"unknown translation direction {direction!r}; choose one of {list(DIRECTIONS)}")
    return direction


def parallel_ids(parallel_dir: str | Path = SAMPLE_PARALLEL_DIR) -> list[str]:
    """Ids that have an English tree, sorted (a missing Russian twin is an error at load time)."""
    return sorted(p.name[: -len(".en.json")] for p in Path(parallel_dir).glob("*.en.json"))


def _read_tree(path: Path) -> dict:
    if not path.is_file():
        raise GamioError(f"parallel tree {path} is missing (every <id>.en.json needs an <id>.ru.json twin)")
    # json's C parser recurses per nesting level and each tree level is two (object, list): a tree 500 deep
    # already exceeds Python's default limit, so the limit is raised for the parse only.
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, 100_000))
        with open(path, encoding="utf-8") as fh:
            tree = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GamioError(f"parallel tree {path} is not valid JSON: {exc}") from exc
    finally:
        sys.setrecursionlimit(limit)
    if not isinstance(tree, dict) or "action_results" not in tree:
        raise GamioError(f"parallel tree {path} is not an AI Dungeon story tree (no action_results)")
    return tree


def _text(value, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GamioError(f"{where}: expected text, got {type(value).__name__}")
    return value


def load_parallel_tree(en_path: str | Path, ru_path: str | Path) -> list[ParallelText]:
    """Aligned (en, ru) texts of one tree pair, in pre-order; the trees must have the same shape."""
    en_path, ru_path = Path(en_path), Path(ru_path)
    en_tree, ru_tree = _read_tree(en_path), _read_tree(ru_path)
    tree_id = str(en_tree.get("tree_id") or en_path.name[: -len(".en.json")])
    if str(ru_tree.get("tree_id") or tree_id) != tree_id:
        raise GamioError(f"{ru_path}: tree_id {ru_tree.get('tree_id')!r} differs from {en_path}'s {tree_id!r}")

    texts = []
    for field in ROOT_FIELDS:
        en, ru = _text(en_tree.get(field), f"{en_path}:{field}"), _text(ru_tree.get(field), f"{ru_path}:{field}")
        if en.strip() or ru.strip():
            texts.append(ParallelText(tree_id, "", field, en, ru))

    # An explicit stack instead of recursion: real trees nest hundreds of levels deep. Children are pushed
    # in reverse so nodes pop in document (pre-)order.
    stack: list[tuple[str, dict, dict]] = []

    def push_children(path: str, en_children, ru_children) -> None:
        en_children, ru_children = en_children or [], ru_children or []
        if len(en_children) != len(ru_children):
            raise GamioError(f"{tree_id} node {path or '<root>'}: {len(en_children)} English children but "
                             f"{len(ru_children)} Russian ones; the trees must be node-aligned")
        for index in reversed(range(len(en_children))):
            en_node, ru_node = en_children[index], ru_children[index]
            node_path = f"{path}.{index}" if path else str(index)
            if (en_node is None) != (ru_node is None):
                raise GamioError(f"{tree_id} node {node_path}: null in one language only")
            if en_node is not None:
                if not isinstance(en_node, dict) or not isinstance(ru_node, dict):
                    raise GamioError(f"{tree_id} node {node_path}: expected an object with action/result")
                stack.append((node_path, en_node, ru_node))

    push_children("", en_tree.get("action_results"), ru_tree.get("action_results"))
    while stack:
        node_path, en_node, ru_node = stack.pop()
        for field in NODE_FIELDS:
            en = _text(en_node.get(field), f"{en_path} node {node_path} {field}")
            ru = _text(ru_node.get(field), f"{ru_path} node {node_path} {field}")
            if en.strip() or ru.strip():
                texts.append(ParallelText(tree_id, node_path, field, en, ru))
        push_children(node_path, en_node.get("action_results"), ru_node.get("action_results"))
    return texts


def load_parallel_texts(parallel_dir: str | Path = SAMPLE_PARALLEL_DIR) -> list[ParallelText]:
    """Every aligned field of every tree pair in `parallel_dir`."""
    parallel_dir = Path(parallel_dir)
    ids = parallel_ids(parallel_dir)
    if not ids:
        raise GamioError(f"no parallel trees (<id>.en.json + <id>.ru.json) in {parallel_dir}")
    texts: list[ParallelText] = []
    for tree_id in ids:
        texts += load_parallel_tree(parallel_dir / f"{tree_id}.en.json", parallel_dir / f"{tree_id}.ru.json")
    return texts


def sentence_pairs(texts: list[ParallelText], *, unique: bool = True) -> list[tuple[str, str]]:
    """(en, ru) sentence pairs: lines are aligned first, then sentences within a line.

    Where the line or sentence counts of a pair differ, the coarser unit is kept as one pair instead of
    guessing an alignment. `unique` drops repeated pairs (actions recur across branches).
    """
    pairs: list[tuple[str, str]] = []
    for text in texts:
        en_lines = [line for line in split_lines(text.en) if line.strip()]
        ru_lines = [line for line in split_lines(text.ru) if line.strip()]
        if len(en_lines) != len(ru_lines):
            pairs.append((" ".join(line.strip() for line in en_lines), " ".join(line.strip() for line in ru_lines)))
            continue
        for en_line, ru_line in zip(en_lines, ru_lines):
            en_sents, ru_sents = split_sentences(en_line, "en"), split_sentences(ru_line, "ru")
            if len(en_sents) == len(ru_sents):
                pairs += zip(en_sents, ru_sents)
            else:
                pairs.append((en_line.strip(), ru_line.strip()))
    pairs = [(en, ru) for en, ru in pairs if en and ru]
    if unique:
        pairs = list(dict.fromkeys(pairs))
    return pairs


def load_sentence_pairs(parallel_dir: str | Path = SAMPLE_PARALLEL_DIR, *, unique: bool = True) -> list[tuple[str, str]]:
    """Shortcut: the (en, ru) sentence pairs of the whole parallel set."""
    return sentence_pairs(load_parallel_texts(parallel_dir), unique=unique)
