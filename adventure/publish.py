"""Write a folder or a file whole or not at all: the one way every stage publishes its output.

    with publish_folder(dest) as staging:   # a fresh, empty, hidden folder beside dest
        ...write into staging...            # an exception here (Ctrl-C included) removes it; dest is untouched
    # on normal exit the complete staging folder has become dest, and the previous dest is gone

    with publish_file(path) as fh: ...      # the same for one file: temp file in the same folder, fsync, rename
    write_file(path, text_or_bytes)

Readers (eval, serving, the next stage) therefore see the previous complete folder or the new complete one, never
a mixture or a half-written one. Staging lives in the destination's folder, so the final step is a rename on one
filesystem; its name is `.<name>.staging-<pid>@<host>-<random>`, hidden and traceable to the process that made it.

Crash safety (kill -9 or power loss at any instant). Everything written is fsynced before the swap, so a rename
never publishes data that is not on disk yet. The swap itself:
  - no dest yet: one rename(staging, dest); atomic.
  - dest exists (replace=True): on Linux, renameat2(RENAME_EXCHANGE) swaps the two names in one atomic step, so
    dest is a complete folder at every instant; the old one, now under the staging name, is removed afterwards.
    Where the exchange is unsupported (other systems, some network filesystems) two renames are used: dest to
    `.<name>.old-<pid>@<host>-<random>`, then staging to dest. A crash between them leaves no dest but the old
    complete folder aside; the next publish_folder(dest) (or recover(dest)) renames it back before anything else.
  - leftovers of killed processes of this host (staging folders, asides once dest exists) are removed by the next
    publish_folder(dest); those of live processes, or of other hosts sharing the filesystem, are left alone.
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

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@contextmanager
def publish_folder(dest: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder; on normal exit it becomes `dest`.

    replace=False: an existing `dest` (e.g. built meanwhile by a concurrent process) is kept and this build
    discarded. On any exception the staging folder is removed and `dest` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-{_owner()}-", dir=dest.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a published folder should not be
        yield staging
        _fsync_tree(staging)
        _swap_in(staging, dest, replace)
    finally:  # after a swap it holds the previous dest (or this build, if replace=False kept the other)
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def publish_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Yield a file open for writing; on normal exit it replaces `path` whole (fsynced, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private, as for the folders above
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_file(path: str | Path, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically."""
    with publish_file(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
    return Path(path)


def recover(dest: str | Path) -> None:
    """Clean up after publishers of `dest` that were killed: restore the previous folder if one died between the
    two renames of the fallback swap, and remove the staging folders and asides they left."""
    dest = Path(dest)
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(staging|old)-(\d+)@(.+)-[^-]+")
    for leftover in sorted(dest.parent.glob(f".{dest.name}.*")):
        match = pattern.fullmatch(leftover.name)
        if not match or match[3] != socket.gethostname() or _alive(int(match[2])):
            continue
        if match[1] == "old" and not dest.exists():
            os.rename(leftover, dest)
            log.warning("restored %s from %s (a publisher was killed in the middle of its swap)", dest, leftover)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _owner() -> str:
    return f"{os.getpid()}@{socket.gethostname().replace('/', '_')}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    """Flush every file and folder in `folder` to disk, so a rename never outlives the data it publishes."""
    for root, _, files in os.walk(folder):
        for name in [*files, "."]:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _swap_in(staging: Path, dest: Path, replace: bool) -> None:
    """Make `staging` become `dest`; afterwards `staging` is the previous dest, this build, or gone."""
    try:
        os.rename(staging, dest)  # no dest yet; an empty folder at dest is replaced as well
        return
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
            raise
    if not replace:
        log.info("%s already exists (built meanwhile?): kept it, discarded this build", dest)
        return
    if _exchange(staging, dest):
        return
    aside = staging.with_name(staging.name.replace(".staging-", ".old-", 1))
    os.rename(dest, aside)
    os.rename(staging, dest)  # a crash just before this is undone by recover(): aside is renamed back
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not supported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
