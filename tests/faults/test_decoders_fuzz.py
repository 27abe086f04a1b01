"""Fuzzing the TFRecord and Example decoders: any bytes decode or raise the project's error, fast."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inception3.data.example import ImageRecord, decode_example
from inception3.data.records import frame, index_records, iter_records, masked_crc32c
from inception3.errors import Inception3Error

FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_all(path) -> list[bytes]:
    with contextlib.suppress(Inception3Error):
        index_records(path)
    try:
        return list(iter_records(path))
    except Inception3Error:
        return []


@FUZZ
@given(st.binary(max_size=512))
def test_any_bytes_as_a_shard_read_as_records_or_raise_the_project_error(tmp_path, data):
    path = tmp_path / "train-00000-of-00001"
    path.write_bytes(data)
    _read_all(path)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=4), st.binary(max_size=32), st.integers(0, 200))
def test_valid_shards_with_damage_read_or_raise_the_project_error(tmp_path, records, garbage, cut):
    good = b"".join(frame(r) for r in records)
    path = tmp_path / "train-00000-of-00001"
    for damaged in (good + garbage, good[: max(0, len(good) - cut)], garbage + good):
        path.write_bytes(damaged)
        _read_all(path)


@FUZZ
@given(st.integers(0, 2**64 - 1))
def test_a_checksummed_but_absurd_length_is_reported_not_allocated(tmp_path, length):
    header = struct.pack("<Q", length)
    path = tmp_path / "train-00000-of-00001"
    path.write_bytes(header + struct.pack("<I", masked_crc32c(header)) + b"xx")
    assert _read_all(path) == []


@FUZZ
@given(st.binary(max_size=512))
def test_any_bytes_as_an_example_decode_or_raise_the_project_error(data):
    for decode in (decode_example, ImageRecord.parse):
        with contextlib.suppress(Inception3Error):
            decode(data)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["image/encoded", "image/class/label", "image/height", "image/filename", "image/object/bbox/xmin"]
        ),
        st.one_of(
            st.lists(st.binary(max_size=8), max_size=2),
            st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
            st.lists(st.floats(width=32, allow_nan=True), max_size=2),
        ),
    )
)
def test_examples_with_missing_or_mistyped_features_parse_or_raise_the_project_error(features):
    from inception3.data.example import encode_example

    with contextlib.suppress(Inception3Error):
        ImageRecord.parse(encode_example(features))
