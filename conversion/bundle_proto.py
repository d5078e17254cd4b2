"""The two protobuf messages of a tensor bundle's index (tensorflow/core/protobuf/tensor_bundle.proto), by hand.

    BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2; VersionDef version = 3; }
    BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3; int64 offset = 4;
                        int64 size = 5; fixed32 crc32c = 6; repeated TensorSliceProto slices = 7; }
    TensorShapeProto  { repeated Dim dim = 2 { int64 size = 1; string name = 2; }; bool unknown_rank = 3; }
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conversion.protowire import (
    LENGTH_DELIMITED, as_int64, field_bytes, field_fixed32, field_varint, iter_fields,
)

# tensorflow/core/framework/types.proto DataType -> numpy dtype of the stored little-endian bytes.
# BFLOAT16 has no numpy dtype: its raw uint16 is widened to float32 by the reader.
TF_DTYPES: dict[int, tuple[str, np.dtype]] = {
    1: ("float32", np.dtype("<f4")),
    2: ("float64", np.dtype("<f8")),
    3: ("int32", np.dtype("<i4")),
    9: ("int64", np.dtype("<i8")),
    14: ("bfloat16", np.dtype("<u2")),
    19: ("float16", np.dtype("<f2")),
}
DTYPE_BY_NAME = {name: code for code, (name, _) in TF_DTYPES.items()}


@dataclass(frozen=True)
class BundleHeader:
    num_shards: int = 1
    big_endian: bool = False
    producer: int = 1

    def encode(self) -> bytes:
        version = field_varint(1, self.producer)
        out = field_varint(1, self.num_shards)
        if self.big_endian:
            out += field_varint(2, 1)
        return out + field_bytes(3, version)


@dataclass(frozen=True)
class BundleEntry:
    dtype: int
    shape: tuple[int, ...]
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int = 0  # masked
    has_slices: bool = False

    @property
    def dtype_name(self) -> str:
        return TF_DTYPES[self.dtype][0] if self.dtype in TF_DTYPES else f"DataType {self.dtype}"

    def encode(self) -> bytes:
        dims = b"".join(field_bytes(2, field_varint(1, d)) for d in self.shape)
        out = field_varint(1, self.dtype) + field_bytes(2, dims)
        if self.shard_id:
            out += field_varint(3, self.shard_id)
        if self.offset:
            out += field_varint(4, self.offset)
        return out + field_varint(5, self.size) + field_fixed32(6, self.crc32c)


def decode_header(buf: bytes) -> BundleHeader:
    num_shards, big_endian, producer = 1, False, 0
    for field, wire, value in iter_fields(buf):
        if field == 1:
            num_shards = int(value)
        elif field == 2:
            big_endian = value == 1
        elif field == 3 and wire == LENGTH_DELIMITED:
            for sub, _, v in iter_fields(value):
                if sub == 1:
                    producer = int(v)
    return BundleHeader(num_shards=num_shards, big_endian=big_endian, producer=producer)


def decode_entry(buf: bytes) -> BundleEntry:
    values: dict = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": 0, "has_slices": False}
    for field, wire, value in iter_fields(buf):
        if field == 1:
            values["dtype"] = int(value)
        elif field == 2 and wire == LENGTH_DELIMITED:
            values["shape"] = _decode_shape(value)
        elif field == 3:
            values["shard_id"] = int(value)
        elif field == 4:
            values["offset"] = as_int64(int(value))
        elif field == 5:
            values["size"] = as_int64(int(value))
        elif field == 6:
            values["crc32c"] = int(value)
        elif field == 7:
            values["has_slices"] = True
    return BundleEntry(**values)


def _decode_shape(buf: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for field, wire, value in iter_fields(buf):
        if field == 2 and wire == LENGTH_DELIMITED:
            size = 0
            for sub, _, v in iter_fields(value):
                if sub == 1:
                    size = as_int64(int(v))
            dims.append(size)
        elif field == 3 and value:
            raise ValueError("tensor of unknown rank")
    return tuple(dims)
