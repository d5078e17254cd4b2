"""What the API shows of a game and a job: pure functions of the game tier's records (serving/storage/records.py:
Game, Turn, Job), with the few facts that are not in a record passed in."""
from __future__ import annotations

import re

from adventure.story_format import say_action
from serving.game.turn_input import move_of
from serving.web.messages import job_failure

PENDING = ("queued", "running")


def turn_view(t, english: bool) -> dict:
    """A turn with its variants; an arena turn's models stay hidden until the player has voted."""
    turn = {"index": t.index, "action": t.action, "result": t.result, "variants": [v.text for v in t.variants],
            "chosen": t.chosen, "mode": move_of(t.action, t.mode)}
    if t.arena:
        turn["arena"] = True
        turn["voted"] = t.arena == 2
    if not t.arena or t.arena == 2:
        turn["models"] = [v.model for v in t.variants]
    if english:
        turn.update(action_en=t.action_en, result_en=t.result_en)
    return turn


def story_view(game) -> list[dict]:
    """The story as paragraphs: a continuation has no action, narration (story mode) is no action but prose."""
    story = [{"kind": "world", "text": game.world}]
    for t in game.turns:
        move = move_of(t.action, t.mode)
        if move != "continue":
            story.append({"kind": "narration" if move == "story" else "action",
                          "text": say_action(t.action) if move == "say" else t.action})
        story.append({"kind": "result", "text": t.result})
    return story


def game_view(game, model: str, default_preset: str) -> dict:
    steering = game.steering or {}
    view = {"game_id": game.id, "world": game.world, "turns": [turn_view(t, game.english) for t in game.turns],
            "story": story_view(game), "pending_job": game.pending_job,
            "model": None if any(t.arena == 1 for t in game.turns) else model,  # a blind pair may hold it
            "memory": steering.get("memory", ""), "authors_note": steering.get("authors_note", ""),
            "authors_note_depth": steering.get("authors_note_depth", 3),
            "world_info": steering.get("world_info", []), "banned_words": steering.get("banned_words", []),
            "stop": steering.get("stop", []), "preset": game.preset or default_preset,
            "max_new_tokens": game.max_new_tokens,
            "arena": game.arena, "shared": game.share_id is not None, "can_redo": game.redo_depth > 0}
    if game.share_id:
        view["share_id"] = game.share_id
    if game.world_en is not None:
        view["world_en"] = game.world_en
    return view


def shared_view(game, share_id: str, model: str) -> dict:
    """The read-only story behind a share link, as it reads: each turn's action and chosen result, nothing else
    (no steering, no other variants, no model names of an arena game, voted or not)."""
    view = {"share_id": share_id, "world": game.world, "story": story_view(game),
            "turns": [{"index": t.index, "action": t.action, "result": t.result} for t in game.turns]}
    if not game.arena:
        view["model"] = model
    return view


def job_view(job, position: int | None, write_error: str | None) -> dict:
    view = {"job_id": job.id, "game_id": job.game_id, "kind": job.kind, "status": job.status}
    if job.status in PENDING:
        if position is not None:  # waiting in the queue (also when put back there after a refused write)
            view.update(status="queued", position=position)
        if write_error:
            view["delayed"] = f"the database cannot be written ({write_error}); this turn is kept and runs when it can"
    elif job.status == "done" and job.turn is not None:
        view["turn"] = turn_view(job.turn, job.turn.english)
    elif job.status == "done":
        view["undone"] = True  # its turn was undone or replaced by a retry since: it is no longer in the game
    elif job.status in ("failed", "cancelled"):
        view["error"] = job.error
        view["message"] = job_failure(job.status if job.status == "cancelled" else job.error)
    return view


# NUL, C0/C1 controls but line breaks and tabs, and the bidi marks, embeddings, overrides and isolates that make
# text read in another order than it is stored: nothing a reader of an exported story should get.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&|~])")  # markup anywhere in a line; at its start also:
_LINE_START = re.compile(r"^([#+=-]|\d+(?=[.)]))")    # headings, list items, setext underlines, numbered items


def plain_text(text: str) -> str:
    return _CONTROLS.sub("", text)


def markdown_text(text: str) -> str:
    """Story text as Markdown that renders as that text: every character Markdown or HTML would read as markup
    backslash-escaped (`<script>`, `**`, `[link](...)`, `# `, `1. `), lines unindented (no code blocks)."""
    lines = [_MARKDOWN.sub(r"\\\1", line.strip()) for line in plain_text(text).split("\n")]
    return "\n".join(_LINE_START.sub(lambda m: m[1] + "\\" if m[1][0].isdigit() else "\\" + m[1], line)
                     for line in lines)


def markdown(game) -> str:
    lines = ["# gamio", ""]
    for entry in story_view(game):  # a continuation has no action line, narration is a paragraph of prose
        if entry["kind"] == "action":
            lines += [f"> **{markdown_text(entry['text'].replace(chr(10), ' '))}**", ""]
        else:
            lines += [markdown_text(entry["text"]), ""]
    return "\n".join(lines)
