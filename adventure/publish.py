"""Write a folder or a file whole or not at all: how every stage publishes its output.

    with publish_folder(dest) as staging:  # a fresh, empty, hidden folder beside dest (same filesystem, 0755)
        ...write into staging...           # any exception (Ctrl-C too): staging is removed, dest untouched
    # normal exit: staging has become dest, the previous dest is gone
    write_file(path, data)                 # one file: a temp file beside it, fsync, os.replace

Crash safety: at any instant (kill -9 included) dest is the previous complete folder or the new one, never a
mixture. Everything is fsynced before the swap. With no dest yet the swap is one rename. To replace dest, Linux's
renameat2(RENAME_EXCHANGE) swaps the two names in one atomic step, so dest stays complete throughout; elsewhere
(or on a filesystem without it) dest is renamed aside to `.<name>.old-<pid>@<host>-*`, then staging to dest. A crash
between those two renames leaves the complete old folder aside, and the next publish_folder(dest) first renames
it back (recover). It also removes what killed publishers of this host left (`.<name>.staging-*`, asides); what
live processes or other hosts are using is left alone.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger(__name__)
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100  # linux/fs.h, fcntl.h


@contextmanager
def publish_folder(dest: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder that becomes `dest` on normal exit. replace=False: an existing `dest` (e.g.
    built meanwhile by a concurrent process) is kept and this build discarded."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-{_owner()}-", dir=dest.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a published folder should not be
        yield staging
        for root, _, files in os.walk(staging):  # on disk before the rename makes it visible
            for name in [*files, "."]:
                _fsync(os.path.join(root, name))
        _swap_in(staging, dest, replace)
    finally:  # after the swap this is the previous dest, this build (replace=False) or nothing
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def publish_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Yield a file open for writing (UTF-8 text unless mode has "b"); on normal exit it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
        _fsync(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_file(path: str | Path, data: str | bytes) -> Path:
    """Replace `path` atomically with text (UTF-8) or bytes."""
    with publish_file(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
    return Path(path)


def recover(dest: str | Path) -> None:
    """Restore the previous `dest` if a publisher was killed between the fallback's two renames, and remove the
    staging folders and asides that dead publishers of this host left beside it."""
    dest = Path(dest)
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(staging|old)-(\d+)@(.+)-[^-]+")
    for leftover in sorted(dest.parent.glob(f".{dest.name}.*")):
        match = pattern.fullmatch(leftover.name)
        if not match or match[3] != socket.gethostname() or _alive(int(match[2])):
            continue
        if match[1] == "old" and not dest.exists():
            os.rename(leftover, dest)
            log.warning("restored %s from %s: a publisher was killed in the middle of its swap", dest, leftover)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    return True


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(staging: Path, dest: Path, replace: bool) -> None:
    try:
        os.rename(staging, dest)  # no dest yet (an empty folder there is replaced too)
        return
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    if not replace:
        log.info("%s already exists (built meanwhile?): kept it, discarded this build", dest)
    elif not _exchange(staging, dest):
        aside = staging.with_name(staging.name.replace(".staging-", ".old-", 1))
        os.rename(dest, aside)
        os.rename(staging, dest)  # killed just before this: recover() renames aside back
        shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not supported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))
