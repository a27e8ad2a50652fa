"""Parity of conveyor's GenerateStatistics with tfdv.GenerateStatistics on the same batches."""

from __future__ import annotations

import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest

from conveyor.beam_utils.arrow import column_type, make_schema, to_column, wrap_scalars
from conveyor.components.statistics import GenerateStatistics, StatsOptions


def _penguins_batch(seed: int = 0) -> pa.RecordBatch:
    import importlib.resources

    import pandas as pd

    path = importlib.resources.files("palmerpenguins") / "data" / "penguins.csv"
    df = pd.read_csv(path)
    rng = np.random.default_rng(seed)
    n = len(df)
    types = {
        "species": "BYTES",
        "island": "BYTES",
        "bill_length_mm": "FLOAT",
        "bill_depth_mm": "FLOAT",
        "flipper_length_mm": "INT",
        "body_mass_g": "INT",
        "sex": "BYTES",
        "year": "INT",
    }
    cols = {}
    for c, t in types.items():
        cols[c] = to_column(pa.array(df[c], from_pandas=True), column_type(t))
    # A list-valued string feature with empty lists and missing rows.
    words = np.array([b"red", b"green", b"blue", b"cyan", b"pink"], dtype=object)
    lengths = rng.integers(0, 4, n)
    flat = words[rng.integers(0, len(words), int(lengths.sum()))]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    missing = rng.random(n) < 0.1
    cols["tags"] = pa.LargeListArray.from_arrays(
        pa.array(offsets, mask=np.concatenate([missing, [False]])),
        pa.array(list(flat), pa.large_binary()),
    )
    # A list-valued float feature with NaNs and zeros.
    lengths = rng.integers(1, 5, n)
    vals = rng.normal(3.0, 2.0, int(lengths.sum())).round(1).astype(np.float32)
    vals[rng.random(vals.size) < 0.05] = np.nan
    vals[rng.random(vals.size) < 0.05] = 0.0
    cols["readings"] = pa.LargeListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(lengths)])), pa.array(vals)
    )
    cols["weight"] = wrap_scalars(pa.array(rng.uniform(0.5, 3.0, n).round(2)), pa.float32())
    cols["all_null_int"] = _all_null(n, "INT")
    cols["all_null_str"] = _all_null(n, "BYTES")
    schema = make_schema(
        {
            **types,
            "tags": "BYTES",
            "readings": "FLOAT",
            "weight": "FLOAT",
            "all_null_int": "INT",
            "all_null_str": "BYTES",
        }
    )
    return pa.RecordBatch.from_arrays([cols[f.name] for f in schema], schema=schema)


def _all_null(n: int, feature_type: str) -> pa.Array:
    """An all-null list column with a real (empty) values array."""
    return pa.LargeListArray.from_arrays(
        pa.array(np.zeros(n + 1, np.int64), mask=np.r_[np.ones(n, bool), False]),
        pa.array([], column_type(feature_type).value_type),
    )


def run_pipeline(transform, batches):
    """Runs ``batches | transform`` and returns its single output proto."""
    import os
    import tempfile

    from tensorflow_metadata.proto.v0 import statistics_pb2

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.pb")

        def write(stats, path=path):
            with open(path, "ab") as f:
                f.write(stats.SerializeToString())
            return stats

        with beam.Pipeline() as p:
            _ = p | beam.Create(batches, reshuffle=False) | transform | beam.Map(write)
        with open(path, "rb") as f:
            return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


_run = run_pipeline


@pytest.fixture(scope="module")
def batch():
    return _penguins_batch()


@pytest.fixture(scope="module")
def both(batch):
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_options
    from tensorflow_data_validation.utils import slicing_util

    batches = [batch.slice(0, 150), batch.slice(150, 100), batch.slice(250)]
    theirs = _run(
        tfdv.GenerateStatistics(stats_options.StatsOptions(weight_feature="weight")), batches
    )
    assert theirs.datasets[0].name == ""
    theirs.datasets[0].name = "All Examples"
    # TFDV 1.16 crashes (segfault) slicing batches that hold all-null columns, so
    # its sliced run leaves them out; the unsliced run above covers them.
    keep = [n for n in batch.schema.names if not n.startswith("all_null")]
    sliceable = [
        pa.RecordBatch.from_arrays(
            [b.column(b.schema.get_field_index(n)) for n in keep], names=keep
        )
        for b in batches
    ]
    sliced = _run(
        tfdv.GenerateStatistics(
            stats_options.StatsOptions(
                weight_feature="weight",
                slice_functions=[slicing_util.get_feature_value_slicer({"island": None})],
            )
        ),
        sliceable,
    )
    for ds in sliced.datasets:
        if ds.name != "All Examples":
            theirs.datasets.append(ds)
    ours = _run(
        GenerateStatistics(StatsOptions(weight_feature="weight", slice_by=["island"])), batches
    )
    return ours, theirs


