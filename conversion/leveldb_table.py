"""LevelDB's sorted-table format, as TensorFlow uses it for a tensor bundle's `.index` file.

Layout (leveldb/doc/table_format.md, tensorflow/core/lib/io/format.h):

    [data block 1] ... [data block N] [metaindex block] [index block] [footer: 48 bytes]

Every block is followed by a 5-byte trailer: 1 compression-type byte and the masked CRC32C of (block + type byte).
A block holds entries `varint32 shared | varint32 unshared | varint32 value_len | key suffix | value`, where each
key shares `shared` bytes with the previous one (prefix compression), then a uint32 array of "restart" offsets
(entries stored with shared == 0) and the uint32 count of restarts. The index block maps a separator key to the
BlockHandle (varint64 offset, varint64 size) of each data block. The footer holds the metaindex and index handles,
zero padding, and the magic number. The index is small (one entry per tensor), so we read the whole table.
"""
from __future__ import annotations

import struct

from conversion.checksum import masked_crc32c
from conversion.errors import CheckpointError
from conversion.protowire import WireError, encode_varint, read_varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two BlockHandles padded to 2 * 20 bytes, then the 8-byte magic
TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1


def read_table(data: bytes, source: str = ".index") -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a table, in key order. Raises CheckpointError naming `source` on damage."""
    if len(data) < FOOTER_SIZE:
        raise CheckpointError(f"{source}: {len(data)} bytes is too short for a table (truncated?)")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{source}: bad table magic {magic:#018x} (not a TensorFlow checkpoint index, or truncated)")
    try:
        _meta_offset, pos = read_varint(footer, 0)
        _meta_size, pos = read_varint(footer, pos)
        index_offset, pos = read_varint(footer, pos)
        index_size, pos = read_varint(footer, pos)
    except WireError as exc:
        raise CheckpointError(f"{source}: corrupt footer ({exc})") from None
    entries: list[tuple[bytes, bytes]] = []
    for _separator, handle in _block_entries(data, index_offset, index_size, source, "index block"):
        try:
            offset, pos = read_varint(handle, 0)
            size, _ = read_varint(handle, pos)
        except WireError as exc:
            raise CheckpointError(f"{source}: corrupt block handle in the index block ({exc})") from None
        entries.extend(_block_entries(data, offset, size, source, f"data block at {offset}"))
    return entries


def _block_entries(data: bytes, offset: int, size: int, source: str, what: str) -> list[tuple[bytes, bytes]]:
    end = offset + size
    if offset < 0 or end + TRAILER_SIZE > len(data):
        raise CheckpointError(f"{source}: {what} runs past the end of the file (truncated?)")
    block = data[offset:end]
    kind = data[end]
    (stored_crc,) = struct.unpack_from("<I", data, end + 1)
    if masked_crc32c(data[offset:end + 1]) != stored_crc:
        raise CheckpointError(f"{source}: CRC32C mismatch in {what} (the file is corrupt)")
    if kind == SNAPPY_COMPRESSION:
        raise CheckpointError(
            f"{source}: {what} is snappy-compressed; TensorFlow writes bundle indexes uncompressed and this reader "
            "does not decompress snappy (re-save the checkpoint with tf.compat.v1.train.Saver)")
    if kind != NO_COMPRESSION:
        raise CheckpointError(f"{source}: {what} has unknown compression type {kind}")
    try:
        return _parse_block(block)
    except (WireError, ValueError, struct.error) as exc:
        raise CheckpointError(f"{source}: corrupt {what} ({exc})") from None


def _parse_block(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ValueError("block shorter than its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    entries_end = len(block) - 4 - 4 * num_restarts
    if entries_end < 0:
        raise ValueError(f"{num_restarts} restarts do not fit in a {len(block)}-byte block")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, entries_end))
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < entries_end:
        entry_start = pos
        shared, pos = read_varint(block, pos, entries_end)
        unshared, pos = read_varint(block, pos, entries_end)
        value_len, pos = read_varint(block, pos, entries_end)
        if shared > len(key) or pos + unshared + value_len > entries_end:
            raise ValueError(f"entry at {entry_start} overruns its block")
        if entry_start in restarts and shared:
            raise ValueError(f"restart entry at {entry_start} shares a prefix")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, bytes(block[pos:pos + value_len])))
        pos += value_len
    return entries


# ---- writing (tests and benchmarks make checkpoints with it) ----

def build_block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts: list[int] = []
    previous = b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval:
            limit = min(len(previous), len(key))
            while shared < limit and previous[shared] == key[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        out += key[shared:] + value
        previous = key
    if not restarts:
        restarts.append(0)
    out += struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def write_table(entries: list[tuple[bytes, bytes]], block_size: int = 4096, restart_interval: int = 16) -> bytes:
    """Serialize sorted (key, value) pairs as an uncompressed table, byte for byte as TensorFlow's TableBuilder."""
    keys = [k for k, _ in entries]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise ValueError("table keys must be unique and sorted")
    out = bytearray()

    def emit(block: bytes) -> bytes:
        handle = encode_varint(len(out)) + encode_varint(len(block))
        trailer = bytes([NO_COMPRESSION])
        out.extend(block + trailer + struct.pack("<I", masked_crc32c(block + trailer)))
        return handle

    index: list[tuple[bytes, bytes]] = []
    pending: list[tuple[bytes, bytes]] = []
    for i, (key, value) in enumerate(entries):
        pending.append((key, value))
        if len(build_block(pending, restart_interval)) >= block_size or i == len(entries) - 1:
            handle = emit(build_block(pending, restart_interval))
            last = pending[-1][0]
            # Index keys are short separators (>= every key of the block, < the next block's first key).
            separator = _short_separator(last, entries[i + 1][0]) if i + 1 < len(entries) else _short_successor(last)
            index.append((separator, handle))
            pending = []
    meta_handle = emit(build_block([], restart_interval))
    index_handle = emit(build_block(index, 1))
    footer = (meta_handle + index_handle).ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out + footer)


def _short_separator(start: bytes, limit: bytes) -> bytes:
    """leveldb BytewiseComparator::FindShortestSeparator."""
    common = 0
    while common < min(len(start), len(limit)) and start[common] == limit[common]:
        common += 1
    if common < min(len(start), len(limit)):
        byte = start[common]
        if byte < 0xFF and byte + 1 < limit[common]:
            return start[:common] + bytes([byte + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    """leveldb BytewiseComparator::FindShortSuccessor."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key
