"""The queue's side of the store: claiming jobs, leases, writing a finished turn, failing, recovering.

A claim marks a job `running` for this process (`claimed_by`) until `lease_until`. With PostgreSQL the claim's
UPDATE re-checks the job's state after any concurrent claim commits, and `claim_next` picks rows with
`FOR UPDATE SKIP LOCKED`: one job is claimed by exactly one worker. A running process renews its leases
(`renew_leases`, the janitor); a process killed mid-turn stops renewing, and once its leases run out another
process claims its jobs (`claim_next` takes running jobs whose lease has lapsed) and generates them again.
Completion checks the claim: a process whose lease lapsed and was taken over writes nothing.
"""
from __future__ import annotations

import json
import time

from serving.storage.records import PENDING

LEASE_S = 30.0  # a claim lapses this long after its last renewal (renewed every LEASE_S / 3)
DONE, STALE, LOST = "done", "stale", "lost"


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def append_variants(db, game_id: str, idx: int, added: list[dict], stored: list[dict] | None) -> None:
    """Add variants to a turn without sending its others again: the JSON array grows by one element in SQL (both
    backends), so an edit or retry writes its own variant, not every variant of the turn (300 edits rewrote a
    growing list each time). `stored`: the turn's variants when its row has none yet (older rows), else None."""
    db.execute("UPDATE turns SET variants = CASE WHEN variants IS NULL THEN ? "
               "ELSE substr(variants, 1, length(variants) - 1) || ? END WHERE game_id = ? AND idx = ?",
               (None if stored is None else _dumps(stored + added), ", " + _dumps(added)[1:], game_id, idx))


