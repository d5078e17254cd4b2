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

from serving.errors import BadRequest, Conflict, NotFound, TooLarge
from serving.storage.jobs import append_variants
from serving.storage.store import Store, dumps, new_game_id, new_token, turn_record

EXPORT_FORMAT = "gamio-game"
EXPORT_VERSION = 1
MAX_TURN_INDEX = 2**31
ARENA_STATES = {1: "blind", 2: "voted"}  # turns.arena in an export


class StoryEditor:
    def __init__(self, store: Store, max_variants: int = 50):
        self.store, self.max_variants = store, max_variants

    def refuse_full(self, turn) -> None:
        """A turn at `limits.max_variants_per_turn` takes no more variants (an edit or retry would drop none)."""
        if len(turn.variants) >= self.max_variants:
            raise TooLarge(f"turn {turn.index} already has {len(turn.variants)} variants, the limit per turn "
                           f"(limits.max_variants_per_turn); choose one of them instead")

    def _turn(self, db, game_id: str, idx: int):
        if not 0 <= idx < MAX_TURN_INDEX:  # a URL's index beyond any database integer is just no such turn
            raise NotFound(f"this game has no turn {idx}")
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
                if not (a.model and b.model):  # an imported blind turn: its models were never in the export
                    return None
                # The vote is recorded before the names leave this transaction, and only by the choice that
                # moves the turn from blind to voted: two concurrent choices record one vote.
                claimed = db.execute("UPDATE turns SET arena = 2 WHERE game_id = ? AND idx = ? AND arena = 1",
                                     (game_id, idx))
                if not claimed.rowcount:
                    return None
                db.execute("INSERT INTO votes (game_id, turn_idx, prompt, text_a, text_b, model_a, model_b, choice, "
                           "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (game_id, idx, turn.prompt or "", a.text, b.text, a.model, b.model,
                            "ab"[variant], time.time()))
                return {"models": models, "vote": "ab"[variant]}
            return {"models": models} if turn.arena == 2 else None

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
                self.refuse_full(turn)
                db.execute("UPDATE turns SET result = ?, result_en = NULL, chosen = ? WHERE game_id = ? AND idx = ?",
                           (result, len(turn.variants), game_id, idx))
                legacy = db.execute("SELECT variants IS NULL AS legacy FROM turns WHERE game_id = ? AND idx = ?",
                                    (game_id, idx)).fetchone()["legacy"]
                append_variants(db, game_id, idx, [{"text": result, "text_en": None, "model": "edited"}],
                                [v.to_dict() for v in turn.variants] if legacy else None)
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
        """The game as JSON. An arena turn says whether it is `blind` or `voted`; a blind turn's pair of variants
        has no model names (the export must not be a way around the vote), so an imported copy stays blind and
        can never vote: only the original game votes."""
        game = self.store.game(game_id)
        return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "world": game.world,
                "world_en": game.world_en, "steering": game.steering, "preset": game.preset, "arena": game.arena,
                "turns": [{"action": t.action, "action_en": t.action_en, "chosen": t.chosen, "mode": t.mode or "do",
                           "variants": [{"text": v.text, "text_en": v.text_en,
                                         "model": None if t.arena == 1 and i < 2 else v.model}
                                        for i, v in enumerate(t.variants)],
                           **({"arena": ARENA_STATES[t.arena]} if t.arena else {})}
                          for t in game.turns]}

    def import_game(self, data: dict) -> tuple[str, str]:
        """A new game from an export (checked by the caller); (game_id, token). One transaction: a refused or
        failed import leaves nothing behind."""
        game_id, token = new_game_id(), new_token()
        with self.store._transaction() as db:
            now = time.time()
            self.store._insert_game(db, game_id, token, data["world"], arena=data.get("arena", False),
                                    steering=data["steering"] or None, preset=data["preset"])
            if data.get("world_en") is not None:
                db.execute("UPDATE games SET world_en = ? WHERE id = ?", (data["world_en"], game_id))
            arena_codes = {name: code for code, name in ARENA_STATES.items()}
            for idx, turn in enumerate(data["turns"]):
                chosen = turn["variants"][turn["chosen"]]
                db.execute("INSERT INTO turns (game_id, idx, action, result, action_en, result_en, created, "
                           "variants, chosen, arena, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (game_id, idx, turn["action"], chosen["text"], turn.get("action_en"),
                            chosen.get("text_en"), now, dumps(turn["variants"]), turn["chosen"],
                            arena_codes.get(turn.get("arena"), 0), turn.get("mode")))
        return game_id, token
