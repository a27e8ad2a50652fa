"""Turns merged partial statistics into tensorflow-metadata statistics protos.

Field semantics follow TFDV's (``statistics.proto``): population standard
deviation; ``num_values_histogram`` and the quantiles histogram are QUANTILES
histograms with equal sample counts per bucket; the standard histogram has
equal-width buckets between the finite min and max, with a ``[-inf, -inf]``
bucket before and a ``[inf, inf]`` bucket after when infinities occur; NaNs are
counted in every histogram's ``num_nan``; string values that are not UTF-8 are
labelled ``__BYTES_VALUE__``; top values are ordered by count, ties by the
larger value first.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.beam_utils import arrow as carrow
from conveyor.components.statistics.accumulators import DatasetStats, FeatureStats
from conveyor.components.statistics.options import StatsOptions
from conveyor.components.statistics.sketches import FrequencyTable, QuantileSketch

FNS = statistics_pb2.FeatureNameStatistics
Histogram = statistics_pb2.Histogram
INVALID_UTF8_LABEL = "__BYTES_VALUE__"


def dataset_proto(name: str, stats: DatasetStats) -> statistics_pb2.DatasetFeatureStatistics:
    """The ``DatasetFeatureStatistics`` of one dataset (or slice)."""
    opts = stats.options
    weighted = opts.weight_feature is not None
    out = statistics_pb2.DatasetFeatureStatistics(name=name, num_examples=stats.num_examples)
    if weighted:
        out.weighted_num_examples = stats.weighted_num_examples
    for fname, fs in stats.features.items():
        out.features.append(_feature_proto(fname, fs, stats, opts))
    return out


def empty_dataset_proto(
    name: str, options: StatsOptions
) -> statistics_pb2.DatasetFeatureStatistics:
    """A dataset with zero examples (what an empty input produces)."""
    return dataset_proto(name, DatasetStats(options))


def _feature_proto(name: str, fs: FeatureStats, ds: DatasetStats, opts: StatsOptions):
    out = FNS()
    out.path.step.append(name)
    weighted = opts.weight_feature is not None
    if fs.kind == carrow.BYTES:
        if fs.is_bytes:
            out.type = FNS.BYTES
            target = out.bytes_stats
        else:
            out.type = FNS.STRING
            target = out.string_stats
    else:
        out.type = FNS.INT if fs.kind == carrow.INT else FNS.FLOAT
        target = out.num_stats
    _fill_common(target.common_stats, fs, ds, opts, weighted)
    if fs.kind == carrow.BYTES:
        if fs.is_bytes:
            _fill_bytes(out.bytes_stats, fs)
        else:
            _fill_string(out.string_stats, fs, opts, weighted)
    else:
        _fill_numeric(out.num_stats, fs, opts, weighted)
    return out


def _fill_common(common, fs: FeatureStats, ds: DatasetStats, opts: StatsOptions, weighted: bool):
    common.num_non_missing = fs.num_non_missing
    common.num_missing = ds.num_examples - fs.num_non_missing
    common.tot_num_values = fs.tot_num_values
    if fs.num_non_missing:
        common.min_num_values = fs.min_num_values
        common.max_num_values = fs.max_num_values
        common.avg_num_values = fs.tot_num_values / fs.num_non_missing
        nb = opts.num_values_histogram_buckets
        bounds = fs.num_values.quantiles(np.linspace(0.0, 1.0, nb + 1))
        bounds[0], bounds[-1] = fs.min_num_values, fs.max_num_values
        _quantile_buckets(common.num_values_histogram, bounds, fs.num_non_missing / nb)
    if weighted:
        wc = common.weighted_common_stats
        wc.num_non_missing = fs.w_non_missing
        wc.num_missing = ds.weighted_num_examples - fs.w_non_missing
        wc.tot_num_values = fs.w_tot_num_values
        if fs.w_non_missing:
            wc.avg_num_values = fs.w_tot_num_values / fs.w_non_missing


def _quantile_buckets(hist, bounds: np.ndarray, per_bucket: float) -> None:
    hist.type = Histogram.QUANTILES
    for lo, hi in itertools.pairwise(bounds):
        hist.buckets.add(low_value=float(lo), high_value=float(hi), sample_count=per_bucket)


def _quantiles_with_infs(sketch: QuantileSketch, neg: float, pos: float, ranks) -> np.ndarray:
    """Quantiles of the finite values in ``sketch`` plus ``neg``/``pos`` weight of -inf/+inf."""
    finite = sketch.total_weight
    total = neg + finite + pos
    ranks = np.asarray(ranks, dtype=np.float64)
    target = ranks * total
    out = np.empty(ranks.shape)
    low = (target <= neg) & (neg > 0)
    high = target > neg + finite
    mid = ~(low | high)
    out[low] = -np.inf
    out[high] = np.inf
    if mid.any():
        out[mid] = sketch.quantiles((target[mid] - neg) / finite) if finite else np.nan
    return out


def _numeric_histograms(
    fs: FeatureStats, sketch: QuantileSketch, neg: float, pos: float, opts: StatsOptions
):
    """(median, standard histogram, quantiles histogram) of one sketch."""
    total = neg + sketch.total_weight + pos
    median = float(_quantiles_with_infs(sketch, neg, pos, [0.5])[0])

    std = Histogram(type=Histogram.STANDARD, num_nan=fs.num_nan)
    if neg:
        std.buckets.add(low_value=-np.inf, high_value=-np.inf, sample_count=neg)
    if np.isfinite(fs.finite_min):
        values, weights = sketch.weighted_items()
        if fs.finite_min == fs.finite_max:
            edges = np.array([fs.finite_min, fs.finite_max])
            counts = np.array([weights.sum()])
        else:
            edges = np.linspace(fs.finite_min, fs.finite_max, opts.num_histogram_buckets + 1)
            if not np.isfinite(edges).all():  # overflow of the range: no buckets
                edges = np.array([])
                counts = np.array([])
            else:
                counts, _ = np.histogram(values, bins=edges, weights=weights)
        for i in range(len(counts)):
            std.buckets.add(
                low_value=float(edges[i]),
                high_value=float(edges[i + 1]),
                sample_count=float(counts[i]),
            )
    if pos:
        std.buckets.add(low_value=np.inf, high_value=np.inf, sample_count=pos)

    nb = opts.num_quantiles_histogram_buckets
    bounds = _quantiles_with_infs(sketch, neg, pos, np.linspace(0.0, 1.0, nb + 1))
    bounds[0], bounds[-1] = fs.min, fs.max
    qh = Histogram(num_nan=fs.num_nan)
    _quantile_buckets(qh, bounds, total / nb)
    return median, std, qh


def _fill_numeric(num, fs: FeatureStats, opts: StatsOptions, weighted: bool) -> None:
    if fs.tot_num_values - fs.num_nan <= 0:
        if fs.num_nan:
            num.histograms.add(type=Histogram.STANDARD).num_nan = fs.num_nan
            num.histograms.add(type=Histogram.QUANTILES).num_nan = fs.num_nan
        return
    num.mean = fs.moments.mean
    num.std_dev = (
        math.sqrt(max(0.0, fs.moments.variance)) if not math.isnan(fs.moments.variance) else 0.0
    )
    num.num_zeros = fs.num_zeros
    num.min = fs.min
    num.max = fs.max
    median, std, qh = _numeric_histograms(fs, fs.quantiles, fs.neg_inf, fs.pos_inf, opts)
    num.median = median
    num.histograms.extend([std, qh])
    if weighted:
        w = num.weighted_numeric_stats
        w.mean = fs.w_moments.mean
        var = fs.w_moments.variance
        w.std_dev = math.sqrt(max(0.0, var)) if not math.isnan(var) else 0.0
        median, std, qh = _numeric_histograms(fs, fs.w_quantiles, fs.w_neg_inf, fs.w_pos_inf, opts)
        w.median = median
        w.histograms.extend([std, qh])


def _label(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_UTF8_LABEL


def _ranked(freq: FrequencyTable, by_weight: bool, threshold: float, limit: int):
    """The ``limit`` most frequent (value, count) pairs, ties broken by the larger value."""
    freq.flush()
    if len(freq.values) == 0 or limit <= 0:
        return []
    score = freq.weights if by_weight else freq.counts
    table = pa.table({"s": score, "v": freq.values})
    keep = score >= threshold
    if not keep.all():
        table = table.filter(pa.array(keep))
    order = pc.sort_indices(table, sort_keys=[("s", "descending"), ("v", "descending")])
    top = table.take(order.slice(0, limit))
    return list(zip(top.column("v").to_pylist(), top.column("s").to_pylist()))


def _fill_ranked(target, pairs, num_top: int, num_ranks: int) -> None:
    for value, count in pairs[:num_top]:
        target.top_values.add(value=_label(value), frequency=float(count))
    for rank, (value, count) in enumerate(pairs[:num_ranks]):
        target.rank_histogram.buckets.add(
            low_rank=rank, high_rank=rank, label=_label(value), sample_count=float(count)
        )


def _fill_string(st, fs: FeatureStats, opts: StatsOptions, weighted: bool) -> None:
    if fs.tot_num_values == 0:
        return
    st.unique = fs.freq.num_unique()
    limit = max(opts.num_top_values, opts.num_rank_histogram_buckets)
    pairs = _ranked(fs.freq, False, opts.frequency_threshold, limit)
    _fill_ranked(st, pairs, opts.num_top_values, opts.num_rank_histogram_buckets)
    st.avg_length = fs.total_bytes / fs.tot_num_values
    st.invalid_utf8_count = fs.invalid_utf8
    if weighted:
        wpairs = _ranked(fs.freq, True, opts.weighted_frequency_threshold, limit)
        _fill_ranked(
            st.weighted_string_stats, wpairs, opts.num_top_values, opts.num_rank_histogram_buckets
        )


def _fill_bytes(bs, fs: FeatureStats) -> None:
    if fs.tot_num_values == 0:
        return
    bs.unique = fs.freq.num_unique()
    bs.avg_num_bytes = fs.total_bytes / fs.tot_num_values
    bs.min_num_bytes = fs.min_bytes
    bs.max_num_bytes = fs.max_bytes
    bs.max_num_bytes_int = fs.max_bytes
