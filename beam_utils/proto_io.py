"""Reading and writing tensorflow-metadata protos: statistics, schemas, anomalies.

Every component that hands these protos on reads and writes them here:

* statistics: a ``DatasetFeatureStatisticsList``, binary (``FeatureStats.pb``,
  as TFX's StatisticsGen and ``conveyor statistics`` write it) or text format
  (any name ending in ``.pbtxt``/``.txt``, as ``tfdv.write_stats_text`` writes);
* schema: a ``Schema`` in text format (``schema.pbtxt``, as TFX's SchemaGen
  writes it), or binary when the name ends in ``.pb``;
* anomalies: an ``Anomalies`` proto, binary in ``SchemaDiff.pb`` (as TFX's
  ExampleValidator writes it) or text format for ``.pbtxt``.

Every reading failure raises :class:`~conveyor.beam_utils.errors.InputError`
naming the file, which the command line prints with exit status 2. Paths may be
on any Beam filesystem (local, ``gs://``, ...). The file names of an artifact
(``FeatureStats.pb``, ``schema.pbtxt``, ``SchemaDiff.pb``) are in
:mod:`conveyor.dsl.layout`.

Example::

    from conveyor.beam_utils.proto_io import read_schema, read_statistics, write_anomalies

    stats = read_statistics("out/Split-train/FeatureStats.pb")
    schema = read_schema("schema.pbtxt")
"""

from __future__ import annotations

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.files import create_file

__all__ = [
    "read_anomalies",
    "read_schema",
    "read_statistics",
    "schema_text",
    "write_anomalies",
    "write_schema",
]

_TEXT_SUFFIXES = (".pbtxt", ".txt", ".textproto")


def _read_bytes(path: str, what: str) -> bytes:
    from apache_beam.io.filesystems import FileSystems

    try:
        exists = FileSystems.exists(path)
    except Exception as e:  # an unknown scheme, a bad bucket name, ...
        raise InputError(f"{path}: cannot open the {what} file: {e}") from None
    if not exists:
        raise InputError(f"{path}: no such {what} file")
    try:
        with FileSystems.open(path) as f:
            return f.read()
    except Exception as e:
        raise InputError(f"{path}: cannot read the {what} file: {e}") from None


def _is_text(path: str) -> bool:
    return path.lower().endswith(_TEXT_SUFFIXES)


def _parse(data: bytes, message, path: str, what: str, text: bool):
    from google.protobuf import message as message_lib
    from google.protobuf import text_format

    try:
        if text:
            text_format.Parse(data.decode("utf-8"), message)
        else:
            message.ParseFromString(data)
    except (message_lib.DecodeError, text_format.ParseError, UnicodeDecodeError) as e:
        form = "text-format" if text else "binary"
        raise InputError(f"{path}: not a {form} {what}: {e}") from None
    return message


def read_statistics(path: str):
    """Reads a ``DatasetFeatureStatisticsList`` from ``path`` (binary, or text for .pbtxt).

    A binary file that does not decode, decodes to no dataset, or holds a
    dataset without features or examples is refused with an :class:`InputError`
    naming the file: a wrong file (a schema, an Examples shard) usually parses as
    an empty or nonsensical message rather than failing outright.
    """
    from tensorflow_metadata.proto.v0 import statistics_pb2

    data = _read_bytes(path, "statistics")
    text = _is_text(path)
    stats = _parse(
        data,
        statistics_pb2.DatasetFeatureStatisticsList(),
        path,
        "DatasetFeatureStatisticsList",
        text,
    )
    if not text and _has_unknown_fields(stats):
        # Protobuf keeps unknown fields: a foreign message often decodes "successfully".
        raise InputError(
            f"{path}: not a DatasetFeatureStatisticsList "
            "(the file holds fields that statistics do not have)"
        )
    if not stats.datasets:
        raise InputError(f"{path}: not a DatasetFeatureStatisticsList (it holds no dataset)")
    return stats


def _has_unknown_fields(message) -> bool:
    known = type(message)()
    known.CopyFrom(message)
    known.DiscardUnknownFields()
    return known.ByteSize() != message.ByteSize()


def read_schema(path: str):
    """Reads a tensorflow-metadata ``Schema`` (text format; binary if the name ends in .pb)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    data = _read_bytes(path, "schema")
    text = not path.lower().endswith(".pb")
    schema = _parse(data, schema_pb2.Schema(), path, "Schema", text)
    if not text and _has_unknown_fields(schema):
        raise InputError(
            f"{path}: not a binary Schema (the file holds fields a schema does not have)"
        )
    return schema


def schema_text(schema) -> str:
    """The text format of a schema, as TFX writes ``schema.pbtxt``."""
    from google.protobuf import text_format

    return text_format.MessageToString(schema)


def write_schema(schema, path: str) -> None:
    """Writes ``schema`` to ``path`` in text format (binary if the name ends in .pb)."""
    payload = (
        schema.SerializeToString()
        if path.lower().endswith(".pb")
        else schema_text(schema).encode("utf-8")
    )
    with create_file(path) as f:
        f.write(payload)


def write_anomalies(anomalies, path: str) -> None:
    """Writes an ``Anomalies`` proto: binary, or text format if the name ends in .pbtxt."""
    from google.protobuf import text_format

    payload = (
        text_format.MessageToString(anomalies).encode("utf-8")
        if _is_text(path)
        else anomalies.SerializeToString()
    )
    with create_file(path) as f:
        f.write(payload)


def read_anomalies(path: str):
    """Reads an ``Anomalies`` proto written by :func:`write_anomalies` (or by TFX)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    data = _read_bytes(path, "anomalies")
    return _parse(data, anomalies_pb2.Anomalies(), path, "Anomalies", _is_text(path))
