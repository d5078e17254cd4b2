"""Story trees in the schema AI Dungeon 2's chooseyourstory scraper wrote (and real data uses):

    {"tree_id", "context", "first_story_block",
     "action_results": [{"action", "result", "action_results": [...]}, null, ...]}

plus optional "title", "language", "source_url". Real trees have `null` children (abandoned branches),
empty results, rules/title pages as the first block and 40+ levels of nesting, so everything here walks
the tree with an explicit stack: a 1000-deep tree never meets Python's recursion limit.
"""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from adventure.errors import GamioError
from adventure.publish import publish_file


@dataclass
class StoryNode:
    action: str
    result: str
    children: list["StoryNode"] = field(default_factory=list)

    @property
    def is_ending(self) -> bool:
        return not self.children


@dataclass
class StoryTree:
    tree_id: str
    first_story_block: str
    children: list[StoryNode] = field(default_factory=list)
    context: str = ""
    title: str = ""
    language: str = "ru"
    source_url: str = ""

    @property
    def world(self) -> str:
        """The opening text a game starts from: the optional context, then the first story block."""
        return "\n\n".join(part for part in (self.context.strip(), self.first_story_block.strip()) if part)

    def walk(self) -> Iterator[tuple[StoryNode, tuple[StoryNode, ...]]]:
        """Yield every node with the path of ancestors above it, depth first, in document order."""
        stack: list[tuple[StoryNode, tuple[StoryNode, ...]]] = [(c, ()) for c in reversed(self.children)]
        while stack:
            node, ancestors = stack.pop()
            yield node, ancestors
            path = ancestors + (node,)
            stack.extend((child, path) for child in reversed(node.children))

    def count_nodes(self) -> int:
        return sum(1 for _ in self.walk())

    def max_depth(self) -> int:
        return max((len(a) + 1 for _, a in self.walk()), default=0)

    def count_characters(self) -> int:
        return len(self.first_story_block) + sum(len(n.action) + len(n.result) for n, _ in self.walk())

    def to_dict(self) -> dict[str, Any]:
        """Back to the AI Dungeon schema (null children are not written back: they carry nothing)."""
        def empty(node: StoryNode) -> dict[str, Any]:
            return {"action": node.action, "result": node.result, "action_results": []}

        top: list[dict[str, Any]] = []
        stack: list[tuple[StoryNode, list[dict[str, Any]]]] = [(c, top) for c in reversed(self.children)]
        # Children are pushed reversed and appended when popped, so document order is kept.
        while stack:
            node, siblings = stack.pop()
            out = empty(node)
            siblings.append(out)
            stack.extend((child, out["action_results"]) for child in reversed(node.children))
        data: dict[str, Any] = {"tree_id": self.tree_id, "context": self.context,
                                "first_story_block": self.first_story_block, "action_results": top}
        for key in ("title", "language", "source_url"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GamioError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _children(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GamioError(f"{where}.action_results: expected a list, got {type(value).__name__}")
    return value


def tree_from_dict(data: Any, source: str = "<tree>") -> StoryTree:
    """Build a StoryTree from parsed JSON, skipping null children; errors name the offending path."""
    if not isinstance(data, dict):
        raise GamioError(f"{source}: a story tree must be a JSON object, got {type(data).__name__}")
    missing = [k for k in ("first_story_block", "action_results") if k not in data]
    if missing:
        raise GamioError(f"{source}: not an AI Dungeon story tree, missing key(s) {missing}")
    tree = StoryTree(
        tree_id=str(data.get("tree_id") or Path(source).stem),
        first_story_block=_text(data.get("first_story_block"), f"{source}: first_story_block"),
        context=_text(data.get("context"), f"{source}: context"),
        title=_text(data.get("title"), f"{source}: title"),
        language=_text(data.get("language"), f"{source}: language") or "ru",
        source_url=_text(data.get("source_url"), f"{source}: source_url"),
    )
    stack: list[tuple[Any, list[StoryNode], str]] = []
    for i, raw in reversed(list(enumerate(_children(data["action_results"], source)))):
        stack.append((raw, tree.children, f"{source}: action_results[{i}]"))
    while stack:
        raw, siblings, where = stack.pop()
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise GamioError(f"{where}: expected an object or null, got {type(raw).__name__}")
        node = StoryNode(action=_text(raw.get("action"), f"{where}.action"),
                         result=_text(raw.get("result"), f"{where}.result"))
        siblings.append(node)
        kids = _children(raw.get("action_results"), where)
        for j, child in reversed(list(enumerate(kids))):
            stack.append((child, node.children, f"{where}.action_results[{j}]"))
    return tree


JSON_NESTING_LIMIT = 20_000  # two per tree level: trees up to ~10,000 levels deep parse; deeper ones are refused


@contextlib.contextmanager
def _deep_json():
    """The json module recurses once per nesting level (two per tree level); real and test trees go deeper
    than Python's default limit, so lift it while one tree is parsed or written."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, JSON_NESTING_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def read_tree_json(path: str | Path) -> Any:
    """The parsed JSON of a tree file; every way it can be unreadable is a GamioError naming the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh, _deep_json():
            return json.load(fh)
    except FileNotFoundError:
        raise GamioError(f"story tree file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GamioError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise GamioError(f"{path}: nested too deeply to read (more than about {JSON_NESTING_LIMIT // 2} "
                         f"levels); a real story tree is far shallower") from None
    except OSError as exc:
        raise GamioError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_tree(path: str | Path) -> StoryTree:
    return tree_from_dict(read_tree_json(path), str(path))


def load_trees(directory: str | Path, pattern: str = "*.json") -> list[StoryTree]:
    """All trees in a folder, sorted by file name so every run sees the same order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GamioError(f"story tree folder not found: {directory}")
    files = sorted(directory.glob(pattern))
    if not files:
        raise GamioError(f"no story trees ({pattern}) in {directory}")
    return [load_tree(p) for p in files]


def save_tree(tree: StoryTree, path: str | Path) -> None:
    with publish_file(path) as fh, _deep_json():  # whole or not at all: a reader never sees half a tree
        json.dump(tree.to_dict(), fh, ensure_ascii=False, indent=1)