def _by_name(stats):
    return {d.name: d for d in stats.datasets}


def _features(ds):
    return {f.path.step[0]: f for f in ds.features}


def _values(batch, feature, rows=None, weights=False):
    col = batch.column(batch.schema.get_field_index(feature))
    if rows is not None:
        col = col.take(pa.array(rows))
    lens = np.asarray(pa.compute.list_value_length(col).fill_null(0))
    vals = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    w = np.ones_like(vals)
    if weights:
        wcol = batch.column(batch.schema.get_field_index("weight"))
        if rows is not None:
            wcol = wcol.take(pa.array(rows))
        w = np.repeat(wcol.flatten().to_numpy().astype(np.float64), lens)
    keep = ~np.isnan(vals)
    return vals[keep], w[keep]


def _rank_gap(values, weights, a, b):
    """Weight fraction of the data strictly between a and b."""
    lo, hi = min(a, b), max(a, b)
    return weights[(values > lo) & (values < hi)].sum() / weights.sum()


EPS = 0.01


def _slice_rows(batch, name):
    if name == "All Examples":
        return None
    value = name.split("_", 1)[1]
    island = batch.column(batch.schema.get_field_index("island")).flatten().to_pylist()
    return np.flatnonzero(np.array([v.decode() == value for v in island]))


def test_same_datasets_and_counts(both):
    ours, theirs = both
    o, t = _by_name(ours), _by_name(theirs)
    assert set(o) == set(t) == {"All Examples", "island_Biscoe", "island_Dream", "island_Torgersen"}
    assert ours.datasets[0].name == "All Examples"
    for name in t:
        assert o[name].num_examples == t[name].num_examples
        # TFDV sums float32 weights in float32; we sum in float64.
        assert o[name].weighted_num_examples == pytest.approx(
            t[name].weighted_num_examples, rel=1e-6
        )
        if name == "All Examples":
            assert list(_features(o[name])) == list(_features(t[name]))
        else:
            assert set(_features(t[name])) <= set(_features(o[name]))


def _check_common(oc, tc):
    for field in (
        "num_non_missing",
        "num_missing",
        "min_num_values",
        "max_num_values",
        "tot_num_values",
    ):
        assert getattr(oc, field) == getattr(tc, field), field
    assert oc.avg_num_values == pytest.approx(tc.avg_num_values, rel=1e-6)
    ob = [(b.low_value, b.high_value) for b in oc.num_values_histogram.buckets]
    tb = [(b.low_value, b.high_value) for b in tc.num_values_histogram.buckets]
    assert len(ob) == len(tb)
    ow, tw = oc.weighted_common_stats, tc.weighted_common_stats
    # TFDV accumulates float32 weights in float32: allow that rounding.
    scale = 1e-6 * max(1.0, tw.num_non_missing + tw.num_missing, tw.tot_num_values)
    for field in ("num_non_missing", "num_missing", "tot_num_values", "avg_num_values"):
        assert getattr(ow, field) == pytest.approx(getattr(tw, field), rel=1e-6, abs=scale), field


def _check_histograms(ohs, ths, values, weights):
    assert [h.type for h in ohs] == [h.type for h in ths]
    for oh, th in zip(ohs, ths):
        assert oh.num_nan == th.num_nan
        assert len(oh.buckets) == len(th.buckets)
        for ob, tb in zip(oh.buckets, th.buckets):
            if oh.type == oh.STANDARD:
                assert ob.low_value == pytest.approx(tb.low_value, rel=1e-9)
                assert ob.high_value == pytest.approx(tb.high_value, rel=1e-9)
            else:
                assert _rank_gap(values, weights, ob.low_value, tb.low_value) <= EPS
                assert _rank_gap(values, weights, ob.high_value, tb.high_value) <= EPS