class JobQueue:
    """Mixed into Store (storage/store.py), which provides `database`, `owner` and the game helpers."""

    lease_s = LEASE_S

    def claim(self, job_ids: list[str]) -> list[str]:
        """Claim these jobs for this process (queued ones, or running ones whose lease lapsed); the ids won, in
        order. A job claimed by another process is not returned."""
        won = []
        with self._transaction() as db:
            now = time.time()
            for job_id in job_ids:
                row = db.execute("UPDATE jobs SET status = 'running', started = ?, claimed_by = ?, lease_until = ? "
                                 "WHERE id = ? AND (status = 'queued' OR (status = 'running' AND (claimed_by = ? "
                                 "OR lease_until < ?))) RETURNING id",
                                 (now, self.owner, now + self.lease_s, job_id, self.owner, now)).fetchone()
                if row is not None:
                    won.append(job_id)
                    self.database.notify(db, f"running {job_id}")
        return won

    mark_running = claim

    def claim_next(self, limit: int) -> list[str]:
        """Up to `limit` jobs no live process holds (queued, or running with a lapsed lease), oldest first,
        claimed for this process. Used where several processes share the database."""
        with self._transaction() as db:
            now = time.time()
            ids = [row["id"] for row in db.execute(
                "SELECT id FROM jobs WHERE status = 'queued' OR (status = 'running' AND lease_until < ?) "
                f"ORDER BY seq LIMIT ?{self.database.skip_locked}", (now, limit))]
            for job_id in ids:
                db.execute("UPDATE jobs SET status = 'running', started = ?, claimed_by = ?, lease_until = ? "
                           "WHERE id = ?", (now, self.owner, now + self.lease_s, job_id))
                self.database.notify(db, f"running {job_id}")
        return ids

    def renew_leases(self) -> int:
        """Extend this process's claims; the number of running jobs it holds."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE jobs SET lease_until = ? WHERE claimed_by = ? AND status = 'running'",
                                (time.time() + self.lease_s, self.owner))
            return max(0, cursor.rowcount or 0)

    def complete(self, job_id: str, *, variants: list[dict] | None = None, result: str | None = None,
                 result_en: str | None = None, action_en: str | None = None, world_en: str | None = None,
                 prompt: str | None = None) -> bool | None:
        """Write the job's turn and mark it done in one transaction. True: done; False: the game changed since the
        job was accepted (the job failed); None: the job is no longer this process's (another one took it over
        after the lease lapsed, or finished it): nothing written.
        `variants`: [{text, text_en, model}]. A turn job's turn gets them (the first chosen); a retry adds them to
        the last turn and chooses the first new one, so no earlier variant is lost. Each variant remembers its job."""
        if variants is None:  # one result (the turn of an older caller)
            variants = [{"text": result, "text_en": result_en, "model": None}]
        variants = [dict(v, job=job_id) for v in variants]
        with self._transaction() as db:
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None or job["status"] not in PENDING or job["claimed_by"] not in (None, self.owner):
                return None
            self.database.lock_game(db, job["game_id"])
            version = db.execute("SELECT version FROM games WHERE id = ?", (job["game_id"],)).fetchone()["version"]
            if version != job["game_version"]:
                self._fail(db, job_id, "the game changed while this turn was being generated")
                return False
            if world_en is not None:
                db.execute("UPDATE games SET world_en = ? WHERE id = ? AND world_en IS NULL", (world_en, job["game_id"]))
            now = time.time()
            if job["kind"] == "retry":
                last = db.execute("SELECT * FROM turns WHERE game_id = ? ORDER BY idx DESC LIMIT 1",
                                  (job["game_id"],)).fetchone()
                idx = last["idx"]
                kept = json.loads(last["variants"]) if last["variants"] else \
                    [{"text": last["result"], "text_en": last["result_en"], "model": None}]
                chosen = len(kept)
                db.execute("UPDATE turns SET result = ?, result_en = ?, chosen = ?, created = ? "
                           "WHERE game_id = ? AND idx = ?",
                           (variants[0]["text"], variants[0].get("text_en"), chosen, now, job["game_id"], idx))
                append_variants(db, job["game_id"], idx, variants, None if last["variants"] else kept)
                redo_change = ""
            else:
                idx = db.execute("SELECT COUNT(*) AS n FROM turns WHERE game_id = ?", (job["game_id"],)).fetchone()["n"]
                db.execute("INSERT INTO turns (game_id, idx, action, result, action_en, result_en, created, job_id, "
                           "variants, chosen, arena, prompt, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                           (job["game_id"], idx, job["action"], variants[0]["text"], action_en,
                            variants[0].get("text_en"), now, job_id, _dumps(variants), job["arena"] or 0, prompt,
                            job["mode"]))
                redo_change = ", redo = NULL"  # a new turn clears what undo kept for redo
            db.execute(f"UPDATE games SET version = version + 1, touched = ?{redo_change} WHERE id = ?",
                       (now, job["game_id"]))
            db.execute("UPDATE jobs SET status = 'done', turn_idx = ?, finished = ? WHERE id = ?", (idx, now, job_id))
            self.database.notify(db, f"done {job_id}")
        return True

    def fail(self, job_id: str, reason: str) -> None:
        with self._transaction() as db:
            self._fail(db, job_id, reason)

    def _fail(self, db, job_id: str, reason: str) -> None:
        db.execute("UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ? "
                   "AND status IN ('queued', 'running') AND (claimed_by IS NULL OR claimed_by = ?)",
                   (reason, time.time(), job_id, self.owner))
        self.database.notify(db, f"failed {job_id}")

    def recover(self) -> list[str]:
        """At start of the only process (SQLite): jobs left queued or running by a crash, in acceptance order, are
        queued again; those whose game changed since they were accepted fail with that reason. Returns the ids
        to queue. Where processes share the database nothing is taken here: the leases say which jobs are
        orphaned, and any worker claims them (`claim_next`)."""
        if self.database.shared:
            return []
        with self._transaction() as db:
            rows = db.execute("SELECT j.id, j.game_version, g.version FROM jobs j JOIN games g ON g.id = j.game_id "
                              "WHERE j.status IN ('queued', 'running') ORDER BY j.seq").fetchall()
            again = []
            for row in rows:
                if row["game_version"] != row["version"]:
                    db.execute("UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                               ("the game changed while the server was down; send the turn again", time.time(),
                                row["id"]))
                else:
                    db.execute("UPDATE jobs SET status = 'queued', started = NULL, claimed_by = NULL WHERE id = ?",
                               (row["id"],))
                    again.append(row["id"])
        return again
