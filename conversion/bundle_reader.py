"""Read a TensorFlow V2 checkpoint ("tensor bundle") with numpy only.

A bundle is `<prefix>.index` (a LevelDB table: "" -> BundleHeaderProto, variable name -> BundleEntryProto) plus
`<prefix>.data-NNNNN-of-MMMMM` shards of raw tensor bytes. Shards are memory-mapped, so reading a tensor costs only
the pages it touches, and `release()` hands those pages back: converting a 6 GB checkpoint then needs memory for one
tensor at a time. Every tensor's bytes are checked against the CRC32C stored in its entry.
"""
from __future__ import annotations

import logging
import mmap
import re
from pathlib import Path

import numpy as np

from conversion.bundle_proto import TF_DTYPES, BundleEntry, BundleHeader, decode_entry, decode_header
from conversion.checksum import crc32c, unmask
from conversion.errors import CheckpointError
from conversion.leveldb_table import read_table
from conversion.protowire import WireError

log = logging.getLogger(__name__)


def shard_path(prefix: Path, shard_id: int, num_shards: int) -> Path:
    return Path(f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}")


def resolve_prefix(checkpoint_dir: Path) -> Path:
    """The bundle prefix named by the `checkpoint` state file (`model_checkpoint_path: "model-550"`).

    TensorFlow often records an absolute path from the training machine; only its file name is kept, because the
    folder has been moved since. Without a state file, a folder holding exactly one `.index` is accepted.
    """
    state = checkpoint_dir / "checkpoint"
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state.read_text(encoding="utf-8"), re.M)
        if not match:
            raise CheckpointError(f"{state}: no model_checkpoint_path line")
        prefix = checkpoint_dir / Path(match.group(1)).name
    else:
        indexes = sorted(checkpoint_dir.glob("*.index"))
        if len(indexes) != 1:
            raise CheckpointError(f"missing file {state} (and {len(indexes)} .index files to choose from)")
        prefix = indexes[0].with_suffix("")
    if not Path(f"{prefix}.index").is_file():
        raise CheckpointError(f"missing file {prefix}.index (named by {state.name})")
    return prefix


class BundleReader:
    """Tensors of one bundle by variable name: `reader.read("model/wte")` -> read-only numpy array."""

    def __init__(self, prefix: Path | str):
        self.prefix = Path(prefix)
        index_path = Path(f"{self.prefix}.index")
        if not index_path.is_file():
            raise CheckpointError(f"missing file {index_path}")
        table = read_table(index_path.read_bytes(), source=str(index_path))
        if not table or table[0][0] != b"":
            raise CheckpointError(f"{index_path}: no bundle header (empty key); not a V2 checkpoint index")
        try:
            self.header: BundleHeader = decode_header(table[0][1])
            self.entries: dict[str, BundleEntry] = {k.decode("utf-8"): decode_entry(v) for k, v in table[1:]}
        except (WireError, ValueError) as exc:
            raise CheckpointError(f"{index_path}: corrupt entry ({exc})") from None
        self.shard_paths = [shard_path(self.prefix, i, self.header.num_shards) for i in range(self.header.num_shards)]
        for path in self.shard_paths:
            if not path.is_file():
                raise CheckpointError(f"missing file {path} (data shard of {index_path.name})")
        self._maps: dict[int, mmap.mmap | bytes] = {}

    def __enter__(self) -> "BundleReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for mapped in self._maps.values():
            if isinstance(mapped, mmap.mmap):
                try:
                    mapped.close()
                except BufferError:  # an array still views it; the map goes when that array does
                    pass
        self._maps.clear()

    def names(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def nbytes(self, name: str) -> int:
        return self.entries[name].size

    def read(self, name: str) -> np.ndarray:
        """The tensor as a numpy array, after checking its size and CRC32C.

        A view of the memory map (no copy) for every dtype but bfloat16, which is widened to float32.
        """
        entry = self.entries.get(name)
        if entry is None:
            raise CheckpointError(f"{self.prefix}: no tensor named {name!r}")
        if entry.has_slices:
            raise CheckpointError(f"tensor {name!r} is stored as partitioned slices, which this reader does not join")
        if entry.dtype not in TF_DTYPES:
            raise CheckpointError(f"tensor {name!r} has {entry.dtype_name}, not one of "
                                  f"{sorted(n for n, _ in TF_DTYPES.values())}")
        dtype_name, dtype = TF_DTYPES[entry.dtype]
        if self.header.big_endian:
            dtype = dtype.newbyteorder(">")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(f"tensor {name!r}: shape {list(entry.shape)} of {dtype_name} needs "
                                  f"{count * dtype.itemsize} bytes but the index says {entry.size}")
        mapped = self._map(entry.shard_id)
        path = self.shard_paths[entry.shard_id]
        if entry.offset < 0 or entry.offset + entry.size > len(mapped):
            raise CheckpointError(f"truncated shard {path.name}: tensor {name!r} needs bytes "
                                  f"{entry.offset}..{entry.offset + entry.size} but the file has {len(mapped)}")
        data = memoryview(mapped)[entry.offset:entry.offset + entry.size]
        actual = crc32c(data)
        if actual != unmask(entry.crc32c):
            raise CheckpointError(f"CRC32C mismatch in tensor {name!r} ({path.name} bytes {entry.offset}.."
                                  f"{entry.offset + entry.size}): the checkpoint is corrupt")
        array = np.frombuffer(mapped, dtype=dtype, count=count, offset=entry.offset).reshape(entry.shape)
        if dtype_name == "bfloat16":  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def release(self, name: str) -> None:
        """Drop the tensor's pages from this process (they stay in the OS page cache): keeps peak RSS to one tensor."""
        entry = self.entries[name]
        mapped = self._maps.get(entry.shard_id)
        if not isinstance(mapped, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or entry.size == 0:
            return
        start = entry.offset - entry.offset % mmap.PAGESIZE
        end = min(len(mapped), entry.offset + entry.size)
        if end > start:
            mapped.madvise(mmap.MADV_DONTNEED, start, end - start)

    def _map(self, shard_id: int) -> mmap.mmap | bytes:
        if not 0 <= shard_id < len(self.shard_paths):
            raise CheckpointError(f"{self.prefix}.index names shard {shard_id} of {len(self.shard_paths)}")
        if shard_id not in self._maps:
            path = self.shard_paths[shard_id]
            with open(path, "rb") as fh:
                size = path.stat().st_size
                self._maps[shard_id] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return self._maps[shard_id]
