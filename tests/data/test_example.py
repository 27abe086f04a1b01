"""tf.train.Example encoding: TensorFlow's wire format, and records from TensorFlow's build scripts."""

from __future__ import annotations

import pytest

from inception3.data.example import ImageRecord, decode_example, encode_example


def test_int64_feature_matches_hand_encoded_protobuf():
    # Example{features{feature{key:"a" value{int64_list{value:[1]}}}}}, packed as proto3 does.
    expected = bytes.fromhex("0a0c0a0a0a0161120 51a030a0101".replace(" ", ""))
    assert encode_example({"a": [1]}) == expected


def test_float_and_bytes_features_match_hand_encoded_protobuf():
    # FloatList{value:[1.0]} packed: 0a 04 0000803f; BytesList{value:["x"]}: 0a 01 78.
    assert encode_example({"f": [1.0]}) == bytes.fromhex("0a 0f 0a 0d 0a 01 66 12 08 12 06 0a 04 0000803f"
                                                         .replace(" ", ""))
    assert encode_example({"b": [b"x"]}) == bytes.fromhex("0a 0c 0a 0a 0a 01 62 12 05 0a 03 0a 01 78"
                                                          .replace(" ", ""))


def test_decode_returns_lists_of_python_values():
    decoded = decode_example(encode_example({"i": [3, -4], "f": [0.5], "s": [b"ab", b""]}))
    assert decoded == {"i": [3, -4], "f": [0.5], "s": [b"ab", b""]}


def test_image_record_round_trip_with_boxes():
    record = ImageRecord(encoded=b"\xff\xd8jpeg", label=7, height=30, width=40, filename="x.jpg",
                         text="seven", synset="n007", boxes=((0.25, 0.5, 0.75, 1.0),))
    assert ImageRecord.parse(record.serialize()) == record
    features = decode_example(record.serialize())
    assert features["image/object/bbox/xmin"] == [0.5]
    assert features["image/object/bbox/label"] == [7]
    assert features["image/colorspace"] == [b"RGB"] and features["image/channels"] == [3]


def test_a_tensorflow_style_record_without_synset_or_boxes_parses():
    data = encode_example({"image/encoded": [b"jpg"], "image/class/label": [1],
                           "image/class/text": [b"daisy"], "image/height": [5], "image/width": [6],
                           "image/format": [b"JPEG"]})
    record = ImageRecord.parse(data)
    assert (record.label, record.text, record.synset, record.boxes) == (1, "daisy", "", ())


def test_tensorflow_parses_our_records_with_the_original_feature_map():
    tf = pytest.importorskip("tensorflow")
    record = ImageRecord(encoded=b"jpegbytes", label=2, height=3, width=4, filename="a.jpg", text="two",
                         boxes=((0.1, 0.2, 0.3, 0.4),))
    feature_map = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "image/class/label": tf.io.FixedLenFeature([1], tf.int64, default_value=-1),
        "image/class/text": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    feature_map.update({f"image/object/bbox/{k}": tf.io.VarLenFeature(tf.float32)
                        for k in ("xmin", "ymin", "xmax", "ymax")})
    parsed = tf.io.parse_single_example(record.serialize(), feature_map)
    assert parsed["image/encoded"].numpy() == b"jpegbytes"
    assert int(parsed["image/class/label"][0]) == 2
    assert parsed["image/object/bbox/xmin"].values.numpy().tolist() == pytest.approx([0.2])
