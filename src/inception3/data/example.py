"""`tf.train.Example` encoding and decoding, byte-compatible with TensorFlow, without TensorFlow.

The messages are declared here from TensorFlow's `example.proto` / `feature.proto` (proto3, packed
numeric lists) in a private descriptor pool, so that importing TensorFlow alongside never clashes.
`ImageRecord` is one record of the original's `build_image_data.py` layout, keys as DESIGN.md lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from inception3.errors import Inception3Error

FeatureValue = Sequence[bytes] | Sequence[int] | Sequence[float]
Box = tuple[float, float, float, float]  # (ymin, xmin, ymax, xmax), fractions of the image size, as TF

BBOX_KEYS = (
    "image/object/bbox/xmin",
    "image/object/bbox/ymin",
    "image/object/bbox/xmax",
    "image/object/bbox/ymax",
)


def _example_messages() -> dict[str, type]:
    """Declare tensorflow.{BytesList, FloatList, Int64List, Feature, Features, Example}."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="inception3/tensorflow_example.proto", package="tensorflow", syntax="proto3"
    )
    field_proto = descriptor_pb2.FieldDescriptorProto
    repeated, optional = field_proto.LABEL_REPEATED, field_proto.LABEL_OPTIONAL

    def message(name: str, fields: list[tuple[str, int, int, int, str]], oneof: bool = False):
        msg = proto.message_type.add(name=name)
        if oneof:
            msg.oneof_decl.add(name="kind")
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if oneof:
                f.oneof_index = 0
        return msg

    message("BytesList", [("value", 1, field_proto.TYPE_BYTES, repeated, "")])
    message("FloatList", [("value", 1, field_proto.TYPE_FLOAT, repeated, "")])
    message("Int64List", [("value", 1, field_proto.TYPE_INT64, repeated, "")])
    message(
        "Feature",
        [
            ("bytes_list", 1, field_proto.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
            ("float_list", 2, field_proto.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
            ("int64_list", 3, field_proto.TYPE_MESSAGE, optional, ".tensorflow.Int64List"),
        ],
        oneof=True,
    )
    features = message(
        "Features", [("feature", 1, field_proto.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry")]
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field_proto.TYPE_STRING, label=optional)
    entry.field.add(
        name="value", number=2, type=field_proto.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature"
    )
    message("Example", [("features", 1, field_proto.TYPE_MESSAGE, optional, ".tensorflow.Features")])

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    names = ("BytesList", "FloatList", "Int64List", "Feature", "Features", "Example")
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}"))
        for name in names
    }


_MESSAGES = _example_messages()
Example = _MESSAGES["Example"]


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialise a feature map (name -> list of bytes, ints or floats) as a tf.train.Example.

    The list type follows the Python type of the values; an empty list is written as an empty
    float list, as TensorFlow does for empty `image/object/bbox/*` features. Keys are sorted so
    that the same features always give the same bytes.
    """
    example = Example()
    feature_map = example.features.feature
    for name, values in features.items():
        values = list(values)
        feature = feature_map[name]
        if values and isinstance(values[0], bytes | str):
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        elif values and all(isinstance(v, int) for v in values):
            feature.int64_list.value.extend(values)
        else:
            feature.float_list.value.extend(float(v) for v in values)
    return example.SerializeToString(deterministic=True)


class MalformedExampleError(Inception3Error):
    """Bytes that are not a tf.train.Example, or an Example without a usable image and label."""


def decode_example(data: bytes) -> dict[str, list]:
    """Parse a serialised tf.train.Example into name -> list of values (bytes, int or float).

    Raises MalformedExampleError on bytes that are not an Example.
    """
    example = Example()
    try:
        example.ParseFromString(data)
    except (DecodeError, RecursionError) as error:
        raise MalformedExampleError(f"not a tf.train.Example ({error})") from error
    decoded: dict[str, list] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        decoded[name] = list(getattr(feature, kind).value) if kind else []
    return decoded


@dataclass(frozen=True)
class ImageRecord:
    """One image record in the original's layout; `label` is the label as stored in the shard."""

    encoded: bytes
    label: int
    height: int = 0
    width: int = 0
    filename: str = ""
    text: str = ""
    synset: str = ""
    format: str = "JPEG"
    colorspace: str = "RGB"
    channels: int = 3
    boxes: tuple[Box, ...] = field(default=())

    def to_features(self) -> dict[str, FeatureValue]:
        """The feature map `build_image_data.py` / `build_imagenet_data.py` write."""
        features: dict[str, FeatureValue] = {
            "image/height": [self.height],
            "image/width": [self.width],
            "image/colorspace": [self.colorspace.encode()],
            "image/channels": [self.channels],
            "image/class/label": [self.label],
            "image/class/text": [self.text.encode()],
            "image/class/synset": [self.synset.encode()],
            "image/format": [self.format.encode()],
            # A file name's bytes as the file system holds them: one that is not UTF-8 (os.fsdecode's
            # surrogates) is stored as it is rather than refused.
            "image/filename": [self.filename.encode("utf-8", "surrogateescape")],
            "image/encoded": [self.encoded],
        }
        if self.boxes:
            ymin, xmin, ymax, xmax = zip(*self.boxes, strict=True)
            features.update(
                {
                    "image/object/bbox/xmin": list(xmin),
                    "image/object/bbox/ymin": list(ymin),
                    "image/object/bbox/xmax": list(xmax),
                    "image/object/bbox/ymax": list(ymax),
                    "image/object/bbox/label": [self.label] * len(self.boxes),
                }
            )
        return features

    def serialize(self) -> bytes:
        """The record's bytes: a serialised tf.train.Example."""
        return encode_example(self.to_features())

    @classmethod
    def parse(cls, data: bytes) -> ImageRecord:
        """Read a record written by us or by TensorFlow's build scripts; missing keys get defaults.

        Raises MalformedExampleError when `image/encoded` or `image/class/label` is absent, mistyped or
        holds more than one value (TensorFlow's parser refuses those too: which label would be meant?).
        """
        try:
            return cls._parse(decode_example(data))
        except (
            KeyError,
            IndexError,
            ValueError,
            TypeError,
            AttributeError,
            UnicodeError,
            OverflowError,
        ) as error:  # OverflowError: an integer field holding a float infinity
            raise MalformedExampleError(f"not an image Example ({error!r})") from error

    @classmethod
    def _parse(cls, f: dict[str, list]) -> ImageRecord:
        for key in ("image/encoded", "image/class/label"):
            if len(f.get(key, ())) > 1:
                raise MalformedExampleError(
                    f"not an image Example: {key} holds {len(f[key])} values, not one"
                )
        encoded, label = f["image/encoded"][0], f["image/class/label"][0]
        if not isinstance(encoded, bytes) or not isinstance(label, int):
            raise TypeError("image/encoded must be bytes and image/class/label an integer")

        def text(key: str, default: str = "") -> str:
            values = f.get(key)
            return values[0].decode("utf-8", "replace") if values else default

        def integer(key: str, default: int = 0) -> int:
            values = f.get(key)
            return int(values[0]) if values else default

        columns = [f.get(key, []) for key in BBOX_KEYS]
        boxes = tuple((ymin, xmin, ymax, xmax) for xmin, ymin, xmax, ymax in zip(*columns, strict=False))
        return cls(
            encoded=encoded,
            label=label,
            height=integer("image/height"),
            width=integer("image/width"),
            filename=text("image/filename"),
            text=text("image/class/text"),
            synset=text("image/class/synset"),
            format=text("image/format", "JPEG"),
            colorspace=text("image/colorspace", "RGB"),
            channels=integer("image/channels", 3),
            boxes=boxes,
        )
