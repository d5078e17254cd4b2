"""adventure.publish: a folder or a file is replaced whole or not at all, even when the writer is killed."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from adventure import publish
from adventure.paths import REPO_ROOT
from adventure.publish import publish_file, publish_folder, recover, write_file

BIG = 64 * 2 ** 20  # large enough that the kill lands while the file is being written or flushed


def make_version(folder, version: str, size: int = 1000) -> None:
    """A folder whose completeness can be checked: data, then a manifest with its hash written last."""
    data = (version.encode() * (size // len(version) + 1))[:size]
    (folder / "data.bin").write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps({"version": version, "sha256": hashlib.sha256(data).hexdigest()}))


def complete_version(folder) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    assert hashlib.sha256((folder / "data.bin").read_bytes()).hexdigest() == manifest["sha256"]
    return manifest["version"]


def leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_normal_exit_replaces_the_folder_with_readable_permissions(tmp_path):
    dest = tmp_path / "out" / "model"
    with publish_folder(dest) as staging:
        assert staging.parent == dest.parent and staging.name.startswith(".model.staging-")
        assert list(staging.iterdir()) == []
        make_version(staging, "one")
    assert complete_version(dest) == "one"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    with publish_folder(dest) as staging:
        make_version(staging, "two")
    assert complete_version(dest) == "two" and sorted(os.listdir(dest)) == ["data.bin", "manifest.json"]
    assert leftovers(dest.parent) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_inside_the_block_leaves_dest_untouched_and_no_staging(tmp_path, error):
    dest = tmp_path / "model"
    with publish_folder(dest) as staging:
        make_version(staging, "old")
    with pytest.raises(error):
        with publish_folder(dest) as staging:
            make_version(staging, "new")
            raise error()
    assert complete_version(dest) == "old" and leftovers(tmp_path) == []
    with pytest.raises(RuntimeError):
        with publish_folder(tmp_path / "never") as staging:
            raise RuntimeError()
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_replace_false_keeps_a_concurrent_winner(tmp_path):
    dest = tmp_path / "model"
    with publish_folder(dest, replace=False) as mine:
        make_version(mine, "mine")
        with publish_folder(dest) as theirs:  # another process finishes first
            make_version(theirs, "theirs")
    assert complete_version(dest) == "theirs" and leftovers(tmp_path) == []
    with publish_folder(dest, replace=True) as staging:
        make_version(staging, "replaced")
    assert complete_version(dest) == "replaced"


def test_fallback_swap_without_rename_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    dest = tmp_path / "model"
    for version in ("one", "two"):
        with publish_folder(dest) as staging:
            make_version(staging, version)
    assert complete_version(dest) == "two" and leftovers(tmp_path) == []


CHILD = """
import os, signal, sys
from adventure import publish
from tests.adventure.test_publish import make_version
dest, version, size, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "between-renames":  # the fallback swap, killed after dest was moved aside
    publish._exchange = lambda a, b: False
    rename = os.rename
    def killing_rename(src, dst):
        rename(src, dst)
        if ".old-" in str(dst):
            os.kill(os.getpid(), signal.SIGKILL)
    publish.os.rename = killing_rename
if mode == "file":
    publish.write_file(dest, version.encode() * size)
else:
    with publish.publish_folder(dest) as staging:
        print("staging", flush=True)
        make_version(staging, version, size)
"""


def child(dest, version, size, mode="folder"):
    """A process that publishes `version` into `dest` (run from the repository, like the stages)."""
    return subprocess.Popen([sys.executable, "-c", CHILD, str(dest), version, str(size), mode], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_kill_9_while_publishing_leaves_the_old_or_the_new_complete_folder(tmp_path, delay):
    dest = tmp_path / "model"
    with publish_folder(dest) as staging:
        make_version(staging, "old")
    proc = child(dest, "new", BIG)
    assert proc.stdout.readline().strip() == "staging"  # it is inside the block, writing
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert complete_version(dest) in ("old", "new")  # never a partial dest
    with publish_folder(dest) as staging:  # the next publish clears what the killed one left
        make_version(staging, "next")
    assert complete_version(dest) == "next" and leftovers(tmp_path) == []


def test_kill_9_between_the_two_renames_is_recovered(tmp_path):
    dest = tmp_path / "model"
    with publish_folder(dest) as staging:
        make_version(staging, "old")
    proc = child(dest, "new", 1000, mode="between-renames")
    assert proc.wait() == -signal.SIGKILL
    assert not dest.exists() and any(".old-" in name for name in leftovers(tmp_path))
    recover(dest)  # what the next publish_folder(dest) does first
    assert complete_version(dest) == "old" and leftovers(tmp_path) == []


def test_leftovers_of_live_processes_are_not_touched(tmp_path):
    dest = tmp_path / "model"
    with publish_folder(dest) as outer:
        recover(dest)  # this process is alive: its staging folder stays
        assert outer.is_dir()


def test_file_helper_replaces_whole_files(tmp_path):
    path = tmp_path / "sub" / "stats.json"
    write_file(path, "{}\n")
    assert path.read_text() == "{}\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    write_file(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    with pytest.raises(KeyboardInterrupt):
        with publish_file(path) as fh:
            fh.write("partial")
            raise KeyboardInterrupt()
    assert path.read_bytes() == b"\x00\x01" and os.listdir(path.parent) == ["stats.json"]


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_kill_9_while_writing_a_file_leaves_the_old_or_the_new_file(tmp_path, delay):
    path = tmp_path / "big.bin"
    write_file(path, b"old")
    proc = child(path, "n", BIG, mode="file")
    time.sleep(0.2 + delay)  # the interpreter starts first
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path.read_bytes() in (b"old", b"n" * BIG)
