"""tf.train.Example: TensorFlow's wire format and schema, and records from TensorFlow's build scripts."""

from __future__ import annotations

import pytest

from inception3.data.example import ImageRecord, decode_example, encode_example
from inception3.data.records import write_records


def test_int64_feature_matches_hand_encoded_protobuf():
    # Example{features{feature{key:"a" value{int64_list{value:[1]}}}}}, packed as proto3 does.
    expected = bytes.fromhex("0a0c0a0a0a0161120 51a030a0101".replace(" ", ""))
    assert encode_example({"a": [1]}) == expected


def test_float_and_bytes_features_match_hand_encoded_protobuf():
    # FloatList{value:[1.0]} packed: 0a 04 0000803f; BytesList{value:["x"]}: 0a 01 78.
    assert encode_example({"f": [1.0]}) == bytes.fromhex(
        "0a 0f 0a 0d 0a 01 66 12 08 12 06 0a 04 0000803f".replace(" ", "")
    )
    assert encode_example({"b": [b"x"]}) == bytes.fromhex(
        "0a 0c 0a 0a 0a 01 62 12 05 0a 03 0a 01 78".replace(" ", "")
    )


def test_decode_returns_lists_of_python_values():
    decoded = decode_example(encode_example({"i": [3, -4], "f": [0.5], "s": [b"ab", b""]}))
    assert decoded == {"i": [3, -4], "f": [0.5], "s": [b"ab", b""]}


def test_image_record_round_trip_with_boxes():
    record = ImageRecord(
        encoded=b"\xff\xd8jpeg",
        label=7,
        height=30,
        width=40,
        filename="x.jpg",
        text="seven",
        synset="n007",
        boxes=((0.25, 0.5, 0.75, 1.0),),
    )
    assert ImageRecord.parse(record.serialize()) == record
    features = decode_example(record.serialize())
    assert features["image/object/bbox/xmin"] == [0.5]
    assert features["image/object/bbox/label"] == [7]
    assert features["image/colorspace"] == [b"RGB"] and features["image/channels"] == [3]


def test_a_tensorflow_style_record_without_synset_or_boxes_parses():
    data = encode_example(
        {
            "image/encoded": [b"jpg"],
            "image/class/label": [1],
            "image/class/text": [b"daisy"],
            "image/height": [5],
            "image/width": [6],
            "image/format": [b"JPEG"],
        }
    )
    record = ImageRecord.parse(data)
    assert (record.label, record.text, record.synset, record.boxes) == (1, "daisy", "", ())


def _tensorflow_example_class() -> type:
    """`tf.train.Example`, built from TensorFlow's own schema (feature.proto, example.proto) by protobuf.

    TensorFlow itself is not a dependency; protobuf with the same schema parses the same wire format.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    kinds = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(
        name="tensorflow/core/example/example.proto", package="tensorflow", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, str, int]) -> descriptor_pb2.DescriptorProto:
        proto = schema.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            field = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
        return proto

    repeated, optional = kinds.LABEL_REPEATED, kinds.LABEL_OPTIONAL
    message("BytesList", ("value", 1, kinds.TYPE_BYTES, "", repeated))
    message("FloatList", ("value", 1, kinds.TYPE_FLOAT, "", repeated)).field[0].options.packed = True
    message("Int64List", ("value", 1, kinds.TYPE_INT64, "", repeated)).field[0].options.packed = True
    feature = message(
        "Feature",
        ("bytes_list", 1, kinds.TYPE_MESSAGE, ".tensorflow.BytesList", optional),
        ("float_list", 2, kinds.TYPE_MESSAGE, ".tensorflow.FloatList", optional),
        ("int64_list", 3, kinds.TYPE_MESSAGE, ".tensorflow.Int64List", optional),
    )
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message(
        "Features", ("feature", 1, kinds.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry", repeated)
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=kinds.TYPE_STRING, label=optional)
    entry.field.add(
        name="value", number=2, type=kinds.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature"
    )
    message("Example", ("features", 1, kinds.TYPE_MESSAGE, ".tensorflow.Features", optional))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def test_tensorflow_schema_parses_our_shards_read_by_tensorboards_record_reader(tmp_path):
    from tensorboard.compat.tensorflow_stub.errors import OutOfRangeError
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    record = ImageRecord(
        encoded=b"jpegbytes",
        label=2,
        height=3,
        width=4,
        filename="a.jpg",
        text="two",
        synset="n02",
        boxes=((0.1, 0.2, 0.3, 0.4),),
    )
    shard = tmp_path / "train-00000-of-00001"
    write_records(shard, [record.serialize()] * 2)
    reader = PyRecordReader_New(str(shard))  # TensorBoard's TFRecord reader checks both CRCs
    payloads = []
    while True:
        try:
            reader.GetNext()
        except OutOfRangeError:  # the end of the file
            break
        payloads.append(reader.record())
    assert len(payloads) == 2
    example = _tensorflow_example_class().FromString(payloads[0])
    feature = example.features.feature
    assert feature["image/encoded"].bytes_list.value == [b"jpegbytes"]
    assert list(feature["image/class/label"].int64_list.value) == [2]
    assert feature["image/class/text"].bytes_list.value == [b"two"]
    assert feature["image/class/synset"].bytes_list.value == [b"n02"]
    assert (feature["image/height"].int64_list.value[0], feature["image/width"].int64_list.value[0]) == (3, 4)
    assert list(feature["image/object/bbox/xmin"].float_list.value) == pytest.approx([0.2])
    assert list(feature["image/object/bbox/ymin"].float_list.value) == pytest.approx([0.1])
    assert feature["image/format"].bytes_list.value == [b"JPEG"]
    assert feature["image/colorspace"].bytes_list.value == [b"RGB"]
