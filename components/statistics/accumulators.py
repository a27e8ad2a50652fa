"""Partial statistics of one dataset (or slice), updated one RecordBatch at a time.

Every update is vectorised over a whole column with pyarrow.compute and numpy;
every partial is mergeable, so the same objects serve a global combine, a
per-slice combine and a per-window combine.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conveyor.beam_utils import arrow as carrow
from conveyor.components.statistics.options import StatsOptions
from conveyor.components.statistics.sketches import FrequencyTable, QuantileSketch

_BINCOUNT_RANGE = 1 << 16


class Moments:
    """Count, mean and sum of squared deviations (Chan et al.), in float64, weighted."""

    __slots__ = ("m2", "mean", "weight")

    def __init__(self):
        self.weight = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def __getstate__(self):
        return (self.weight, self.mean, self.m2)

    def __setstate__(self, state):
        self.weight, self.mean, self.m2 = state

    def add(self, x: np.ndarray, w: np.ndarray | None = None) -> None:
        """Adds values ``x`` (with weights ``w``, else weight 1 each)."""
        if x.size == 0:
            return
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf -> NaN, as TFDV
            self._add(x, w)

    def _add(self, x: np.ndarray, w: np.ndarray | None) -> None:
        if w is None:
            bw = float(x.size)
            bmean = float(x.sum()) / bw
            if np.isfinite(bmean):
                d = x - bmean
                bm2 = float(np.dot(d, d))
            else:
                bm2 = np.nan
        else:
            bw = float(w.sum())
            if bw <= 0:
                return
            bmean = float(np.dot(w, x) / bw)
            bm2 = float(np.dot(w, np.square(x - bmean))) if np.isfinite(bmean) else np.nan
        self._combine(bw, bmean, bm2)

    def _combine(self, bw: float, bmean: float, bm2: float) -> None:
        if bw == 0:
            return
        if self.weight == 0:
            self.weight, self.mean, self.m2 = bw, bmean, bm2
            return
        total = self.weight + bw
        delta = bmean - self.mean
        self.mean = self.mean + delta * (bw / total)
        self.m2 = self.m2 + bm2 + delta * delta * self.weight * bw / total
        self.weight = total

    def merge(self, other: Moments) -> None:
        """Merges ``other``'s moments into these (in place)."""
        self._combine(other.weight, other.mean, other.m2)

    @property
    def variance(self) -> float:
        """The (population) variance: ``m2 / weight``; 0 without values."""
        return self.m2 / self.weight if self.weight else 0.0


