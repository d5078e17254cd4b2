"""The TF tensor-bundle reader and writer: real TensorFlow bytes, shards, dtypes, and every kind of damage."""
import shutil
import struct

import numpy as np
import pytest

from tests.helpers.real_data import REAL_TF_CHECKPOINT_DIR
from conversion.bundle_reader import BundleReader, resolve_prefix, shard_path
from conversion.bundle_writer import BundleWriter, write_checkpoint_state
from conversion.checksum import masked_crc32c
from conversion.errors import CheckpointError
from conversion.leveldb_table import FOOTER_SIZE, TABLE_MAGIC, build_block, read_table, write_table
from conversion.protowire import encode_varint

TF_FIXTURE = REAL_TF_CHECKPOINT_DIR
needs_fixture = pytest.mark.skipif(not TF_FIXTURE.is_dir(),
                                   reason=f"real TensorFlow fixture {TF_FIXTURE} is absent (../shared not mounted)")


@needs_fixture
def test_writer_reproduces_real_tensorflow_bytes(tmp_path):
    """Reading what TF 2.21 wrote and writing it back gives the same .index and data, byte for byte."""
    source = BundleReader(resolve_prefix(TF_FIXTURE))
    assert source.header.num_shards == 1 and len(source.names()) == 28
    assert source.read("model/h0/attn/c_attn/w").shape == (1, 32, 96)
    with BundleWriter(tmp_path / "model-550") as writer:
        for name in source.names():
            writer.add(name, source.read(name))
    assert (tmp_path / "model-550.index").read_bytes() == (TF_FIXTURE / "model-550.index").read_bytes()
    data = "model-550.data-00000-of-00001"
    assert (tmp_path / data).read_bytes() == (TF_FIXTURE / data).read_bytes()


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "a/float32": rng.standard_normal((3, 5)).astype(np.float32),
        "a/float64": rng.standard_normal(7),
        "b/float16": rng.standard_normal((2, 2, 2)).astype(np.float16),
        "b/int32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "c/int64": np.array([-5, 1 << 40]),
        "global_step": np.array(550, dtype=np.int64),
        "empty": np.zeros((0, 4), np.float32),
    } | {f"many/v{i:03d}": np.full(4, i, np.float32) for i in range(60)}  # enough keys for several blocks


def test_round_trip_several_shards_dtypes_and_blocks(tmp_path):
    tensors = _tensors()
    with BundleWriter(tmp_path / "ckpt", num_shards=3, block_size=256) as writer:
        for name, array in tensors.items():
            writer.add(name, array)
        writer.add("d/bfloat16", np.array([0x3F80, 0xC040], np.uint16), bfloat16=True)  # 1.0, -3.0
    assert all(shard_path(tmp_path / "ckpt", i, 3).stat().st_size > 0 for i in range(3))
    reader = BundleReader(tmp_path / "ckpt")
    assert reader.header.num_shards == 3
    assert sorted(reader.names()) == sorted([*tensors, "d/bfloat16"])
    for name, array in tensors.items():
        got = reader.read(name)
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)
    np.testing.assert_array_equal(reader.read("d/bfloat16"), np.array([1.0, -3.0], np.float32))
    reader.release("a/float32")  # pages dropped from the process; the data stays readable
    np.testing.assert_array_equal(reader.read("a/float32"), tensors["a/float32"])


def test_table_prefix_compression_and_restarts():
    entries = [(f"model/h{i}/attn/c_attn/w".encode(), bytes([i]) * i) for i in range(40)]
    entries.sort()
    data = write_table(entries, block_size=200, restart_interval=4)
    assert read_table(data) == entries
    block = build_block(entries[:5], restart_interval=4)
    (count,) = struct.unpack_from("<I", block, len(block) - 4)
    assert count == 2  # restarts at entries 0 and 4
    assert block.count(b"model/h") == 2  # the shared prefix is stored only at the two restart points


def _write_small(tmp_path):
    with BundleWriter(tmp_path / "ckpt", num_shards=2) as writer:
        writer.add("model/wte", np.arange(64, dtype=np.float32).reshape(8, 8))
        writer.add("model/wpe", np.ones((4, 8), np.float32))
    return BundleReader(tmp_path / "ckpt")


def test_corrupt_tensor_bytes_is_a_crc_error_naming_the_tensor(tmp_path):
    entry = _write_small(tmp_path).entries["model/wpe"]
    path = shard_path(tmp_path / "ckpt", entry.shard_id, 2)
    data = bytearray(path.read_bytes())
    data[entry.offset + 5] ^= 0x40
    path.write_bytes(bytes(data))
    reader = BundleReader(tmp_path / "ckpt")
    np.testing.assert_array_equal(reader.read("model/wte")[0, :3], [0, 1, 2])  # the other tensor is fine
    with pytest.raises(CheckpointError, match=r"CRC32C mismatch in tensor 'model/wpe'"):
        reader.read("model/wpe")


def test_truncated_shard_names_shard_and_tensor(tmp_path):
    entry = _write_small(tmp_path).entries["model/wte"]
    path = shard_path(tmp_path / "ckpt", entry.shard_id, 2)
    path.write_bytes(path.read_bytes()[: entry.size // 2])
    with pytest.raises(CheckpointError, match=r"truncated shard ckpt\.data-00000-of-00002: tensor 'model/wte'"):
        BundleReader(tmp_path / "ckpt").read("model/wte")


def test_missing_shard_or_index(tmp_path):
    _write_small(tmp_path)
    shard_path(tmp_path / "ckpt", 1, 2).unlink()
    with pytest.raises(CheckpointError, match=r"missing file .*ckpt\.data-00001-of-00002"):
        BundleReader(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"missing file .*other\.index"):
        BundleReader(tmp_path / "other")


def test_damaged_index(tmp_path):
    _write_small(tmp_path)
    index = tmp_path / "ckpt.index"
    good = index.read_bytes()
    index.write_bytes(good[:-10])
    with pytest.raises(CheckpointError, match="bad table magic"):
        BundleReader(tmp_path / "ckpt")
    damaged = bytearray(good)
    damaged[12] ^= 0xFF  # inside the first data block
    index.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="CRC32C mismatch in data block"):
        BundleReader(tmp_path / "ckpt")


def test_snappy_compressed_blocks_are_refused_clearly():
    block = build_block([(b"", b"\x08\x01")], 16)
    trailer = bytes([1])  # kSnappyCompression
    data = block + trailer + struct.pack("<I", masked_crc32c(block + trailer))
    index_block = build_block([(b"\x01", encode_varint(0) + encode_varint(len(block)))], 1)
    index_offset = len(data)
    data += index_block + bytes([0]) + struct.pack("<I", masked_crc32c(index_block + bytes([0])))
    handles = encode_varint(0) + encode_varint(0) + encode_varint(index_offset) + encode_varint(len(index_block))
    data += handles.ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    with pytest.raises(CheckpointError, match="snappy-compressed"):
        read_table(data, "x.index")


def test_resolve_prefix_keeps_only_the_file_name_of_an_absolute_path(tmp_path):
    _write_small(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/content/run1/ckpt"\n')
    assert resolve_prefix(tmp_path) == tmp_path / "ckpt"
    write_checkpoint_state(tmp_path, "model-9")
    with pytest.raises(CheckpointError, match=r"missing file .*model-9\.index"):
        resolve_prefix(tmp_path)
    shutil.rmtree(tmp_path / "checkpoint", ignore_errors=True)
    (tmp_path / "checkpoint").unlink()
    assert resolve_prefix(tmp_path) == tmp_path / "ckpt"  # the only .index in the folder
