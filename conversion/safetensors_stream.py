"""Write safetensors files one tensor at a time, so the converter never holds more than one tensor.

The `safetensors` library saves a dict of tensors that are all in memory; for a 1.5B model that is the whole model.
The format is simple enough to stream: `u64 header length | JSON header | raw little-endian bytes`, and the header
only needs names, dtypes and shapes, which the checkpoint index gives before any tensor is read. Above
`max_shard_bytes` the tensors are split over `model-0000i-of-0000n.safetensors` with a
`model.safetensors.index.json`, the layout transformers itself writes and loads.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32", "float64": "F64"}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CHUNK_ELEMENTS = 1 << 22  # 4M values: 16 MB of float32 converted at a time


@dataclass(frozen=True)
class TensorSpec:
    key: str
    shape: tuple[int, ...]
    dtype: str  # numpy name: float16 / float32

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def parse_size(value: int | str) -> int:
    """`5GB`, `500MB`, `1GiB` or a number of bytes -> bytes (decimal units, as transformers' max_shard_size)."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9, "B": 1}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def plan_shards(specs: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Greedy split in order; a tensor larger than the limit gets a shard of its own (as in transformers)."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


class SafetensorsStream:
    """Call `write(key, array)` for every spec, in order, then `close()`."""

    def __init__(self, folder: Path, specs: list[TensorSpec], max_shard_bytes: int, metadata: dict | None = None):
        self.folder = Path(folder)
        self.metadata = {"format": "pt", **(metadata or {})}
        self.shards = plan_shards(specs, max_shard_bytes)
        n = len(self.shards)
        self.file_names = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self._queue = [(i, spec) for i, shard in enumerate(self.shards) for spec in shard]
        self._next = 0
        self._fh = None
        self._shard = -1

    def write(self, key: str, array: np.ndarray) -> None:
        """Append the next planned tensor, converting it to the planned dtype a chunk at a time.

        Chunking keeps the converted copy small (the source is usually a memory map); a value that does not fit the
        narrower dtype (beyond float16's +-65504) is an OverflowError naming the tensor, never a silent inf.
        """
        if self._next >= len(self._queue):
            raise ValueError(f"unexpected tensor {key!r}: every planned tensor is already written")
        shard, spec = self._queue[self._next]
        if key != spec.key or tuple(array.shape) != spec.shape:
            raise ValueError(f"expected {spec.key} {list(spec.shape)}, got {key} {list(array.shape)}")
        if shard != self._shard:
            self._open(shard)
        target = np.dtype(spec.dtype).newbyteorder("<")
        flat = array.reshape(-1)
        for start in range(0, flat.size, CHUNK_ELEMENTS):
            part = flat[start:start + CHUNK_ELEMENTS]
            converted = np.require(part.astype(target, copy=False), requirements="C")
            if converted.dtype.itemsize < part.dtype.itemsize and not np.isfinite(converted).all() \
                    and np.isfinite(part).all():
                raise OverflowError(f"tensor {key!r} has values beyond the range of {spec.dtype}")
            self._fh.write(memoryview(converted).cast("B"))
        self._next += 1

    def close(self) -> list[Path]:
        """Finish the files (and the index when sharded); returns the files written."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._next != len(self._queue):
            raise ValueError(f"only {self._next} of {len(self._queue)} tensors were written")
        paths = [self.folder / name for name in self.file_names]
        if len(self.shards) > 1:
            index = {"metadata": {"total_size": sum(s.nbytes for shard in self.shards for s in shard)},
                     "weight_map": {s.key: self.file_names[i] for i, shard in enumerate(self.shards) for s in shard}}
            (self.folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
            paths.append(self.folder / INDEX_FILE)
        return paths

    def _open(self, shard: int) -> None:
        if self._fh is not None:
            self._fh.close()
        header: dict = {"__metadata__": {k: str(v) for k, v in self.metadata.items()}}
        offset = 0
        for spec in self.shards[shard]:
            header[spec.key] = {"dtype": SAFETENSORS_DTYPES[spec.dtype], "shape": list(spec.shape),
                                "data_offsets": [offset, offset + spec.nbytes]}
            offset += spec.nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)  # keep the tensor data 8-byte aligned, as safetensors does
        self._fh = open(self.folder / self.file_names[shard], "wb")
        self._fh.write(struct.pack("<Q", len(encoded)) + encoded)
        self._shard = shard
