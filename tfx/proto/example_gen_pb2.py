"""ExampleGen's messages (TFX's ``example_gen.proto``): ``Input``, ``Output``, ``SplitConfig``...

Example::

    from conveyor.tfx import proto

    input_config = proto.Input(splits=[proto.Input.Split(name="train", pattern="train/*"),
                                       proto.Input.Split(name="eval", pattern="eval/*")])
    output_config = proto.Output(split_config=proto.SplitConfig(splits=[
        proto.SplitConfig.Split(name="train", hash_buckets=3),
        proto.SplitConfig.Split(name="eval", hash_buckets=1)]))
"""

from __future__ import annotations

from conveyor.tfx.proto.message import (
    Message,
    MessageField,
    ProtoEnum,
    Repeated,
    String,
    StructField,
    UInt32,
)

__all__ = [
    "FORMAT_FILE_UNSPECIFIED",
    "FORMAT_PROTO",
    "FORMAT_TFRECORDS_GZIP",
    "FORMAT_TF_EXAMPLE",
    "FORMAT_TF_SEQUENCE_EXAMPLE",
    "FORMAT_UNSPECIFIED",
    "CustomConfig",
    "FileFormat",
    "Input",
    "Output",
    "PayloadFormat",
    "SplitConfig",
]


class Input(Message):
    """ExampleGen's input: named splits, each a file pattern under ``input_base``.

    Patterns may hold ``{SPAN}``, ``{VERSION}`` and ``{YYYY}``/``{MM}``/``{DD}``.
    """

    class Split(Message):
        """One input split: its name and its pattern."""

        name = String()
        pattern = String()

    splits = Repeated(Split)


class CustomConfig(Message):
    """Settings for a custom ExampleGen (``google.protobuf.Any`` in TFX)."""

    custom_config = StructField()


class PayloadFormat(ProtoEnum):
    """What each record of an Examples artifact is."""

    FORMAT_UNSPECIFIED = 0
    FORMAT_TF_EXAMPLE = 6
    FORMAT_TF_SEQUENCE_EXAMPLE = 7
    FORMAT_PROTO = 11


class FileFormat(ProtoEnum):
    """How an Examples artifact's files are written (Conveyor writes gzip TFRecords)."""

    FORMAT_FILE_UNSPECIFIED = 0
    FORMAT_TFRECORDS_GZIP = 5


class SplitConfig(Message):
    """How a single input is hash-split: each split's buckets, optionally keyed by a feature."""

    class Split(Message):
        """One output split: its name and its share of the hash buckets."""

        name = String()
        hash_buckets = UInt32()

    splits = Repeated(Split)
    partition_feature_name = String(oneof="splitting_method_config")


class Output(Message):
    """ExampleGen's output: its split config (none: the input's splits, or train 2 : eval 1)."""

    split_config = MessageField(SplitConfig)


# Protobuf's module-level enum values.
FORMAT_UNSPECIFIED = PayloadFormat.FORMAT_UNSPECIFIED
FORMAT_TF_EXAMPLE = PayloadFormat.FORMAT_TF_EXAMPLE
FORMAT_TF_SEQUENCE_EXAMPLE = PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE
FORMAT_PROTO = PayloadFormat.FORMAT_PROTO
FORMAT_FILE_UNSPECIFIED = FileFormat.FORMAT_FILE_UNSPECIFIED
FORMAT_TFRECORDS_GZIP = FileFormat.FORMAT_TFRECORDS_GZIP
