"""Write a TensorFlow V2 checkpoint (tensor bundle) from numpy arrays, one tensor at a time.

The mirror of bundle_reader.py, byte-compatible with what `tf.compat.v1.train.Saver` writes: tests use it to make
the variants a real checkpoint can come in (several shards, float16, optimizer slots, damage), the benchmark to make
GPT-2-sized checkpoints without holding them in memory. Tensors go straight to their shard file; only the small
index is kept until `finish()`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from conversion.bundle_proto import DTYPE_BY_NAME, BundleEntry, BundleHeader
from conversion.bundle_reader import shard_path
from conversion.checksum import masked_crc32c
from conversion.leveldb_table import write_table


class BundleWriter:
    def __init__(self, prefix: Path | str, num_shards: int = 1, block_size: int = 4096):
        if num_shards < 1:
            raise ValueError("num_shards must be >= 1")
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.num_shards = num_shards
        self.block_size = block_size
        self._files = [open(shard_path(self.prefix, i, num_shards), "wb") for i in range(num_shards)]
        self._entries: dict[str, BundleEntry] = {}

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.finish()
        else:
            for fh in self._files:
                fh.close()

    def add(self, name: str, array: np.ndarray, shard: int | None = None, bfloat16: bool = False) -> None:
        """Append a tensor; `shard` defaults to round-robin. `bfloat16=True` stores a uint16 array as BFLOAT16."""
        if name in self._entries:
            raise ValueError(f"duplicate tensor {name!r}")
        array = np.require(array, requirements="C")  # (ascontiguousarray would turn a scalar into shape [1])
        if bfloat16:
            if array.dtype != np.uint16:
                raise ValueError("a bfloat16 tensor is given as its raw uint16 bits")
            dtype_name = "bfloat16"
        else:
            dtype_name = array.dtype.name
        if dtype_name not in DTYPE_BY_NAME:
            raise ValueError(f"cannot store {array.dtype} (supported: {sorted(DTYPE_BY_NAME)})")
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        shard = len(self._entries) % self.num_shards if shard is None else shard
        fh = self._files[shard]
        data = memoryview(array.reshape(-1).view(np.uint8))
        self._entries[name] = BundleEntry(
            dtype=DTYPE_BY_NAME[dtype_name], shape=tuple(int(d) for d in array.shape), shard_id=shard,
            offset=fh.tell(), size=data.nbytes, crc32c=masked_crc32c(data))
        fh.write(data)

    def finish(self) -> Path:
        """Close the shards and write `<prefix>.index`; returns the index path."""
        for fh in self._files:
            fh.close()
        entries = [(b"", BundleHeader(num_shards=self.num_shards).encode())]
        entries += [(name.encode("utf-8"), self._entries[name].encode()) for name in sorted(self._entries)]
        index_path = Path(f"{self.prefix}.index")
        index_path.write_bytes(write_table(entries, block_size=self.block_size))
        return index_path


def write_checkpoint_state(checkpoint_dir: Path, prefix_name: str) -> None:
    """The `checkpoint` text file that names the latest bundle prefix, as tf.train.Saver writes it."""
    (Path(checkpoint_dir) / "checkpoint").write_text(
        f'model_checkpoint_path: "{prefix_name}"\nall_model_checkpoint_paths: "{prefix_name}"\n', encoding="utf-8")
