"""The schema of the game world, for both backends, and its version.

Tables: games, turns (their variants as JSON), jobs (the queue: claims and leases), votes (arena), meta, and
rate_limits (per-client token buckets, used where several processes share the database). Columns added after
the first release go to ADDED_COLUMNS, never into TABLES, so that an old SQLite file and a new database end up
alike; PostgreSQL databases are versioned in `meta.schema_version` and migrated at start (MIGRATIONS).
"""
from __future__ import annotations

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    world TEXT NOT NULL,
    world_en TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    created {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    game_id TEXT NOT NULL REFERENCES games(id),
    idx INTEGER NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    action_en TEXT,
    result_en TEXT,
    created {real} NOT NULL,
    PRIMARY KEY (game_id, idx)
);
CREATE TABLE IF NOT EXISTS jobs (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    game_id TEXT NOT NULL REFERENCES games(id),
    kind TEXT NOT NULL,              -- turn | retry
    action TEXT NOT NULL,
    game_version INTEGER NOT NULL,   -- the game's version when the job was accepted
    status TEXT NOT NULL,            -- queued | running | done | failed
    error TEXT,
    turn_idx INTEGER,
    created {real} NOT NULL,
    started {real},
    finished {real}
);
CREATE TABLE IF NOT EXISTS votes (
    id {serial},
    game_id TEXT NOT NULL,
    turn_idx INTEGER NOT NULL,
    prompt TEXT NOT NULL,            -- what the main model was asked (eval's preference set keeps it)
    text_a TEXT NOT NULL,            -- the variant shown first
    text_b TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    choice TEXT NOT NULL,            -- a | b
    created {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_limits (key TEXT PRIMARY KEY, tokens {real} NOT NULL, updated {real} NOT NULL);
"""
# (table, column, declaration): columns added after the first release; old databases get them at start.
ADDED_COLUMNS = (
    ("turns", "job_id", "TEXT"),      # the job whose result the turn holds (its turn job, or the last retry)
    ("games", "touched", "{real}"),   # the last change (created, turn accepted or written, undo): for expiry
    ("games", "steering", "TEXT"),    # JSON: memory, author's note, world info, banned words, stop strings
    ("games", "preset", "TEXT"),      # a generation preset name; NULL: the server's
    ("games", "arena", "INTEGER"),    # 1: the player agreed to blind two-model turns
    ("games", "share_id", "TEXT"),    # a read-only link's id; NULL: not shared
    ("games", "redo", "TEXT"),        # JSON stack of undone turns (a new turn clears it)
    ("turns", "variants", "TEXT"),    # JSON [{text, text_en, model, job}]; NULL (older rows): the one result
    ("turns", "chosen", "INTEGER"),   # the variant `result` holds
    ("turns", "arena", "INTEGER"),    # 1: two models' blind variants; 2: voted
    ("turns", "prompt", "TEXT"),      # the prompt the (main) model was asked: what a vote is about
    ("jobs", "n", "INTEGER"),         # variants asked for
    ("jobs", "arena", "INTEGER"),     # 1: generate this turn with two models, blind
    ("jobs", "client", "TEXT"),       # who sent it: the client's share of the queue is counted here
    ("jobs", "claimed_by", "TEXT"),   # the server process generating it (running)
    ("jobs", "lease_until", "{real}"),  # its claim lapses then unless renewed: a dead process's jobs run again
)
# Schema version 2 (PostgreSQL): a turn's move and the reply length a player chose.
ADDED_COLUMNS_2 = (
    ("turns", "mode", "TEXT"),        # do | say | story | continue; NULL (older rows): do
    ("jobs", "mode", "TEXT"),         # the move asked for (a retry: the last turn's)
    ("jobs", "max_new_tokens", "INTEGER"),   # the reply length asked for with the turn; NULL: the game's
    ("games", "max_new_tokens", "INTEGER"),  # the game's reply length (PATCH); NULL: the preset's
)
INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_game ON jobs (game_id, status);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_client ON jobs (client, status);
CREATE INDEX IF NOT EXISTS turns_by_job ON turns (job_id);
CREATE INDEX IF NOT EXISTS games_by_touched ON games (touched);
CREATE UNIQUE INDEX IF NOT EXISTS games_by_share ON games (share_id);
"""
SQLITE_TYPES = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"}
POSTGRES_TYPES = {"serial": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION"}  # REAL is 4 bytes there


def postgres_migrations() -> list[tuple[int, str]]:
    """(version, SQL) in order; a database at version v runs those above it at start, in one transaction."""
    def columns(added) -> str:
        return "\n".join(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {d.format(**POSTGRES_TYPES)};"
                         for t, c, d in added)

    return [(1, TABLES.format(**POSTGRES_TYPES) + columns(ADDED_COLUMNS) + INDEXES), (2, columns(ADDED_COLUMNS_2))]


SCHEMA_VERSION = postgres_migrations()[-1][0]
