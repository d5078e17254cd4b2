"""`python -m serving.migrate <sqlite file> <postgresql url>`: move an existing SQLite game world (games, turns,
variants, votes, shares) into PostgreSQL and verify the counts (serving/storage/migrate.py does it). Stop the
server first; start the new ones with `db=<postgresql url>`."""
from __future__ import annotations

import argparse
import logging
import sys

from adventure.errors import GamioError
from serving.storage.migrate import migrate

log = logging.getLogger("serving.migrate")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    parser = argparse.ArgumentParser(prog="python -m serving.migrate",
                                     description="Copy a SQLite game world into an empty PostgreSQL database.")
    parser.add_argument("sqlite", help="the SQLite database (serving `db=`, e.g. artifacts/serving/gamio.sqlite)")
    parser.add_argument("url", help="postgresql://user@host:port/name (its schema is created)")
    args = parser.parse_args(argv)
    if not args.url.startswith(("postgresql://", "postgres://")):
        print(f"error: url={args.url}: not a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        copied = migrate(args.sqlite, args.url)
    except GamioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("copied %s; the counts match", ", ".join(f"{n} {what}" for what, n in copied.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
