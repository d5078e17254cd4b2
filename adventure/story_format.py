"""The gameGPT / AI Dungeon text format and the training samples built from story trees.

    <world>
    > <action>
    <result>
    > <action>
    <result>

A sample for node N is: world + the last K (action, result) pairs on the path before N + "> action_N\n"
as the prompt, and result_N as the target. Serving builds its prompts with the same functions.

A game also has moves without an action line (serving's input modes): a *continuation* (the player sent no
action: the model goes on with the story) and *narration* (story mode: the player's text joins the story as
prose). Neither ever becomes a `> ` line: `fold_moves` joins them into the text before them (the previous result,
or the world), so every prompt and export keeps exactly the training format, in which a `>` line is always and
only a player's action. A speech (say mode) is an ordinary action line: "> Вы говорите: «...»".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

from adventure.text import normalize_action, normalize_result
from adventure.trees import StoryTree

ACTION_MARKER = "> "
DEFAULT_HISTORY_TURNS = 10  # the seed fed the model the player's last 10 actions

Turn = tuple[str, str]  # (action, result)


MODES = ("do", "say", "story", "continue")  # a stored turn's move; "continue": the empty action


def say_action(text: str) -> str:
    """Say mode: the hero's speech as the action line's text."""
    return f"Вы говорите: «{text}»"


def model_action(action: str, mode: str | None) -> str:
    """The action as the `> ` line states it (do and say modes)."""
    return say_action(action) if mode == "say" else action


def join_prose(before: str, after: str) -> str:
    """Two pieces of story prose as one text: a blank-free space between them (nothing when one is empty)."""
    return f"{before} {after}" if before and after else before or after


def fold_moves(world: str, turns: Sequence[tuple[str, str, str | None]]) -> tuple[str, list[Turn]]:
    """(world, [(action line text, result)]) of a game's turns (action, result, mode): continuations and
    narration are joined into the text before them (see the module docstring); say turns become speech."""
    folded: list[Turn] = []
    for action, result, mode in turns:
        if mode in ("story", "continue"):
            prose = join_prose(action, result) if mode == "story" else result
            if folded:
                last_action, last_result = folded[-1]
                folded[-1] = (last_action, _paragraphs(last_result, prose, mode))
            else:
                world = _paragraphs(world, prose, mode)
            continue
        folded.append((model_action(action, mode), result))
    return world, folded


def _paragraphs(before: str, prose: str, mode: str) -> str:
    """Narration starts a paragraph of its own; a continuation goes on where the text stopped."""
    if mode == "story" and before and prose:
        return before + "\n" + prose
    return join_prose(before, prose)


def render_turn(action: str, result: str) -> str:
    return f"\n{ACTION_MARKER}{action}\n{result}"


def render_prompt(world: str, history: Sequence[Turn], action: str) -> str:
    """World, the given turns, then the new action; the model continues with the result."""
    return render_context(world, history, action)


def render_context(world: str, history: Sequence[Turn], action: str | None, *, memory: str = "",
                   world_info: Sequence[str] = (), note: str = "", note_depth: int = 0) -> str:
    """A game prompt with its steering: memory and world-info texts above the world (each block followed by a
    blank line), the author's note on its own line with `note_depth` turns between it and the new action.
    Without steering this is exactly the training format. `action` None: a continuation, the prompt ends with
    the story's last text (no action line)."""
    head = (memory + "\n\n" if memory else "") + ("\n".join(world_info) + "\n\n" if world_info else "")
    turns = [render_turn(a, r) for a, r in history]
    if note:
        turns.insert(max(0, len(turns) - note_depth), "\n" + note)
    return head + world + "".join(turns) + action_line(action)


def action_line(action: str | None) -> str:
    """What the new move adds after the story: its `> ` line, or nothing for a continuation."""
    return "" if action is None else f"\n{ACTION_MARKER}{action}\n"


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
