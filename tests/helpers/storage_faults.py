"""Real storage faults for the serving tests: a small tmpfs filled to the brim (ENOSPC) or mounted read-only
(EROFS), and a SQLite file with damaged pages. Mounting needs root (CI runs as root); elsewhere the tests that
need it skip with the reason."""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "4m"):
    """A tmpfs of `size` at `folder` (skips the test where mounting is not permitted); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a full or read-only disk needs root (CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def remount(folder: Path, mode: str) -> None:
    """mode "ro" or "rw"; read-only needs every file there closed for writing (the kernel refuses otherwise)."""
    result = _mount("-o", f"remount,{mode}", str(folder))
    assert result.returncode == 0, result.stderr


def fill(folder: Path) -> Path:
    """Write a filler file until the filesystem is full to the last byte; delete it to free the space."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            while True:
                try:
                    fh.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return filler


def damage_pages(db: Path, first_page: int = 2, page_size: int = 4096) -> None:
    """Overwrite every page from `first_page` on with garbage, keeping the header page: SQLite opens the file
    but its tables are broken, as after a torn write or a bad disk block."""
    data = bytearray(db.read_bytes())
    assert len(data) > first_page * page_size, "the database is too small to damage a table page"
    for offset in range((first_page - 1) * page_size, len(data)):
        data[offset] = (offset * 131 + 17) % 251
    db.write_bytes(bytes(data))
