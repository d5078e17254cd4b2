"""What the API shows of a game and a job (JSON views built from the store's rows)."""
from __future__ import annotations

from serving.http import service
from serving.store import PENDING


def turn_view(t: dict, english: bool, reveal: bool = True) -> dict:
    """A turn with its variants; an arena turn's models stay hidden until the player has voted."""
    arena = t.get("arena") or 0
    variants = [v["text"] for v in t["variants"]]
    turn = {"index": t["idx"], "action": t["action"], "result": t["result"], "variants": variants,
            "chosen": t["chosen"]}
    if arena:
        turn["arena"] = True
        turn["voted"] = arena == 2
    if reveal and (not arena or arena == 2):
        turn["models"] = [v.get("model") for v in t["variants"]]
    if english:
        turn.update(action_en=t["action_en"], result_en=t["result_en"])
    return turn


def game_view(game_id: str, game: dict | None = None) -> dict:
    svc = service()
    game = game or svc.store.game(game_id)
    english = any(t["action_en"] is not None for t in game["turns"])
    story = [{"kind": "world", "text": game["world"]}]
    for t in game["turns"]:
        story += [{"kind": "action", "text": t["action"]}, {"kind": "result", "text": t["result"]}]
    steering = game["steering"] or {}
    view = {"game_id": game["id"], "world": game["world"], "turns": [turn_view(t, english) for t in game["turns"]],
            "story": story, "pending_job": game["pending_job"], "model": svc.choice.name,
            "memory": steering.get("memory", ""), "authors_note": steering.get("authors_note", ""),
            "authors_note_depth": steering.get("authors_note_depth", 3),
            "world_info": steering.get("world_info", []), "banned_words": steering.get("banned_words", []),
            "stop": steering.get("stop", []), "preset": game["preset"] or svc.worker.pipeline.settings.name,
            "arena": game["arena"], "shared": game["share_id"] is not None, "can_redo": game["redo"] > 0}
    if game["share_id"]:
        view["share_id"] = game["share_id"]
    if game["world_en"] is not None:
        view["world_en"] = game["world_en"]
    return view


def job_view(job: dict) -> dict:
    svc = service()
    view = {"job_id": job["id"], "game_id": job["game_id"], "kind": job["kind"], "status": job["status"]}
    if job["status"] in PENDING:
        position = svc.worker.position(job["id"])
        if position is not None:  # waiting in the queue (also when put back there after a refused write)
            view.update(status="queued", position=position)
        if svc.store.database.write_error:
            view["delayed"] = f"the database cannot be written ({svc.store.database.write_error}); this turn is " \
                              f"kept and runs when it can"
    elif job["status"] == "done" and job["turn"] is not None:
        english = job["turn"].get("action_en") is not None
        view["turn"] = turn_view(job["turn"], english)
    elif job["status"] == "done":
        view["undone"] = True  # its turn was undone or replaced by a retry since: it is no longer in the game
    elif job["status"] == "failed":
        view["error"] = job["error"]
    return view
