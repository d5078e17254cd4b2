"""What the API shows of a game and a job: pure functions of the game tier's records (serving/storage/records.py:
Game, Turn, Job), with the few facts that are not in a record passed in."""
from __future__ import annotations

from adventure.story_format import say_action
from serving.game.turn_input import move_of
from serving.web.messages import job_failure

PENDING = ("queued", "running")


def turn_view(t, english: bool, reveal: bool = True) -> dict:
    """A turn with its variants; an arena turn's models stay hidden until the player has voted."""
    turn = {"index": t.index, "action": t.action, "result": t.result, "variants": [v.text for v in t.variants],
            "chosen": t.chosen, "mode": move_of(t.action, t.mode)}
    if t.arena:
        turn["arena"] = True
        turn["voted"] = t.arena == 2
    if reveal and (not t.arena or t.arena == 2):
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
            "story": story_view(game), "pending_job": game.pending_job, "model": model,
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
    """The read-only story behind a share link: no steering, no arena models before the vote."""
    return {"share_id": share_id, "world": game.world, "story": story_view(game), "model": model,
            "turns": [turn_view(t, game.english, reveal=False) for t in game.turns]}


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


def markdown(game) -> str:
    lines = ["# gamio", ""]
    for entry in story_view(game):
        lines += [f"> **{entry['text']}**" if entry["kind"] == "action" else entry["text"], ""]
    return "\n".join(lines)
