"""The protobuf wire format, by hand: varints and (field number, wire type, value) records.

TensorFlow's bundle index stores small protobuf messages; decoding the four wire types we meet is a few lines,
so the converter needs neither TensorFlow nor the protobuf package.
"""
from __future__ import annotations

import struct
from typing import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed varint or protobuf message."""


def read_varint(buf: bytes, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; return (value, position after it)."""
    end = len(buf) if limit is None else limit
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("varint runs past the end of its buffer")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def encode_varint(value: int) -> bytes:
    if value < 0:  # protobuf encodes negative int64 as its two's complement in 10 bytes
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each record; length-delimited values are bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            if pos + 8 > len(buf):
                raise WireError("truncated fixed64 field")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == LENGTH_DELIMITED:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise WireError("truncated length-delimited field")
            value = bytes(buf[pos:pos + size])
            pos += size
        elif wire == FIXED32:
            if pos + 4 > len(buf):
                raise WireError("truncated fixed32 field")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire} for field {field}")
        yield field, wire, value


def as_int64(value: int) -> int:
    """A varint read as a signed int64 (protobuf's int64 two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def field_varint(field: int, value: int) -> bytes:
    return encode_varint(field << 3 | VARINT) + encode_varint(value)


def field_bytes(field: int, value: bytes) -> bytes:
    return encode_varint(field << 3 | LENGTH_DELIMITED) + encode_varint(len(value)) + value


def field_fixed32(field: int, value: int) -> bytes:
    return encode_varint(field << 3 | FIXED32) + struct.pack("<I", value)
