"""Reading Parquet files into canonical RecordBatches.

:func:`infer_feature_types` settles the feature types of a set of Parquet files
from their footers (every file's, not the first file's alone);
:func:`read_parquet_batches` reads one open Parquet file batch by batch (only
the schema's columns), conforms each batch to the canonical schema with
:func:`~conveyor.beam_utils.arrow.conform`, and raises
:class:`~conveyor.beam_utils.errors.InputError` naming the file, the rows and
the column when a file is not Parquet, repeats a column name, lacks a column,
or holds values that do not convert. ``ReadExamples`` and the monitor's
``WatchFiles`` share it.

Types: integers and booleans are INT, floats and decimals FLOAT, strings,
binaries, dates and times BYTES (as text); a list column (one level) has the
type of its values, and a dictionary-encoded column that of its dictionary. A
column of Arrow's ``null`` type (no values, no type) takes its type from the
files that have one, else BYTES. Structs, maps and lists of lists are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError

_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def open_parquet(f, path: str):
    """``pyarrow.parquet.ParquetFile`` of ``f``; :class:`InputError` naming
    ``path`` if it is not a Parquet file or repeats a column name."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a Parquet file: {e}") from e
    check_names(pf.schema_arrow.names, path)
    return pf


def check_names(names: Sequence[str], path: str) -> None:
    """Raises :class:`InputError` if ``names`` (a file's columns) repeats a name:
    such a column could not be told from its namesake."""
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(
            f"{path}: repeats column names {dup}; rename the columns so that each name is used once"
        )


def feature_type(field: pa.Field, path: str) -> str | None:
    """The feature type (INT, FLOAT, BYTES) of a Parquet file's column, or None
    for a column of Arrow's ``null`` type (no type of its own).

    Raises :class:`InputError` naming the file and column for a struct, map,
    union or list of lists.
    """
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return arrow.INT
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return arrow.FLOAT
    if pa.types.is_nested(t) or pa.types.is_dictionary(t):
        raise InputError(
            f"{path}: column {field.name!r} has nested type {field.type}; Conveyor reads flat columns "
            "and lists of values: flatten it (e.g. pyarrow.Table.flatten()) or pass a schema without it"
        )
    return arrow.BYTES


def _widen(a: str, b: str) -> str | None:
    """The type both of two feature types read as, or None if there is none."""
    if a == b:
        return a
    return arrow.FLOAT if {a, b} == {arrow.INT, arrow.FLOAT} else None


def infer_feature_types(paths: Sequence[str], open_fn: Callable[[str], BinaryIO]) -> dict[str, str]:
    """``{column: feature type}`` over the footers of all ``paths``.

    Every file must hold the same column names (in any order); an INT column
    that is FLOAT in another file is FLOAT; a column that is BYTES in one file
    and a number in another is refused (a file would otherwise be read as text
    or fail part-way). Columns are in the first file's order.

    Raises:
      InputError: a file is not Parquet, repeats a column name, lacks a column
        another file has, holds a nested column, or types disagree between
        files; or the files have no column.
    """
    from concurrent.futures import ThreadPoolExecutor

    def read_schema(path):
        with open_fn(path) as f:
            return open_parquet(f, path).schema_arrow

    with ThreadPoolExecutor(max_workers=min(8, len(paths)) or 1) as pool:
        schemas = list(pool.map(read_schema, paths))
    types: dict[str, str | None] = {}
    where: dict[str, str] = {}  # the file a column's type (or the column) was first seen in
    for path, schema in zip(paths, schemas):
        for field in schema:
            t = feature_type(field, path)
            if field.name not in types:
                types[field.name], where[field.name] = t, path
            elif t is not None:
                known = types[field.name]
                if known is None:
                    types[field.name], where[field.name] = t, path
                elif _widen(known, t) is None:
                    raise InputError(
                        f"{path}: column {field.name!r} is {field.type} ({t}), but {known} in "
                        f"{where[field.name]}; write the files with one type for it, or pass a schema"
                    )
                else:
                    types[field.name] = _widen(known, t)
    for path, schema in zip(paths, schemas):
        missing = [n for n in types if n not in schema.names]
        if missing:
            raise InputError(
                f"{path}: lacks column(s) {missing} that {where[missing[0]]} has; every file of the "
                "input must hold the same columns (read them separately, or pass a schema without them)"
            )
    if not types:
        raise InputError(f"{paths[0]}: no columns; nothing to read")
    return {name: t or arrow.BYTES for name, t in types.items()}


def _bad_column(batch: pa.RecordBatch, schema: pa.Schema) -> tuple[str, str, str, int | None]:
    """The first column of ``batch`` that does not convert: (name, its type, the
    error, the index of its first row that does not convert)."""
    for field in schema:
        idx = batch.schema.get_field_index(field.name)
        if idx < 0:
            continue
        col = batch.column(idx)
        try:
            arrow.to_column(col, field.type)
        except _CONVERT_ERRORS as e:
            return field.name, str(col.type), str(e), _first_bad_row(col, field.type)
    return "?", "?", "?", None


def _first_bad_row(col: pa.Array, column_type: pa.DataType) -> int | None:
    """The index of the first value of ``col`` that does not convert (bisecting on prefixes)."""

    def converts(n):
        try:
            arrow.to_column(col.slice(0, n), column_type)
            return True
        except _CONVERT_ERRORS:
            return False

    lo, hi = 0, len(col)  # the prefix of lo rows converts; that of hi rows does not
    if converts(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if converts(mid) else (lo, mid)
    return hi - 1


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
      InputError: ``path`` is not a Parquet file, repeats a column name, lacks
        some of the schema's columns, or a column's values do not convert
        (naming the rows, the first row that does not convert and the column).
    """
    pf = open_parquet(f, path)
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
            name, have, why, bad = _bad_column(batch, schema)
            want = arrow.feature_type(schema.field(name).type) if name in schema.names else "?"
            at = ""
            if bad is not None:
                value = batch.column(batch.schema.get_field_index(name))[bad].as_py()
                at = f" (first at row {first + bad}: {value!r})"
            raise InputError(
                f"{path}: rows {first}-{first + batch.num_rows - 1}: column {name!r} ({have}) "
                f"does not convert to {want}{at}: {why or e}"
            ) from e
        first += batch.num_rows
        yield out
