"""Cutting a RecordBatch into per-slice :class:`~.metrics.Chunk` s, vectorized.

A slice key is a tuple of ``(column, value)`` pairs sorted by column; the
overall slice is ``()``. A slicing spec with ``feature_keys`` gives one slice
per value (per combination of values when it names several columns); a row
with a missing value belongs to none of that spec's slices, and a row with
several values (a multivalent feature) to one slice per value, as in TFMA.
``feature_values`` keep only the rows with those values.

The work is per batch, not per row: each slicing column is flattened once,
dictionary-encoded, and the rows are grouped by their combined code with
numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conveyor.beam_utils.errors import InputError
from conveyor.components.evaluation.config import EvalSettings, SliceSpec
from conveyor.components.evaluation.metrics import Chunk


def slice_value(v):
    """A slice value as it appears in outputs: text for bytes, else the number."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return v


def describe_slice(key: tuple) -> dict:
    """``(("carrier", "UA"),)`` -> ``{"carrier": "UA"}``."""
    return {k: v for k, v in key}


def _scalar_column(col: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 values of a list column with one value per row; (values, missing).

    A null list, an empty list or a list of several values is missing (NaN).
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        values = np.asarray(col.to_numpy(zero_copy_only=False), np.float64)
        missing = np.isnan(values)
        return values, missing
    offsets = np.asarray(col.offsets.to_numpy(zero_copy_only=False), np.int64)
    lengths = np.diff(offsets)
    present = lengths == 1
    if col.null_count:
        present &= np.asarray(col.is_valid().to_numpy(zero_copy_only=False), bool)
    child = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float64)
    out = np.full(n, np.nan)
    out[present] = child[offsets[:-1][present]]
    return out, ~present


def _vector_column(col: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A list column of class scores as an ``(n, k)`` float64 array; (values, missing).

    ``k`` is the longest list of the batch; rows of another length are missing.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    offsets = np.asarray(col.offsets.to_numpy(zero_copy_only=False), np.int64)
    lengths = np.diff(offsets)
    k = int(lengths.max()) if n else 1
    k = max(k, 1)
    present = lengths == k
    if col.null_count:
        present &= np.asarray(col.is_valid().to_numpy(zero_copy_only=False), bool)
    child = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float64)
    out = np.full((n, k), np.nan)
    starts = offsets[:-1][present]
    if len(starts):
        out[present] = child[starts[:, None] + np.arange(k)[None, :]]
    return out, ~present