def _check_numeric(on, tn, values, wvalues, wweights):
    assert on.mean == pytest.approx(tn.mean, rel=1e-9)
    assert on.std_dev == pytest.approx(tn.std_dev, rel=1e-6, abs=1e-9)
    for field in ("num_zeros", "min", "max"):
        assert getattr(on, field) == getattr(tn, field), field
    ones = np.ones_like(values)
    assert _rank_gap(values, ones, on.median, tn.median) <= EPS
    _check_histograms(on.histograms, tn.histograms, values, ones)
    ow, tw = on.weighted_numeric_stats, tn.weighted_numeric_stats
    assert ow.mean == pytest.approx(tw.mean, rel=1e-9)
    assert ow.std_dev == pytest.approx(tw.std_dev, rel=1e-6, abs=1e-9)
    assert _rank_gap(wvalues, wweights, ow.median, tw.median) <= EPS
    _check_histograms(ow.histograms, tw.histograms, wvalues, wweights)


def _check_string(os_, ts):
    assert os_.unique == ts.unique
    assert [(v.value, v.frequency) for v in os_.top_values] == [
        (v.value, v.frequency) for v in ts.top_values
    ]
    assert [(b.label, b.sample_count, b.low_rank) for b in os_.rank_histogram.buckets] == [
        (b.label, b.sample_count, b.low_rank) for b in ts.rank_histogram.buckets
    ]
    assert os_.avg_length == pytest.approx(ts.avg_length, rel=1e-6)
    assert os_.invalid_utf8_count == ts.invalid_utf8_count
    ow, tw = os_.weighted_string_stats, ts.weighted_string_stats
    assert [v.value for v in ow.top_values] == [v.value for v in tw.top_values]
    for a, b in zip(ow.top_values, tw.top_values):
        assert a.frequency == pytest.approx(b.frequency, rel=1e-6)


@pytest.mark.parametrize(
    "dataset", ["All Examples", "island_Biscoe", "island_Dream", "island_Torgersen"]
)
def test_feature_parity(both, batch, dataset):
    ours, theirs = both
    o, t = _features(_by_name(ours)[dataset]), _features(_by_name(theirs)[dataset])
    rows = _slice_rows(batch, dataset)
    for name, tf in t.items():
        of = o[name]
        assert of.type == tf.type, name
        assert of.WhichOneof("stats") == tf.WhichOneof("stats"), name
        kind = tf.WhichOneof("stats")
        _check_common(getattr(of, kind).common_stats, getattr(tf, kind).common_stats)
        if kind == "num_stats":
            values, _ = _values(batch, name, rows)
            wvalues, wweights = _values(batch, name, rows, weights=True)
            if values.size:
                _check_numeric(of.num_stats, tf.num_stats, values, wvalues, wweights)
            else:
                assert of.num_stats.mean == tf.num_stats.mean == 0
        else:
            _check_string(of.string_stats, tf.string_stats)


def test_tfdv_tools_accept_our_proto(both):
    import tensorflow_data_validation as tfdv

    ours, _ = both
    schema = tfdv.infer_schema(ours)
    names = {f.name for f in schema.feature}
    assert {"species", "bill_length_mm", "tags", "readings"} <= names
    anomalies = tfdv.validate_statistics(ours, schema)
    assert not anomalies.anomaly_info
    html = tfdv.get_statistics_html(ours)
    assert "facets-overview" in html or "<iframe" in html


def test_std_dev_and_mean_tolerance_on_exact_data(batch):
    """Exact moments: compare with numpy in float64 (population std)."""
    ours = _run(GenerateStatistics(), [batch])
    assert ours.datasets[0].name == ""  # unsliced: unnamed, as TFDV
    f = _features(ours.datasets[0])["bill_length_mm"].num_stats
    values, _ = _values(batch, "bill_length_mm")
    assert f.mean == pytest.approx(values.mean(), rel=1e-12)
    assert f.std_dev == pytest.approx(values.std(), rel=1e-9)
    assert math.isclose(f.min, values.min()) and math.isclose(f.max, values.max())
