"""TFRecord framing: TensorFlow's layout and checksum, corruption reported by shard and record."""

from __future__ import annotations

import struct

import google_crc32c
import pytest

from inception3.data.records import (
    CorruptRecordError,
    RecordFile,
    frame,
    index_records,
    iter_records,
    masked_crc32c,
    write_records,
)


def test_masked_crc_is_crc32c_rotated_right_15_plus_the_tfrecord_delta():
    crc = google_crc32c.value(b"123456789")
    assert crc == 0xE3069283  # the CRC-32C check value
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == (rotated + 0xA282EAD8) & 0xFFFFFFFF


def test_frame_layout_is_length_crc_data_crc():
    data = b"hello"
    framed = frame(data)
    assert framed[:8] == struct.pack("<Q", 5)
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(framed[:8])
    assert framed[12:17] == data
    assert struct.unpack("<I", framed[17:])[0] == masked_crc32c(data)


def test_round_trip_and_random_access_by_index(tmp_path):
    path = tmp_path / "train-00000-of-00001"
    records = [bytes([i]) * (i * 7) for i in range(6)]
    assert write_records(path, records) == 6
    assert list(iter_records(path)) == records
    offsets = index_records(path)
    assert offsets.tolist() == [sum(16 + len(r) for r in records[:i]) for i in range(6)]
    file = RecordFile(path)
    assert [file.read(i) for i in (5, 0, 3)] == [records[5], records[0], records[3]]
    assert not list(tmp_path.glob(".*tmp")), "the temporary file is renamed away"


def test_a_flipped_data_byte_names_shard_and_record(tmp_path):
    path = tmp_path / "train-00003-of-00008"
    write_records(path, [b"a" * 10, b"b" * 10, b"c" * 10])
    raw = bytearray(path.read_bytes())
    raw[26 * 2 + 12 + 4] ^= 0x01  # inside the data of record 2
    path.write_bytes(bytes(raw))
    message = r"train-00003-of-00008: record 2 is corrupt \(data checksum"
    with pytest.raises(CorruptRecordError, match=message):
        list(iter_records(path))
    assert RecordFile(path).read(1) == b"b" * 10


def test_a_truncated_file_is_reported_when_indexed(tmp_path):
    path = tmp_path / "validation-00000-of-00001"
    write_records(path, [b"x" * 100, b"y" * 100])
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CorruptRecordError, match=r"record 1 is corrupt \(file ends inside a record\)"):
        index_records(path)


def test_a_damaged_length_is_reported(tmp_path):
    path = tmp_path / "train-00000-of-00001"
    write_records(path, [b"x" * 10])
    raw = bytearray(path.read_bytes())
    raw[0] ^= 0x04
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecordError, match=r"record 0 is corrupt \(length checksum mismatch\)"):
        index_records(path)
