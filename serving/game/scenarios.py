"""Ready-made openings (GET /api/scenarios, POST /api/games {"scenario": id}): every story of the embedded corpus
(data/sample/stories: its title and its opening, the world a game starts from) and an operator's own folder
(`scenarios.folder`), loaded once at start.

An operator's folder holds, per scenario, one of:
    <id>.json   a story tree in the corpus' schema (adventure/trees.py), or {"title": ..., "world": ...}
    <id>.txt    the title on the first line, the world below it
Its scenarios come after the corpus' (an id the corpus already uses is taken by the operator's). A folder that
cannot be read, or a file without a world, stops the server at start with one line naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError
from adventure.paths import SAMPLE_STORIES_DIR
from adventure.trees import load_trees, read_tree_json, tree_from_dict

_ID = re.compile(r"^[\w.-]{1,100}$")


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    world: str

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "world": self.world}


def corpus_scenarios(folder: Path = SAMPLE_STORIES_DIR) -> list[Scenario]:
    return [Scenario(tree.tree_id, tree.title or tree.tree_id, tree.world) for tree in load_trees(folder)]


def folder_scenarios(folder: Path, max_world_chars: int) -> list[Scenario]:
    """The operator's scenarios (see the module docstring), in file-name order."""
    if not folder.is_dir():
        raise GamioError(f"scenarios.folder={folder}: not a folder")
    out = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".json", ".txt")):
        if not _ID.match(path.stem):
            raise GamioError(f"scenarios.folder: {path.name}: a scenario's file name (its id) may hold letters, "
                             f"digits, '_', '-' and '.' only")
        title, world = _read(path)
        if not world.strip():
            raise GamioError(f"scenarios.folder: {path.name} has no world (the opening text)")
        if len(world) > max_world_chars:
            raise GamioError(f"scenarios.folder: {path.name}: its world is {len(world)} characters long; "
                             f"limits.max_world_chars is {max_world_chars}")
        out.append(Scenario(path.stem, title.strip() or path.stem, world.strip()))
    return out


def _read(path: Path) -> tuple[str, str]:
    try:
        if path.suffix == ".txt":
            title, _, world = path.read_text(encoding="utf-8").partition("\n")
            return title, world
        data = read_tree_json(path)
    except (OSError, UnicodeDecodeError, GamioError) as exc:
        raise GamioError(f"scenarios.folder: {path.name}: cannot read ({exc})") from None
    if isinstance(data, dict) and "first_story_block" in data:
        tree = tree_from_dict(data, str(path.name))
        return tree.title, tree.world
    if not isinstance(data, dict) or not isinstance(data.get("world"), str):
        raise GamioError(f"scenarios.folder: {path.name}: expected a story tree or {{\"title\", \"world\"}}")
    return str(data.get("title") or ""), data["world"]


def load_scenarios(folder: str | None, corpus: bool, max_world_chars: int) -> dict[str, Scenario]:
    """{id: scenario}: the corpus' (when `corpus`), then the operator's folder (when given)."""
    scenarios = {s.id: s for s in corpus_scenarios()} if corpus else {}
    if folder:
        scenarios.update({s.id: s for s in folder_scenarios(Path(folder).expanduser(), max_world_chars)})
    return scenarios
