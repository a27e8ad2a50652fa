"""From a tensorflow-metadata Schema (given, or derived from the data) to TFXIO's tensors.

tf.Transform reads RecordBatches through a ``TensorAdapterConfig``: the Arrow
schema of the batches plus one ``TensorRepresentation`` per input tensor. The
representations follow tfx-bsl's rules for a Schema
(``tensor_representation_util.InferTensorRepresentationsFromMixedSchema``), the
same that TFX uses:

* representations the schema declares (``tensor_representation_group``) are used
  as they are, e.g. a dense tensor with a ``default_value`` for missing values;
* a feature with a fixed ``shape`` (and ``presence.min_fraction: 1``) is dense;
* any other feature is a ``VarLenSparseTensor`` (a ``tf.SparseTensor``). A
  schema derived from the data (types only) gives sparse tensors for every
  feature, as TFT does for a Schema without shapes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError


def load_schema(path: str):
    """Reads a tensorflow-metadata ``Schema`` from a text proto (``schema.pbtxt``) or binary file."""
    from apache_beam.io.filesystems import FileSystems
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    if not FileSystems.exists(path):
        raise InputError(f"{path}: no such schema file")
    with FileSystems.open(path) as f:
        raw = f.read()
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(raw.decode("utf-8"), schema)
    except (UnicodeDecodeError, text_format.ParseError) as text_error:
        try:
            schema.ParseFromString(raw)
        except Exception:
            raise InputError(f"{path}: not a tensorflow-metadata Schema: {text_error}") from None
    if not schema.feature and not schema.sparse_feature:
        raise InputError(f"{path}: the schema has no features")
    return schema


def tensor_representations(schema) -> dict:
    """``{tensor name: TensorRepresentation}`` for a Schema (see the module doc)."""
    from tfx_bsl.tfxio import tensor_representation_util

    try:
        return tensor_representation_util.InferTensorRepresentationsFromMixedSchema(schema)
    except ValueError as e:
        raise InputError(f"schema: {e}") from None


def source_columns(representation) -> list[str]:
    """The Arrow columns a TensorRepresentation reads."""
    from tfx_bsl.tfxio import tensor_representation_util

    cols = tensor_representation_util.GetSourceColumnsFromTensorRepresentation(representation)
    return [c.steps()[0] for c in cols]


def arrow_schema_for(schema) -> pa.Schema:
    """The canonical Arrow schema of the schema's features (deprecated ones left out)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    kept = schema_pb2.Schema()
    for f in schema.feature:
        if not f.deprecated and f.lifecycle_stage not in (
            schema_pb2.DEPRECATED,
            schema_pb2.DISABLED,
        ):
            kept.feature.add().CopyFrom(f)
    try:
        return arrow.from_metadata_schema(kept)
    except ValueError as e:
        raise InputError(f"schema: {e}") from None


def adapter_config(arrow_schema: pa.Schema, schema, columns: Iterable[str] | None = None):
    """The ``TensorAdapterConfig`` of batches of ``arrow_schema`` under ``schema``.

    With ``columns`` (tensor names), the config converts only those tensors and
    reads only their source columns, while ``original_type_specs`` keeps every
    tensor, so the transform graph's signature still takes all raw features.
    """
    from tfx_bsl.public import tfxio

    reps = tensor_representations(schema)
    full = tfxio.TensorAdapterConfig(arrow_schema, reps)
    if columns is None:
        return full
    specs = tfxio.TensorAdapter(full).TypeSpecs()
    wanted = {name: reps[name] for name in columns}
    needed_cols = {c for r in wanted.values() for c in source_columns(r)}
    projected = pa.schema([f for f in arrow_schema if f.name in needed_cols])
    return tfxio.TensorAdapterConfig(projected, wanted, original_type_specs=specs)


def type_specs(config) -> dict:
    """``{tensor name: tf.TypeSpec}`` the preprocessing_fn is traced with."""
    from tfx_bsl.public import tfxio

    return tfxio.TensorAdapter(config).OriginalTypeSpecs()
