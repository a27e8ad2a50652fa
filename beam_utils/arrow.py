"""Conveyor's in-memory example format and the conversions into it.

Every PCollection of examples is a PCollection of ``pyarrow.RecordBatch`` in the
format that tfx-bsl's TFXIO produces, so tf.Transform and TFDV's decoders take
our batches as they are:

=============  ================================  ==========================
feature type   Arrow type of the column          tf.Example list
=============  ================================  ==========================
INT            ``large_list<int64>``             ``int64_list``
FLOAT          ``large_list<float32>``           ``float_list``
BYTES          ``large_list<large_binary>``      ``bytes_list``
=============  ================================  ==========================

Each row holds a list of values: a null list is a missing feature, ``[]`` is a
feature present with no values, ``[x]`` a scalar. All batches of one
PCollection share one Arrow schema.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

INT = "INT"
FLOAT = "FLOAT"
BYTES = "BYTES"

VALUE_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), BYTES: pa.large_binary()}
COLUMN_TYPES = {name: pa.large_list(t) for name, t in VALUE_TYPES.items()}


def column_type(feature_type: str) -> pa.DataType:
    """The Arrow column type of a feature type name (INT, FLOAT or BYTES)."""
    try:
        return COLUMN_TYPES[feature_type]
    except KeyError:
        raise ValueError(
            f"unknown feature type {feature_type!r}; expected INT, FLOAT or BYTES"
        ) from None


def feature_type(arrow_type: pa.DataType) -> str:
    """The feature type name (INT, FLOAT, BYTES) of a canonical Arrow column type."""
    for name, t in COLUMN_TYPES.items():
        if arrow_type == t:
            return name
    raise ValueError(
        f"{arrow_type} is not a Conveyor column type (large_list of int64, float32 or large_binary)"
    )


def make_schema(feature_types: Mapping[str, str]) -> pa.Schema:
    """An Arrow schema from ``{column: 'INT'|'FLOAT'|'BYTES'}`` in the given order."""
    return pa.schema([pa.field(name, column_type(t)) for name, t in feature_types.items()])


def feature_types(schema: pa.Schema) -> dict[str, str]:
    """``{column: feature type}`` of a canonical Arrow schema."""
    return {f.name: feature_type(f.type) for f in schema}


def to_metadata_schema(schema: pa.Schema):
    """A tensorflow-metadata ``Schema`` that names each column's type (nothing more)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = schema_pb2.Schema()
    for name, t in feature_types(schema).items():
        f = out.feature.add()
        f.name = name
        f.type = getattr(schema_pb2, t)
    return out


def from_metadata_schema(metadata_schema) -> pa.Schema:
    """The canonical Arrow schema of a tensorflow-metadata ``Schema``.

    Features of an unset type (``TYPE_UNKNOWN``) and STRUCT features are refused:
    the message names them.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    names = {schema_pb2.INT: INT, schema_pb2.FLOAT: FLOAT, schema_pb2.BYTES: BYTES}
    types = {}
    for f in metadata_schema.feature:
        if f.type not in names:
            raise ValueError(
                f"feature {f.name!r} has type {schema_pb2.FeatureType.Name(f.type)}; "
                "Conveyor reads INT, FLOAT and BYTES features"
            )
        types[f.name] = names[f.type]
    return make_schema(types)


def wrap_scalars(values: pa.Array, value_type: pa.DataType) -> pa.LargeListArray:
    """Turns a flat array (nulls for missing) into a list column of 0/1-length lists.

    A null becomes a null list, any other value a one-element list.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(value_type) if values.type != value_type else values
    n = len(values)
    if values.null_count == 0:
        offsets = pa.array(np.arange(n + 1, dtype=np.int64))
        return pa.LargeListArray.from_arrays(offsets, values)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid, out=offsets[1:])
    # A null offset at position i marks list i as null.
    mask = np.concatenate([~valid, [False]])
    offsets_arr = pa.array(offsets, mask=mask)
    return pa.LargeListArray.from_arrays(offsets_arr, values.drop_null())


def to_column(values: pa.Array, column_type_: pa.DataType) -> pa.Array:
    """Converts an Arrow array of any list or flat type to a canonical column type."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    value_type = column_type_.value_type
    t = values.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        if pa.types.is_fixed_size_list(t):
            values = values.cast(pa.list_(t.value_type))
        flat = _to_values(values.values, value_type)
        return pa.LargeListArray.from_arrays(_offsets_with_nulls(values), flat)
    return wrap_scalars(_to_values(values, value_type), value_type)


def _to_values(values: pa.Array, value_type: pa.DataType) -> pa.Array:
    t = values.type
    if t == value_type:
        return values
    if value_type == pa.large_binary() and not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        values = values.cast(pa.large_string())
    if pa.types.is_boolean(t) and value_type != pa.large_binary():
        values = values.cast(pa.int64())
    return values.cast(value_type)


def _offsets_with_nulls(lists: pa.Array) -> pa.Array:
    offsets = np.asarray(lists.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = offsets - offsets[0]
    if lists.null_count == 0:
        return pa.array(offsets)
    valid = np.asarray(lists.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(offsets, mask=np.concatenate([~valid, [False]]))


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Returns ``batch`` with exactly ``schema``'s columns, in order and types.

    A column the batch lacks becomes all-null; a column of another type is
    converted with :func:`to_column` (which raises if its values do not convert).
    Columns not in ``schema`` are dropped. A column ``schema`` names that the
    batch holds twice raises ValueError (its values would otherwise be lost).
    """
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        idx = batch.schema.get_field_index(field.name)  # -1 if missing, or there twice
        if idx < 0:
            if field.name in batch.schema.names:
                raise ValueError(f"the batch has two columns named {field.name!r}")
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        col = batch.column(idx)
        arrays.append(col if col.type == field.type else to_column(col, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A zero-row batch of ``schema``."""
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)


def take_rows(batch: pa.RecordBatch, mask: np.ndarray) -> pa.RecordBatch:
    """The rows of ``batch`` where the boolean ``mask`` is true."""
    if mask.all():
        return batch
    return batch.filter(pa.array(mask, type=pa.bool_()))
