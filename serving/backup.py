"""`python -m serving.backup <db> <out>`: a consistent copy of the SQLite game database, taken while the server
runs (serving/storage/backup.py does it). A PostgreSQL database is backed up with `pg_dump` (serving/README.md).

Restore: stop the server, replace the db file with the backup (and delete any stale `-wal`/`-shm` beside it),
start the server again.
"""
from __future__ import annotations

import argparse
import logging
import sys

from adventure.errors import GamioError
from serving.storage.backup import backup

log = logging.getLogger("serving.backup")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    parser = argparse.ArgumentParser(prog="python -m serving.backup",
                                     description="Copy the game database consistently while the server runs.")
    parser.add_argument("db", help="the server's database (serving `db=`, e.g. artifacts/serving/gamio.sqlite)")
    parser.add_argument("out", help="the backup file to write (replaced atomically), or an existing folder for it")
    args = parser.parse_args(argv)
    try:
        written = backup(args.db, args.out)
    except GamioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("backed up %s to %s (%d bytes)", args.db, written, written.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