class FeatureStats:
    """Partial statistics of one feature: presence, value counts, values."""

    def __init__(self, kind: str, options: StatsOptions, is_bytes: bool = False):
        self.kind = kind  # INT, FLOAT or BYTES (the Arrow column type)
        self.is_bytes = is_bytes
        weighted = options.weight_feature is not None
        # Presence and valency.
        self.num_non_missing = 0
        self.w_non_missing = 0.0
        self.min_num_values = None
        self.max_num_values = None
        self.tot_num_values = 0
        self.w_tot_num_values = 0.0
        self.num_values = QuantileSketch(options.quantile_k)
        # Numeric.
        if kind != carrow.BYTES:
            self.moments = Moments()
            self.w_moments = Moments() if weighted else None
            self.num_zeros = 0
            self.num_nan = 0
            self.pos_inf = 0
            self.neg_inf = 0
            self.w_pos_inf = 0.0
            self.w_neg_inf = 0.0
            self.min = np.inf
            self.max = -np.inf
            self.finite_min = np.inf
            self.finite_max = -np.inf
            self.quantiles = QuantileSketch(options.quantile_k)
            self.w_quantiles = QuantileSketch(options.quantile_k) if weighted else None
        else:
            self.total_bytes = 0
            self.min_bytes = None
            self.max_bytes = None
            self.invalid_utf8 = 0
            self.freq = FrequencyTable(options.max_exact_distinct)

    # ------------------------------------------------------------------ update

    def update(self, column: pa.Array, row_weights: np.ndarray | None) -> None:
        """Adds one column (a large_list array) of a batch."""
        n_rows = len(column)
        if n_rows == 0:
            return
        if column.null_count == n_rows:
            return
        present = None
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[
            column.offset : column.offset + n_rows + 1
        ]
        lens = np.diff(offsets)
        if column.null_count:
            present = column.is_valid().to_numpy(zero_copy_only=False)
            lens = lens[present]
        self.num_non_missing += lens.size
        self.tot_num_values += int(lens.sum())
        lo, hi = int(lens.min()), int(lens.max())
        self.min_num_values = lo if self.min_num_values is None else min(self.min_num_values, lo)
        self.max_num_values = hi if self.max_num_values is None else max(self.max_num_values, hi)
        self.num_values.add(*_distinct_counts(lens, hi))
        value_weights = None
        if row_weights is not None:
            pw = row_weights if present is None else row_weights[present]
            self.w_non_missing += float(pw.sum())
            self.w_tot_num_values += float(np.dot(pw, lens))
            if lens.sum():
                value_weights = np.repeat(pw, lens)
        if self.tot_num_values == 0 or lens.sum() == 0:
            return
        if column.null_count:
            values = column.flatten()
        else:
            values = column.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        if self.kind == carrow.BYTES:
            self._update_bytes(values, value_weights)
        else:
            self._update_numeric(values, value_weights)

    def _update_numeric(self, values: pa.Array, w: np.ndarray | None) -> None:
        raw = values.to_numpy(zero_copy_only=False)
        if self.kind == carrow.INT:
            self._update_int(raw, w)
            return
        x = raw.astype(np.float64)
        nan = np.isnan(x)
        n_nan = int(nan.sum())
        if n_nan:
            self.num_nan += n_nan
            x = x[~nan]
            if w is not None:
                w = w[~nan]
            if x.size == 0:
                return
        self.num_zeros += int(x.size - np.count_nonzero(x))
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        finite = np.isfinite(x)
        if not finite.all():
            pos = x == np.inf
            neg = x == -np.inf
            self.pos_inf += int(pos.sum())
            self.neg_inf += int(neg.sum())
            if w is not None:
                self.w_pos_inf += float(w[pos].sum())
                self.w_neg_inf += float(w[neg].sum())
            fx = x[finite]
            fw = w[finite] if w is not None else None
        else:
            fx, fw = x, w
        if fx.size:
            self.finite_min = min(self.finite_min, float(fx.min()))
            self.finite_max = max(self.finite_max, float(fx.max()))
        self.moments.add(x)
        self.quantiles.add(fx)
        if w is not None:
            self.w_moments.add(x, w)
            self.w_quantiles.add(fx, fw)

    def _update_int(self, xi: np.ndarray, w: np.ndarray | None) -> None:
        lo, hi = int(xi.min()), int(xi.max())
        self.min = min(self.min, float(lo))
        self.max = max(self.max, float(hi))
        self.finite_min, self.finite_max = self.min, self.max
        x = xi.astype(np.float64)
        self.moments.add(x)
        if w is not None:
            self.w_moments.add(x, w)
        if xi.size > 256 and hi - lo < _BINCOUNT_RANGE:
            # Integers of a small range: exact counts per value in O(n), no sort.
            offsets = xi - lo
            counts = np.bincount(offsets)
            self.num_zeros += int(counts[-lo]) if lo <= 0 <= hi else 0
            present = np.flatnonzero(counts)
            distinct = present + float(lo)
            self.quantiles.add(distinct, counts[present].astype(np.float64))
            if w is not None:
                self.w_quantiles.add(distinct, np.bincount(offsets, weights=w)[present])
        else:
            self.num_zeros += int(xi.size - np.count_nonzero(xi))
            self.quantiles.add(x)
            if w is not None:
                self.w_quantiles.add(x, w)

    def _update_bytes(self, values: pa.Array, w: np.ndarray | None) -> None:
        if not pa.types.is_large_binary(values.type):
            values = values.cast(pa.large_binary())
        n = len(values)
        sizes = np.diff(
            np.frombuffer(values.buffers()[1], dtype=np.int64)[
                values.offset : values.offset + n + 1
            ]
        )
        self.total_bytes += int(sizes.sum())
        lo, hi = int(sizes.min()), int(sizes.max())
        self.min_bytes = lo if self.min_bytes is None else min(self.min_bytes, lo)
        self.max_bytes = hi if self.max_bytes is None else max(self.max_bytes, hi)
        if w is None:
            vc = pc.value_counts(values)
            distinct = vc.field("values")
            counts = vc.field("counts").to_numpy().astype(np.int64)
            wsum = counts.astype(np.float64)
        else:
            grouped = (
                pa.table({"v": values, "w": w})
                .group_by("v")
                .aggregate([("w", "sum"), ("w", "count")])
            )
            distinct = grouped.column("v").combine_chunks()
            counts = grouped.column("w_count").to_numpy().astype(np.int64)
            wsum = grouped.column("w_sum").to_numpy().astype(np.float64)
        bad = _invalid_utf8_mask(distinct)
        if bad is not None:
            self.invalid_utf8 += int(counts[bad].sum())
        self.freq.add_counts(distinct, counts, wsum)

    # ------------------------------------------------------------------ merge

    def merge(self, o: FeatureStats) -> None:
        """Merges ``o``, the same feature's partial statistics, into these (in place)."""
        self.num_non_missing += o.num_non_missing
        self.w_non_missing += o.w_non_missing
        self.tot_num_values += o.tot_num_values
        self.w_tot_num_values += o.w_tot_num_values
        self.min_num_values = _min_opt(self.min_num_values, o.min_num_values)
        self.max_num_values = _max_opt(self.max_num_values, o.max_num_values)
        self.num_values.merge(o.num_values)
        if self.kind != carrow.BYTES:
            self.moments.merge(o.moments)
            self.num_zeros += o.num_zeros
            self.num_nan += o.num_nan
            self.pos_inf += o.pos_inf
            self.neg_inf += o.neg_inf
            self.w_pos_inf += o.w_pos_inf
            self.w_neg_inf += o.w_neg_inf
            self.min = min(self.min, o.min)
            self.max = max(self.max, o.max)
            self.finite_min = min(self.finite_min, o.finite_min)
            self.finite_max = max(self.finite_max, o.finite_max)
            self.quantiles.merge(o.quantiles)
            if self.w_moments is not None:
                self.w_moments.merge(o.w_moments)
                self.w_quantiles.merge(o.w_quantiles)
        else:
            self.total_bytes += o.total_bytes
            self.min_bytes = _min_opt(self.min_bytes, o.min_bytes)
            self.max_bytes = _max_opt(self.max_bytes, o.max_bytes)
            self.invalid_utf8 += o.invalid_utf8
            self.freq.merge(o.freq)


