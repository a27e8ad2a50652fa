"""Sketches, edge cases, windowing and the command line of the statistics component."""

from __future__ import annotations

import os
import pickle
import struct

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.beam_utils.arrow import make_schema, to_column
from conveyor.components.statistics import GenerateStatistics, StatsCombineFn, StatsOptions
from conveyor.components.statistics.sketches import (
    FrequencyTable,
    HyperLogLog,
    QuantileSketch,
    hash_binary,
)
from conveyor.components.statistics.slicing import slice_batch


def _run(transform, batches, tmp_path):
    os.makedirs(tmp_path, exist_ok=True)
    path = str(tmp_path / "out.pb")

    def write(stats, path=path):
        with open(path, "ab") as f:
            f.write(struct.pack("<I", stats.ByteSize()) + stats.SerializeToString())

    with beam.Pipeline() as p:
        _ = p | beam.Create(batches, reshuffle=False) | transform | beam.Map(write)
    return _read_all(path)


def _read_all(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        (n,) = struct.unpack("<I", data[i : i + 4])
        out.append(statistics_pb2.DatasetFeatureStatisticsList.FromString(data[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def _batch(**cols):
    types = {k: t for k, (t, _) in cols.items()}
    schema = make_schema(types)
    arrays = [to_column(pa.array(v), schema.field(k).type) for k, (_, v) in cols.items()]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _rank_error(data, value, q):
    data = np.sort(data)
    lo = np.searchsorted(data, value, side="left") / data.size
    hi = np.searchsorted(data, value, side="right") / data.size
    return 0.0 if lo <= q <= hi else min(abs(lo - q), abs(hi - q))


# ---------------------------------------------------------------- sketches


def test_quantile_sketch_exact_below_k():
    s = QuantileSketch(k=64)
    s.add(np.arange(10.0))
    assert s.is_exact()
    assert s.quantiles([0.0, 0.5, 1.0]).tolist() == [0.0, 5.0, 9.0]


def test_quantile_sketch_exact_for_few_distinct_values():
    rng = np.random.default_rng(4)
    data = rng.integers(0, 100, 100_000).astype(float)
    s = QuantileSketch(k=128)
    for chunk in np.array_split(data, 7):
        s.add(chunk)
    assert s.is_exact()
    qs = np.linspace(0, 1, 11)[1:-1]
    expected = np.sort(data)[np.ceil(qs * data.size).astype(int)]
    assert s.quantiles(qs).tolist() == expected.tolist()


def test_quantile_sketch_rank_error_within_bound_after_merges():
    rng = np.random.default_rng(1)
    data = rng.lognormal(0, 2, 200_000)
    k = 256
    parts = []
    for chunk in np.array_split(data, 37):
        s = QuantileSketch(k=k)
        for piece in np.array_split(chunk, 5):
            s.add(piece)
        parts.append(pickle.loads(pickle.dumps(s)))
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    assert not merged.is_exact()
    assert merged.total_weight == pytest.approx(data.size)
    levels = merged.num_levels
    assert sum(v.size for v in merged.values) <= levels * k
    bound = (levels - 1) / k  # H / k, H = levels that compacted
    qs = np.linspace(0, 1, 41)
    errors = [_rank_error(data, v, q) for q, v in zip(qs, merged.quantiles(qs))]
    assert max(errors) <= bound


def test_weighted_quantile_sketch():
    rng = np.random.default_rng(2)
    data = rng.normal(size=50_000)
    w = rng.uniform(0.1, 5, data.size)
    s = QuantileSketch(k=512)
    for a, b in zip(np.array_split(data, 20), np.array_split(w, 20)):
        s.add(a, b)
    order = np.argsort(data)
    cw = np.cumsum(w[order]) / w.sum()
    median = s.quantiles([0.5])[0]
    rank = cw[np.searchsorted(data[order], median)]
    assert abs(rank - 0.5) <= 2 * s.num_levels / 512


def test_hash_and_hll():
    values = pa.array([f"v{i}".encode() for i in range(30_000)], pa.large_binary())
    h = hash_binary(values)
    assert np.unique(h).size == 30_000
    assert (hash_binary(values.slice(5, 3)) == h[5:8]).all()
    hll = HyperLogLog()
    hll.add_hashes(h)
    assert abs(hll.estimate() - 30_000) / 30_000 < 0.03


def test_frequency_table_exact_then_misra_gries():
    rng = np.random.default_rng(3)
    heavy = [b"a"] * 5000 + [b"b"] * 3000
    light = [f"x{i}".encode() for i in range(2000)]
    stream = np.array(heavy + light, dtype=object)
    rng.shuffle(stream)
    t = FrequencyTable(max_exact=100)
    for chunk in np.array_split(stream, 10):
        arr = pa.array(list(chunk), pa.large_binary())
        vc = arr.value_counts()
        counts = vc.field("counts").to_numpy().astype(np.int64)
        t.add_counts(vc.field("values"), counts, counts.astype(float))
    assert not t.exact
    got = dict(zip(t.values.to_pylist(), t.counts.tolist()))
    n = len(stream)
    assert t.max_error <= n / 101
    for key, true in ((b"a", 5000), (b"b", 3000)):
        assert true - t.max_error <= got[key] <= true
    assert abs(t.num_unique() - 2002) / 2002 < 0.03


# ---------------------------------------------------------------- edge cases


def test_empty_input_gives_zero_examples(tmp_path):
    [stats] = _run(GenerateStatistics(), [], tmp_path)
    assert len(stats.datasets) == 1
    assert stats.datasets[0].num_examples == 0


def test_empty_batches_keep_the_features(tmp_path):
    b = _batch(x=("INT", [[1]]), s=("BYTES", [[b"a"]])).slice(0, 0)
    [stats] = _run(GenerateStatistics(), [b], tmp_path)
    ds = stats.datasets[0]
    assert ds.num_examples == 0
    assert [f.path.step[0] for f in ds.features] == ["x", "s"]


def test_all_null_columns_and_infinities(tmp_path):
    b = _batch(
        nul=("INT", [None, None, None]),
        f=("FLOAT", [[1.0, float("inf")], [float("-inf")], [float("nan")]]),
    )
    [stats] = _run(GenerateStatistics(), [b], tmp_path)
    feats = {f.path.step[0]: f for f in stats.datasets[0].features}
    nul = feats["nul"]
    assert nul.type == statistics_pb2.FeatureNameStatistics.INT
    assert nul.num_stats.common_stats.num_missing == 3
    assert nul.num_stats.common_stats.num_non_missing == 0
    assert not nul.num_stats.histograms
    f = feats["f"].num_stats
    assert f.min == float("-inf") and f.max == float("inf")
    std = f.histograms[0]
    assert std.num_nan == 1
    assert (std.buckets[0].low_value, std.buckets[0].sample_count) == (float("-inf"), 1)
    assert (std.buckets[-1].high_value, std.buckets[-1].sample_count) == (float("inf"), 1)


def test_multi_column_slices_and_list_values():
    b = _batch(
        a=("BYTES", [[b"x"], [b"y"], None, [b"x", b"y"]]),
        n=("INT", [[1], [1], [2], [2]]),
    )
    got = {name: part.num_rows for name, part in slice_batch(b, ["a", "n"])}
    assert got == {"a_x_n_1": 1, "a_y_n_1": 1, "a_x_n_2": 1, "a_y_n_2": 1}
    got = {name: part.num_rows for name, part in slice_batch(b, ["a"])}
    assert got == {"a_x": 2, "a_y": 2}


def test_combinefn_pickles_and_merges():
    fn = pickle.loads(pickle.dumps(StatsCombineFn(StatsOptions(weight_feature="w"))))
    b = _batch(x=("FLOAT", [[1.0], [2.0], [3.0], [4.0]]), w=("FLOAT", [[1.0], [1.0], [2.0], [2.0]]))
    a1 = fn.add_input(fn.create_accumulator(), b.slice(0, 2))
    a2 = fn.add_input(fn.create_accumulator(), b.slice(2))
    merged = fn.merge_accumulators([pickle.loads(pickle.dumps(a1)), a2])
    ds = fn.extract_output(merged)
    x = {f.path.step[0]: f for f in ds.features}["x"].num_stats
    assert ds.num_examples == 4 and ds.weighted_num_examples == 6
    assert x.mean == pytest.approx(2.5) and x.std_dev == pytest.approx(np.std([1, 2, 3, 4]))
    assert x.weighted_numeric_stats.mean == pytest.approx((1 + 2 + 6 + 8) / 6)


def test_hot_key_fanout_and_slices_give_the_same_result(tmp_path):
    rng = np.random.default_rng(5)
    batches = [
        _batch(
            x=("FLOAT", [[float(v)] for v in rng.normal(size=500)]),
            s=("BYTES", [[b"ab"[i % 2 : i % 2 + 1]] for i in range(500)]),
        )
        for _ in range(4)
    ]
    plain = _run(GenerateStatistics(StatsOptions(slice_by=["s"])), batches, tmp_path / "a")
    fanned = _run(
        GenerateStatistics(StatsOptions(slice_by=["s"], hot_key_fanout=4)), batches, tmp_path / "b"
    )
    assert [d.name for d in plain[0].datasets] == ["All Examples", "s_a", "s_b"]
    for a, b in zip(plain[0].datasets, fanned[0].datasets):
        assert a.num_examples == b.num_examples
        fa, fb = a.features[0].num_stats, b.features[0].num_stats
        assert fa.mean == pytest.approx(fb.mean, rel=1e-12)
        assert (fa.min, fa.max, fa.median) == (fb.min, fb.max, fb.median)


def test_missing_weight_is_an_error(tmp_path):
    b = _batch(x=("INT", [[1], [2]]), w=("FLOAT", [[1.0], None]))
    with pytest.raises(Exception, match="exactly one value"):
        _run(GenerateStatistics(StatsOptions(weight_feature="w")), [b], tmp_path)


# ---------------------------------------------------------------- streaming


def test_windowed_stats_with_teststream(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms import window

    def batch(values):
        return _batch(x=("INT", [[v] for v in values]))

    stream = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements(
            [window.TimestampedValue(batch([1, 2, 3]), 1), window.TimestampedValue(batch([4]), 5)]
        )
        .advance_watermark_to(10)
        .add_elements([window.TimestampedValue(batch([10, 20]), 12)])
        .advance_watermark_to_infinity()
    )
    path = str(tmp_path / "windows.pb")

    def write(stats, path=path):
        with open(path, "ab") as f:
            f.write(struct.pack("<I", stats.ByteSize()) + stats.SerializeToString())

    opts = PipelineOptions()
    opts.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=opts) as p:
        _ = (
            p
            | stream
            | beam.WindowInto(window.FixedWindows(10))
            | GenerateStatistics()
            | beam.Map(write)
        )
    results = sorted(_read_all(path), key=lambda s: s.datasets[0].num_examples)
    assert [s.datasets[0].num_examples for s in results] == [2, 4]
    means = sorted(s.datasets[0].features[0].num_stats.mean for s in results)
    assert means == [2.5, 15.0]


# ---------------------------------------------------------------- CLI


def _tf_example(features: dict) -> bytes:
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    for k, v in features.items():
        if isinstance(v, int):
            ex.features.feature[k].int64_list.value.append(v)
        elif isinstance(v, float):
            ex.features.feature[k].float_list.value.append(v)
        else:
            ex.features.feature[k].bytes_list.value.append(v)
    return ex.SerializeToString()


def _write_tfrecord_gz(path, records):
    from conveyor.beam_utils.tfrecord_io import write_records

    write_records(path, records, compress=True)


def test_cli_csv_with_slices_and_weight(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    csv = tmp_path / "in.csv"
    csv.write_text("k,v,w,s\n1,2.5,1.0,a\n2,NA,2.0,b\n3,4.0,1.0,a\n")
    out = tmp_path / "out"
    rc = main(
        [
            "statistics",
            "--input",
            str(csv),
            "--format",
            "csv",
            "--output",
            str(out),
            "--slice-by",
            "s",
            "--weight",
            "w",
        ]
    )
    assert rc == 0
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (out / "FeatureStats.pb").read_bytes()
    )
    assert [d.name for d in stats.datasets] == ["All Examples", "s_a", "s_b"]
    assert stats.datasets[0].num_examples == 3
    assert stats.datasets[0].weighted_num_examples == 4
    assert "<html" in (out / "statistics.html").read_text()
    assert "3 examples" in capsys.readouterr().out


def test_cli_examples_dir_per_split(tmp_path):
    from conveyor.orchestration.cli import main

    examples = tmp_path / "examples"
    for split, n in (("train", 5), ("eval", 2)):
        (examples / f"Split-{split}").mkdir(parents=True)
        records = [_tf_example({"i": i, "f": float(i), "s": b"x"}) for i in range(n)]
        _write_tfrecord_gz(str(examples / f"Split-{split}" / "data.tfrecord.gz"), records)
    out = tmp_path / "stats"
    assert main(["statistics", "--examples", str(examples), "--output", str(out)]) == 0
    for split, n in (("train", 5), ("eval", 2)):
        data = (out / f"Split-{split}" / "FeatureStats.pb").read_bytes()
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(data)
        assert stats.datasets[0].num_examples == n


def test_cli_usage_errors(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    assert main(["statistics", "--output", str(tmp_path)]) == 2
    assert (
        main(["statistics", "--input", str(tmp_path / "nope*.csv"), "--output", str(tmp_path)]) == 2
    )
