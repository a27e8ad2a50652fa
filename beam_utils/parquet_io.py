"""Reading Parquet files into canonical RecordBatches.

:func:`read_parquet_batches` reads one open Parquet file batch by batch (only
the schema's columns), conforms each batch to the canonical schema with
:func:`~conveyor.beam_utils.arrow.conform`, and raises
:class:`~conveyor.beam_utils.errors.InputError` naming the file, the rows and
the column when a file is not Parquet, lacks a column, or holds values that do
not convert. ``ReadExamples`` and the monitor's ``WatchFiles`` share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError

_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def _bad_column(batch: pa.RecordBatch, schema: pa.Schema) -> tuple[str, str, str]:
    """The first column of ``batch`` that does not convert: (name, its type, the error)."""
    for field in schema:
        idx = batch.schema.get_field_index(field.name)
        if idx < 0:
            continue
        col = batch.column(idx)
        try:
            arrow.to_column(col, field.type)
        except _CONVERT_ERRORS as e:
            return field.name, str(col.type), str(e)
    return "?", "?", "?"


def read_parquet_batches(
    f: BinaryIO, path: str, schema: pa.Schema, batch_size: int, row_groups=None
) -> Iterator[pa.RecordBatch]:
    """Yields the rows of the Parquet file ``f`` as batches of ``schema`` (at most ``batch_size`` rows).

    Args:
      f: the open file (any seekable binary file object, or a pyarrow file).
      path: the file's name, for messages.
      schema: the canonical Arrow schema; the file must hold each of its columns.
      batch_size: rows per batch.
      row_groups: indices of the row groups to read (None: all).

    Raises:
      InputError: ``path`` is not a Parquet file, lacks some of the schema's
        columns, or a column's values do not convert (naming the rows and the column).
    """
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a Parquet file: {e}") from e
    names = pf.schema_arrow.names
    missing = [n for n in schema.names if n not in names]
    if missing:
        raise InputError(f"{path}: lacks column(s) {missing} (it has: {', '.join(names)})")
    groups = list(row_groups) if row_groups is not None else None
    first = 1 + sum(pf.metadata.row_group(i).num_rows for i in range(groups[0])) if groups else 1
    for batch in pf.iter_batches(batch_size=batch_size, columns=schema.names, row_groups=groups):
        try:
            out = arrow.conform(batch, schema)
        except _CONVERT_ERRORS as e:
            name, have, why = _bad_column(batch, schema)
            want = arrow.feature_type(schema.field(name).type) if name in schema.names else "?"
            raise InputError(
                f"{path}: rows {first}-{first + batch.num_rows - 1}: column {name!r} ({have}) "
                f"does not convert to {want}: {why or e}"
            ) from e
        first += batch.num_rows
        yield out