class DatasetStats:
    """Partial statistics of one dataset: example counts and one :class:`FeatureStats` per feature."""

    def __init__(self, options: StatsOptions):
        self.options = options
        self.num_examples = 0
        self.weighted_num_examples = 0.0
        self.features: dict[str, FeatureStats] = {}

    def update(self, batch: pa.RecordBatch) -> None:
        """Adds one RecordBatch of canonical columns."""
        if batch.num_rows == 0:
            self._ensure_features(batch.schema)
            return
        self._ensure_features(batch.schema)
        weights = None
        if self.options.weight_feature is not None:
            weights = row_weights(batch, self.options.weight_feature)
            self.weighted_num_examples += float(weights.sum())
        self.num_examples += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns):
            self.features[name].update(column, weights)

    def _ensure_features(self, schema: pa.Schema) -> None:
        for field in schema:
            if field.name not in self.features:
                kind = carrow.feature_type(field.type)
                self.features[field.name] = FeatureStats(
                    kind, self.options, is_bytes=field.name in self.options.bytes_features
                )

    def merge(self, other: DatasetStats) -> DatasetStats:
        """Merges ``other`` into these statistics (in place) and returns them."""
        self.num_examples += other.num_examples
        self.weighted_num_examples += other.weighted_num_examples
        for name, fs in other.features.items():
            mine = self.features.get(name)
            if mine is None:
                self.features[name] = fs
            else:
                mine.merge(fs)
        return self


def row_weights(batch: pa.RecordBatch, weight_feature: str) -> np.ndarray:
    """The weight of every row: the weight feature must hold exactly one number per row."""
    idx = batch.schema.get_field_index(weight_feature)
    if idx < 0:
        raise ValueError(f"weight feature {weight_feature!r} is not a column of the input")
    column = batch.column(idx)
    if carrow.feature_type(column.type) == carrow.BYTES:
        raise ValueError(f"weight feature {weight_feature!r} must be INT or FLOAT")
    lengths = pc.list_value_length(column).fill_null(0).to_numpy()
    if column.null_count or not (lengths == 1).all():
        raise ValueError(
            f"weight feature {weight_feature!r} must have exactly one value in every example"
        )
    return column.flatten().to_numpy(zero_copy_only=False).astype(np.float64)


def _invalid_utf8_mask(values: pa.Array) -> np.ndarray | None:
    """Mask of values that are not valid UTF-8, or None if all are valid."""
    try:
        values.cast(pa.large_string()).validate(full=True)
        return None
    except pa.ArrowInvalid:
        pass
    # Rare path: only the distinct values of this batch are decoded one by one.
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.to_pylist()):
        try:
            v.decode("utf-8")
        except UnicodeDecodeError:
            out[i] = True
    return out


def _distinct_counts(lens: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct lengths, how often each occurs)``: the num_values sketch takes them
    as weighted values, so it stays exact while few list lengths occur."""
    if max_len < 65536:
        counts = np.bincount(lens, minlength=max_len + 1)
        distinct = np.flatnonzero(counts)
        return distinct.astype(np.float64), counts[distinct].astype(np.float64)
    distinct, counts = np.unique(lens, return_counts=True)
    return distinct.astype(np.float64), counts.astype(np.float64)


def _min_opt(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max_opt(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