class BatchSlicer:
    """Turns one RecordBatch into ``[(slice key, Chunk)]`` for an :class:`EvalSettings`.

    ``prediction_columns`` gives, per model (in ``settings.models`` order), the
    column that holds its predictions. ``label_columns`` and ``weight_columns``
    (per model) and ``slice_columns`` (``{slicing feature: column}``) say where
    a model's label and weight and a slicing feature are read when that is not
    the column of their own name (a model's transformed features); slice keys
    keep the feature's name.
    """

    def __init__(
        self,
        settings: EvalSettings,
        prediction_columns: Sequence[str],
        *,
        label_columns: Sequence[str] | None = None,
        weight_columns: Sequence[str | None] | None = None,
        slice_columns: Mapping[str, str] | None = None,
    ):
        self.settings = settings
        self.prediction_columns = list(prediction_columns)
        models = settings.models
        self.label_columns = list(label_columns or [m.label_key for m in models])
        self.weight_columns = list(weight_columns or [m.example_weight_key for m in models])
        self.slice_columns = dict(slice_columns or {})
        self.vector = settings.needs_vectors

    def check_schema(self, schema: pa.Schema) -> None:
        """Raises InputError naming a label, prediction, weight or slicing column
        that the examples lack or carry with an unusable type."""
        names = set(schema.names)
        numeric = (pa.int64(), pa.float32(), pa.float64(), pa.int32())

        def value_type(name):
            t = schema.field(name).type
            return t.value_type if (pa.types.is_list(t) or pa.types.is_large_list(t)) else t

        for model, label, pcol, wcol in zip(
            self.settings.models,
            self.label_columns,
            self.prediction_columns,
            self.weight_columns,
        ):
            for what, col in (("label", label), ("prediction", pcol), ("example weight", wcol)):
                if col is None:
                    continue
                if col not in names:
                    raise InputError(
                        f"{what} column {col!r} (model {model.name!r}) is not in the examples; "
                        f"columns: {', '.join(schema.names)}"
                    )
                if value_type(col) not in numeric:
                    raise InputError(
                        f"{what} column {col!r} holds {value_type(col)}; it must be numeric (INT or FLOAT)"
                    )
        for spec in self.settings.slices:
            for name in spec.columns:
                if self.slice_columns.get(name, name) not in names:
                    raise InputError(
                        f"slicing column {name!r} is not in the examples; columns: {', '.join(schema.names)}"
                    )

    def chunk(self, batch: pa.RecordBatch) -> Chunk:
        """The whole batch as one Chunk."""
        n = batch.num_rows
        read: dict = {}

        def scalar(col):
            if col not in read:
                read[col] = _scalar_column(batch.column(col), n)[0]
            return read[col]

        labels = [scalar(col) for col in self.label_columns]
        ones = np.ones(n)
        weights = [ones if col is None else scalar(col) for col in self.weight_columns]
        preds, missing = [], []
        for col in self.prediction_columns:
            if self.vector:
                values, miss = _vector_column(batch.column(col), n)
            else:
                values, miss = _scalar_column(batch.column(col), n)
            preds.append(values)
            missing.append(miss)
        return Chunk(labels, weights, preds, missing)

    def split(self, batch: pa.RecordBatch) -> list[tuple[tuple, Chunk]]:
        """``(slice key, Chunk)`` for every slice the batch has rows in."""
        n = batch.num_rows
        if not n:
            return []
        whole = self.chunk(batch)
        out = []
        for spec in self.settings.slices:
            if spec.is_overall():
                out.append(((), whole))
                continue
            for key, rows in self._groups(batch, spec):
                out.append((key, whole.take(rows)))
        return out

    def _groups(self, batch: pa.RecordBatch, spec: SliceSpec):
        n = batch.num_rows
        wanted = dict(spec.feature_values)
        rows = np.arange(n, dtype=np.int64)
        codes = np.zeros(n, np.int64)
        dictionaries: list[list] = []
        columns = spec.columns
        for name in columns:
            col = batch.column(self.slice_columns.get(name, name))
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
                parents = np.asarray(
                    pc.list_parent_indices(col).to_numpy(zero_copy_only=False), np.int64
                )
                values = pc.list_flatten(col)
            else:
                valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), bool)
                parents = np.nonzero(valid)[0].astype(np.int64)
                values = col.filter(pa.array(valid))
            if values.null_count:
                keep = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
                parents, values = parents[keep], values.filter(pa.array(keep))
            encoded = values.dictionary_encode()
            index = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
            dictionary = [slice_value(v) for v in encoded.dictionary.to_pylist()]
            if name in wanted:
                matches = [i for i, v in enumerate(dictionary) if str(v) == wanted[name]]
                keep = np.isin(index, matches)
                parents, index = parents[keep], index[keep]
            rows, codes = _join(rows, codes, parents, index, len(dictionary))
            dictionaries.append(dictionary)
            if not len(rows):
                return []
        unique, inverse = np.unique(codes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(unique)))])
        sizes = [len(d) for d in dictionaries]
        groups = []
        for g, code in enumerate(unique):
            parts = []
            c = int(code)
            for size in reversed(sizes):
                parts.append(c % size)
                c //= size
            parts.reverse()
            key = tuple(
                sorted((columns[i], dictionaries[i][parts[i]]) for i in range(len(columns)))
            )
            groups.append((key, rows[order[bounds[g] : bounds[g + 1]]]))
        return groups


def _join(rows, codes, parents, index, size):
    """Pairs each (row, code) with every (parent == row, value index); code' = code * size + index."""
    if not len(parents):
        return rows[:0], codes[:0]
    counts = np.bincount(parents, minlength=int(rows.max()) + 1 if len(rows) else 0)
    first = np.concatenate([[0], np.cumsum(counts)])[:-1]  # parents is sorted by row
    per_row = counts[rows]
    left = np.repeat(np.arange(len(rows)), per_row)
    # position of each repeated pair inside its row's run of values
    run_start = np.repeat(np.cumsum(per_row) - per_row, per_row)
    offset = np.arange(len(left)) - run_start
    right = first[rows[left]] + offset
    if codes.size and int(codes.max(initial=0)) > (2**62) // max(size, 1):
        raise InputError("too many slice value combinations to encode; slice by fewer columns")
    return rows[left], codes[left] * size + index[right]
