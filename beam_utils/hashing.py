"""Deterministic per-row hashes of RecordBatches, computed column-wise with numpy.

The hash of a row depends only on its values (and on which columns are hashed),
never on the process, the batch it sits in or the run, so hash-bucket splits are
reproducible everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from pandas.util import hash_array

_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_MULT = np.uint64(0xBF58476D1CE4E5B9)


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised: spreads every input bit over the output (mod 2**64)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _value_hashes(values: pa.Array) -> np.ndarray:
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    if pa.types.is_floating(values.type):
        # Hash floats as float64 so float32 and float64 copies of a value agree.
        arr = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return hash_array(arr)
    arr = values.to_numpy(zero_copy_only=False)
    if arr.dtype == object:
        return hash_array(arr, categorize=False)
    return hash_array(arr)


def column_hashes(column: pa.Array) -> np.ndarray:
    """One uint64 per row of a list column (a null list and ``[]`` hash differently)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    offsets = np.asarray(column.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    start, end = offsets[0], offsets[-1]
    values = column.values.slice(start, end - start)
    offsets = offsets - start
    vh = _value_hashes(values)
    lengths = np.diff(offsets)
    # Weight each value by its position in its list so [a, b] and [b, a] differ.
    pos = np.arange(len(vh), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    with np.errstate(over="ignore"):
        weighted = vh * (np.uint64(2) * pos.astype(np.uint64) + np.uint64(1))
        sums = np.zeros(n, dtype=np.uint64)
        nonempty = lengths > 0
        if nonempty.any():
            sums[nonempty] = np.add.reduceat(weighted, offsets[:-1][nonempty])
        h = mix64(sums + lengths.astype(np.uint64) * _MULT)
    if column.null_count:
        valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        h = np.where(valid, h, _NULL_HASH)
    return h


def row_hashes(batch: pa.RecordBatch, columns: Sequence[str] | None = None) -> np.ndarray:
    """One uint64 per row from the named columns (all columns when None)."""
    # Sorted, so the same values give the same hash whatever the column order.
    names = sorted(columns) if columns else sorted(batch.schema.names)
    h = np.full(batch.num_rows, np.uint64(0x84222325CBF29CE4), dtype=np.uint64)
    for name in names:
        idx = batch.schema.get_field_index(name)
        if idx < 0:
            raise KeyError(
                f"hash column {name!r} is not in the examples (columns: {batch.schema.names})"
            )
        with np.errstate(over="ignore"):
            h = mix64(h * _MULT + column_hashes(batch.column(idx)))
    return h
