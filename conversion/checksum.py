"""CRC32C as LevelDB and TensorFlow store it: "masked", so that a CRC of data that itself holds CRCs stays useful."""
from __future__ import annotations

import crc32c as _crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c(data, value: int = 0) -> int:
    """CRC32C (Castagnoli) of a bytes-like object; hardware-accelerated by the `crc32c` package."""
    return _crc32c.crc32c(data, value)


def mask(crc: int) -> int:
    """Rotate right by 15 bits and add a constant (leveldb/util/crc32c.h)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return mask(crc32c(data))
