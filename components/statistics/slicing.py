"""Splits RecordBatches into slices by feature values, vectorised.

A row belongs to the slice ``<feature>_<value>`` for every distinct value it
holds in a slice feature; with several slice features it belongs to every
combination (``island_Biscoe_sex_male``), as TFDV's feature-value slicer names
them. Rows missing a slice feature belong to no slice of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conveyor.beam_utils import arrow as carrow


def _value_strings(values: pa.Array, kind: str) -> pa.Array:
    if kind != carrow.BYTES:
        return pc.cast(values, pa.large_string())
    try:
        return values.cast(pa.large_string())
    except pa.ArrowInvalid:
        return pa.array(
            [v.decode("utf-8", errors="replace") for v in values.to_pylist()], pa.large_string()
        )


def slice_keys(batch: pa.RecordBatch, slice_by: Sequence[str]) -> tuple[np.ndarray, pa.Array]:
    """``(row indices, slice names)``: one pair per (row, slice) membership."""
    joined = None
    for name in slice_by:
        idx = batch.schema.get_field_index(name)
        if idx < 0:
            raise ValueError(f"slice feature {name!r} is not a column of the input")
        column = batch.column(idx)
        kind = carrow.feature_type(column.type)
        rows = pc.list_parent_indices(column)
        labels = pc.binary_join_element_wise(
            pa.scalar(name, pa.large_string()),
            _value_strings(column.flatten(), kind),
            pa.scalar("_", pa.large_string()),
        )
        table = pa.table({"row": rows, name: labels}).group_by(["row", name]).aggregate([])
        joined = table if joined is None else joined.join(table, "row", join_type="inner")
    if joined is None or joined.num_rows == 0:
        return np.empty(0, np.int64), pa.array([], pa.large_string())
    parts = [joined.column(n).combine_chunks() for n in slice_by]
    names = (
        parts[0]
        if len(parts) == 1
        else pc.binary_join_element_wise(*parts, pa.scalar("_", pa.large_string()))
    )
    return joined.column("row").to_numpy().astype(np.int64), names


def slice_batch(
    batch: pa.RecordBatch, slice_by: Sequence[str]
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yields ``(slice name, rows of the batch in that slice)`` for each slice present."""
    if batch.num_rows == 0 or not slice_by:
        return
    rows, names = slice_keys(batch, slice_by)
    if rows.size == 0:
        return
    encoded = names.dictionary_encode()
    codes = encoded.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [sorted_codes.size]])
    dictionary = encoded.dictionary.to_pylist()
    for s, e in zip(starts, ends):
        take = np.sort(rows[order[s:e]])
        yield dictionary[sorted_codes[s]], batch.take(pa.array(take))
