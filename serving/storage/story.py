"""Story editing in the store: choose a variant, edit a turn, redo, steering, export/import, read-only sharing.

Nothing a player wrote or was given is ever lost: a retry adds a variant instead of overwriting, an edited reply
becomes a variant of its own (marked `edited`), undo keeps the turn for redo. Every change that moves the story
keeps the server's two rules: one pending job per game (409 while a turn is generated) and the game's version
(a job accepted before the change fails instead of writing over it). Steering (memory, world info, ...) is not
part of the story: changing it neither needs nor bumps the version.
"""
from __future__ import annotations

import json
import secrets
import time

from serving.errors import BadRequest, Conflict, NotFound
from serving.storage.store import Store, dumps, turn_record

EXPORT_FORMAT = "gamio-game"
EXPORT_VERSION = 1


class StoryEditor:
    def __init__(self, store: Store):
        self.store = store

    def _turn(self, db, game_id: str, idx: int):
        row = db.execute("SELECT * FROM turns WHERE game_id = ? AND idx = ?", (game_id, idx)).fetchone()
        if row is None:
            raise NotFound(f"this game has no turn {idx}")
        return turn_record(row)

    @staticmethod
    def _moved(db, game_id: str) -> None:
        db.execute("UPDATE games SET version = version + 1, touched = ? WHERE id = ?", (time.time(), game_id))

    # ---- variants and edits ------------------------------------------------------------------------------

    def choose(self, game_id: str, idx: int, variant: int) -> dict | None:
        """Make `variant` the turn's result. An arena turn's first choice is the player's vote: it is recorded and
        returned ({models, vote}); otherwise None."""
        with self.store._transaction() as db:
            self.store._refuse_if_pending(db, game_id)
            turn = self._turn(db, game_id, idx)
            if not 0 <= variant < len(turn.variants):
                raise BadRequest(f"turn {idx} has variants 0..{len(turn.variants) - 1}, not {variant}")
            chosen = turn.variants[variant]
            db.execute("UPDATE turns SET result = ?, result_en = ?, chosen = ? WHERE game_id = ? AND idx = ?",
                       (chosen.text, chosen.text_en, variant, game_id, idx))
            self._moved(db, game_id)
            if not turn.arena:
                return None
            models = [v.model for v in turn.variants]
            if turn.arena == 1 and variant < 2:  # the blind pair; once voted, later choices are not votes
                a, b = turn.variants[:2]
                db.execute("INSERT INTO votes (game_id, turn_idx, prompt, text_a, text_b, model_a, model_b, choice, "
                           "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (game_id, idx, turn.prompt or "", a.text, b.text, a.model, b.model,
                            "ab"[variant], time.time()))
                db.execute("UPDATE turns SET arena = 2 WHERE game_id = ? AND idx = ?", (game_id, idx))
                return {"models": models, "vote": "ab"[variant]}
            return {"models": models}

    def edit(self, game_id: str, idx: int, action: str | None, result: str | None) -> None:
        """Edit any turn's action and/or result; an edited result is added as a variant and chosen. English games
        lose the turn's stored translation, so the next turn translates the edited text again."""
        with self.store._transaction() as db:
            self.store._refuse_if_pending(db, game_id)
            turn = self._turn(db, game_id, idx)
            if action is not None:
                db.execute("UPDATE turns SET action = ?, action_en = NULL WHERE game_id = ? AND idx = ?",
                           (action, game_id, idx))
            if result is not None:
                variants = [v.to_dict() for v in turn.variants] + [{"text": result, "text_en": None, "model": "edited"}]
                db.execute("UPDATE turns SET result = ?, result_en = NULL, variants = ?, chosen = ? "
                           "WHERE game_id = ? AND idx = ?", (result, dumps(variants), len(variants) - 1, game_id, idx))
            self._moved(db, game_id)

    def redo(self, game_id: str) -> None:
        with self.store._transaction() as db:
            self.store._refuse_if_pending(db, game_id)
            stack = json.loads(db.execute("SELECT redo FROM games WHERE id = ?", (game_id,)).fetchone()["redo"] or "[]")
            if not stack:
                raise Conflict("there is no undone turn to redo")
            turn = stack.pop()
            turn["idx"] = db.execute("SELECT COUNT(*) AS n FROM turns WHERE game_id = ?", (game_id,)).fetchone()["n"]
            columns = [c for c in turn if c != "game_id"]
            db.execute(f"INSERT INTO turns (game_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
                       [game_id, *(turn[c] for c in columns)])
            db.execute("UPDATE games SET redo = ? WHERE id = ?", (dumps(stack) if stack else None, game_id))
            self._moved(db, game_id)

    # ---- steering ----------------------------------------------------------------------------------------

    def set_steering(self, game_id: str, steering: dict, preset: str | None, set_preset: bool) -> None:
        with self.store._transaction() as db:
            db.execute("UPDATE games SET steering = ?, touched = ? WHERE id = ?", (dumps(steering), time.time(),
                                                                                 game_id))
            if set_preset:
                db.execute("UPDATE games SET preset = ? WHERE id = ?", (preset, game_id))

    # ---- sharing -----------------------------------------------------------------------------------------

    def share(self, game_id: str) -> str:
        """The game's read-only share id (made once; a new one after a revoke). It is never a write token."""
        with self.store._transaction() as db:
            current = db.execute("SELECT share_id FROM games WHERE id = ?", (game_id,)).fetchone()["share_id"]
            if current:
                return current
            share_id = secrets.token_urlsafe(12)
            db.execute("UPDATE games SET share_id = ? WHERE id = ?", (share_id, game_id))
            return share_id

    def unshare(self, game_id: str) -> None:
        with self.store._transaction() as db:
            db.execute("UPDATE games SET share_id = NULL WHERE id = ?", (game_id,))

    def shared_game(self, share_id: str) -> str:
        with self.store.database.read() as db:
            row = db.execute("SELECT id FROM games WHERE share_id = ?", (share_id,)).fetchone()
        if row is None:
            raise NotFound("no shared story with this id (it may have been revoked)")
        return row["id"]

    # ---- export and import -------------------------------------------------------------------------------

    def export(self, game_id: str) -> dict:
        game = self.store.game(game_id)
        return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "world": game.world,
                "world_en": game.world_en, "steering": game.steering, "preset": game.preset,
                "turns": [{"action": t.action, "action_en": t.action_en, "chosen": t.chosen, "mode": t.mode or "do",
                           "variants": [{"text": v.text, "text_en": v.text_en, "model": v.model} for v in t.variants]}
                          for t in game.turns]}

    def import_game(self, data: dict, *, arena: bool = False) -> tuple[str, str]:
        """A new game from an export (checked by the caller); (game_id, token)."""
        game_id, token = self.store.create_game(data["world"], arena=arena, steering=data["steering"] or None,
                                                preset=data["preset"])
        with self.store._transaction() as db:
            now = time.time()
            if data.get("world_en") is not None:
                db.execute("UPDATE games SET world_en = ? WHERE id = ?", (data["world_en"], game_id))
            for idx, turn in enumerate(data["turns"]):
                chosen = turn["variants"][turn["chosen"]]
                db.execute("INSERT INTO turns (game_id, idx, action, result, action_en, result_en, created, "
                           "variants, chosen, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (game_id, idx, turn["action"], chosen["text"], turn.get("action_en"),
                            chosen.get("text_en"), now, dumps(turn["variants"]), turn["chosen"], turn.get("mode")))
        return game_id, token
