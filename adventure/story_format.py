"""The gameGPT / AI Dungeon text format and the training samples built from story trees.

    <world>
    > <action>
    <result>
    > <action>
    <result>

A sample for node N is: world + the last K (action, result) pairs on the path before N + "> action_N\n"
as the prompt, and result_N as the target. Serving builds its prompts with the same functions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

from adventure.text import normalize_action, normalize_result
from adventure.trees import StoryTree

ACTION_MARKER = "> "
DEFAULT_HISTORY_TURNS = 10  # the seed fed the model the player's last 10 actions

Turn = tuple[str, str]  # (action, result)


def render_turn(action: str, result: str) -> str:
    return f"\n{ACTION_MARKER}{action}\n{result}"


def render_prompt(world: str, history: Sequence[Turn], action: str) -> str:
    """World, the given turns, then the new action; the model continues with the result."""
    return render_context(world, history, action)


def render_context(world: str, history: Sequence[Turn], action: str, *, memory: str = "",
                   world_info: Sequence[str] = (), note: str = "", note_depth: int = 0) -> str:
    """A game prompt with its steering: memory and world-info texts above the world (each block followed by a
    blank line), the author's note on its own line with `note_depth` turns between it and the new action.
    Without steering this is exactly the training format."""
    head = (memory + "\n\n" if memory else "") + ("\n".join(world_info) + "\n\n" if world_info else "")
    turns = [render_turn(a, r) for a, r in history]
    if note:
        turns.insert(max(0, len(turns) - note_depth), "\n" + note)
    return head + world + "".join(turns) + f"\n{ACTION_MARKER}{action}\n"


def render_story(world: str, history: Sequence[Turn]) -> str:
    return world + "".join(render_turn(a, r) for a, r in history)


@dataclass(frozen=True)
class Sample:
    tree_id: str
    node_id: str  # dotted child indices from the root, e.g. "0.2.1"
    depth: int
    world: str
    history: tuple[Turn, ...]
    action: str
    prompt: str
    target: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data["history"] = [list(t) for t in self.history]
        return data


def samples_from_tree(tree: StoryTree, history_turns: int = DEFAULT_HISTORY_TURNS) -> Iterator[Sample]:
    """One sample per node with a non-empty action and result, in document order.

    Nodes with an empty action or result give no sample, but their children still do (the turn is then
    left out of their history, since it carries no text).
    """
    world = normalize_result(tree.world)  # as the server normalises a world: no line may read as a turn
    # Walk with an explicit stack holding the normalised path, so deep trees cost no recursion.
    stack: list[tuple[object, tuple[int, ...], tuple[Turn, ...]]] = [
        (child, (i,), ()) for i, child in reversed(list(enumerate(tree.children)))
    ]
    while stack:
        node, index, path = stack.pop()
        action, result = normalize_action(node.action), normalize_result(node.result)  # type: ignore[attr-defined]
        if action and result:
            history = path[-history_turns:] if history_turns > 0 else ()
            yield Sample(tree_id=tree.tree_id, node_id=".".join(map(str, index)), depth=len(index),
                         world=world, history=history, action=action,
                         prompt=render_prompt(world, history, action), target=result)
        child_path = path + ((action, result),) if action and result else path
        for i, child in reversed(list(enumerate(node.children))):  # type: ignore[attr-defined]
            stack.append((child, index + (i,), child_path))


def samples_from_trees(trees: Iterable[StoryTree], history_turns: int = DEFAULT_HISTORY_TURNS) -> list[Sample]:
    return [s for tree in trees for s in samples_from_tree(tree, history_turns)]
