"""Tests of the monitor component: windowed statistics, validation and drift."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

apache_beam = pytest.importorskip("apache_beam")

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions  # noqa: E402
from apache_beam.testing.test_stream import TestStream  # noqa: E402
from apache_beam.transforms import window  # noqa: E402
from apache_beam.utils.timestamp import Timestamp  # noqa: E402

from conveyor.beam_utils.arrow import make_schema, to_column  # noqa: E402

T0 = 1_700_000_040  # a multiple of 60: window k is [T0 + 60k, T0 + 60(k+1))
WINDOW = 60
ROWS = 400
DRIFT_WINDOW = 2  # the third window

SCHEMA_TEXT = """
feature {
  name: "x"
  type: FLOAT
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
  drift_comparator { jensen_shannon_divergence { threshold: 0.1 } }
}
feature {
  name: "c"
  type: BYTES
  presence { min_fraction: 1.0 min_count: 1 }
  shape { dim { size: 1 } }
  drift_comparator { infinity_norm { threshold: 0.2 } }
}
"""


def _schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(SCHEMA_TEXT, schema_pb2.Schema())


def _batch(x, c, ts=None, label=None, pred=None):
    cols = {"x": ("FLOAT", x), "c": ("BYTES", c)}
    if ts is not None:
        cols["ts"] = ("INT", ts)
    if label is not None:
        cols["label"] = ("INT", label)
        cols["pred"] = ("FLOAT", pred)
    schema = make_schema({k: t for k, (t, _) in cols.items()})
    arrays = [to_column(pa.array(v), schema.field(k).type) for k, (_, v) in cols.items()]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _window_rows(k: int, rng, rows: int = ROWS):
    """One window's data: clean except the drift window (shifted x, a jump in categories)."""
    drift = k == DRIFT_WINDOW
    x = rng.normal(3.0 if drift else 0.0, 1.0, rows).astype(np.float32).tolist()
    cats = ["a", "b", "z"] if drift else ["a", "b", "c"]
    probs = [0.2, 0.2, 0.6] if drift else [0.5, 0.3, 0.2]
    c = [s.encode() for s in rng.choice(cats, rows, p=probs)]
    ts = (T0 + WINDOW * k + rng.integers(0, WINDOW, rows)).tolist()
    return x, c, ts


def _baseline():
    from conveyor.components.statistics.combiners import CollectDatasetsFn, StatsCombineFn
    from conveyor.components.statistics.options import ALL_EXAMPLES

    rng = np.random.default_rng(7)
    x, c, _ = _window_rows(0, rng, rows=2000)
    fn = StatsCombineFn()
    dataset = fn.extract_output(fn.add_input(fn.create_accumulator(), _batch(x, c)))
    dataset.name = ALL_EXAMPLES
    collect = CollectDatasetsFn()
    return collect.extract_output(collect.add_input(collect.create_accumulator(), dataset))


def _streaming_options():
    opts = PipelineOptions()
    opts.view_as(StandardOptions).streaming = True
    return opts


def _collect(path):
    def write(result, path=str(path)):
        with open(path, "a") as f:
            f.write(json.dumps(result) + "\n")

    return beam.Map(write)


def _results(path):
    rows = [json.loads(line) for line in open(path)] if path.exists() else []
    return sorted(rows, key=lambda r: r["window_start"])


def _drift_types(result):
    return {(f, t) for f, t in result["anomalies"] if t.startswith("COMPARATOR_")}


def test_drift_in_third_window_with_timestamp_column(tmp_path):
    from conveyor.components.monitor import MonitorWindows
    from conveyor.components.validation.files import read_anomalies, read_statistics

    rng = np.random.default_rng(1)
    windows = [_window_rows(k, rng) for k in range(4)]
    stream = TestStream().advance_watermark_to(T0)
    for k in range(4):
        x, c, ts = windows[k]
        # Each element mixes the window's rows with the first rows of the next
        # window: the event-time step splits it.
        if k + 1 < 4:
            nx, nc, nts = windows[k + 1]
            x, c, ts = x + nx[:25], c + nc[:25], ts + nts[:25]
            windows[k + 1] = (nx[25:], nc[25:], nts[25:])
        half = len(x) // 2
        stream = stream.add_elements([_batch(x[:half], c[:half], ts[:half]),
                                      _batch(x[half:], c[half:], ts[half:])])
        stream = stream.advance_watermark_to(T0 + WINDOW * (k + 1))
    stream = stream.advance_watermark_to_infinity()

    out = tmp_path / "out"
    log = tmp_path / "results.jsonl"
    with beam.Pipeline(options=_streaming_options()) as p:
        _ = (
            p
            | stream
            | MonitorWindows(_schema(), _baseline(), WINDOW, timestamp_column="ts", output_dir=str(out))
            | _collect(log)
        )

    results = _results(log)
    assert [r["num_examples"] for r in results] == [ROWS] * 4
    starts = [r["window_start"] for r in results]
    assert starts == [
        Timestamp(T0 + WINDOW * k).to_utc_datetime().strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(4)
    ]
    drift = [_drift_types(r) for r in results]
    assert drift[0] == set() and drift[1] == set() and drift[3] == set()
    assert drift[2] == {("x", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"), ("c", "COMPARATOR_L_INFTY_HIGH")}
    assert [r["errors"] for r in results] == [False, False, True, False]
    # the timestamp column is not in the schema: it was removed, not reported as new
    assert all(("ts", "SCHEMA_NEW_COLUMN") not in map(tuple, r["anomalies"]) for r in results)

    folders = sorted(d.name for d in out.iterdir())
    assert len(folders) == 4 and all(f.startswith("window-") for f in folders)
    third = out / folders[2]
    assert {p.name for p in third.iterdir()} == {"FeatureStats.pb", "SchemaDiff.pb", "report.txt", "result.json"}
    assert str(third) == results[2]["output"]
    anomalies = read_anomalies(str(third / "SchemaDiff.pb"))
    assert set(anomalies.anomaly_info) == {"x", "c"}
    assert read_statistics(str(third / "FeatureStats.pb")).datasets[0].num_examples == ROWS
    assert "COMPARATOR_L_INFTY_HIGH" in (third / "report.txt").read_text()
    assert "No anomalies." in (out / folders[0] / "report.txt").read_text()


def test_arrival_time_and_metrics_per_window(tmp_path, caplog):
    from conveyor.components.evaluation import make_settings
    from conveyor.components.monitor import MonitorWindows

    rng = np.random.default_rng(3)
    schema = _schema()  # without label and prediction: they stay out of the statistics
    stream = TestStream().advance_watermark_to(0)
    for k in range(2):
        x, c, _ = _window_rows(k, rng, rows=100)
        label = [i % 2 for i in range(100)]
        # window 0: perfect predictions; window 1: inverted
        pred = [float(v if k == 0 else 1 - v) for v in label]
        stream = stream.add_elements([window.TimestampedValue(_batch(x, c, label=label, pred=pred), 10 * k + 1)])
        stream = stream.advance_watermark_to(10 * (k + 1))
    stream = stream.advance_watermark_to_infinity()

    log = tmp_path / "results.jsonl"
    settings = make_settings("label", "pred", metrics=["BinaryAccuracy"])
    with caplog.at_level("INFO", logger="conveyor.components.monitor.transform"):
        with beam.Pipeline(options=_streaming_options()) as p:
            _ = p | stream | MonitorWindows(schema, None, 10, eval_settings=settings) | _collect(log)
    results = _results(log)
    assert [r["num_examples"] for r in results] == [100, 100]
    assert [r["window_start"] for r in results] == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:10Z"]
    assert [r["metrics"]["binary_accuracy"] for r in results] == [1.0, 0.0]
    assert all(r["anomalies"] == [] and r["output"] is None for r in results)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("window ")]
    assert sorted(lines)[0].startswith("window 1970-01-01T00:00:00Z .. 1970-01-01T00:00:10Z: 100 examples; "
                                       "no anomalies")


def test_event_micros_parses_numbers_text_and_lists():
    from conveyor.components.monitor.transform import event_micros

    ints = to_column(pa.array([1, None, 3]), pa.large_list(pa.int64()))
    assert event_micros(ints).tolist() == [1_000_000, -1, 3_000_000]
    text = pa.array([b"1.5", b"2024-01-01T00:00:00Z", None, b"garbage", b"2024-01-01T01:00:00+01:00"],
                    type=pa.large_binary())
    got = event_micros(to_column(text, pa.large_list(pa.large_binary())))
    assert got.tolist() == [1_500_000, 1_704_067_200_000_000, -1, -1, 1_704_067_200_000_000]
    assert event_micros(pa.array([2.25, float("nan")])).tolist() == [2_250_000, -1]


def _write_csv(path, x, c, ts):
    lines = ["ts,x,c,extra"] + [f"{t},{v},{s.decode()},1" for v, s, t in zip(x, c, ts)]
    path.write_text("\n".join(lines) + "\n")


def test_cli_watches_files_until_stop_after(tmp_path, capsys):
    from google.protobuf import text_format

    from conveyor.components.validation.files import read_anomalies
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(5)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for k in range(3):  # window 2 drifts; each file holds one window
        _write_csv(incoming / f"part-{k}.csv", *_window_rows(k, rng, rows=200))
    (incoming / "notes.txt.skip").write_text("not matched")
    schema_path = tmp_path / "schema.pbtxt"
    schema_path.write_text(text_format.MessageToString(_schema()))
    baseline_path = tmp_path / "FeatureStats.pb"
    baseline_path.write_bytes(_baseline().SerializeToString())
    out = tmp_path / "out"

    rc = main([
        "monitor", "--input", str(incoming / "*.csv"), "--schema", str(schema_path),
        "--baseline-statistics", str(baseline_path), "--output", str(out),
        "--window-seconds", str(WINDOW), "--timestamp-column", "ts",
        "--poll-interval", "1", "--stop-after", "2",
    ])
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 1, printed  # the drifting window has ERROR anomalies
    logged = sorted(line.split(" ", 2)[2] for line in captured.err.splitlines() if " window " in line)
    assert len(logged) == 3
    assert logged[0].startswith("INFO window 2023-11-14T22:14:00Z .. 2023-11-14T22:15:00Z: 200 examples; "
                                "no anomalies")
    assert "ERROR anomalies: c:COMPARATOR_L_INFTY_HIGH, x:COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" in logged[2]
    assert "3 window(s)" in printed and "1 with ERROR anomalies" in printed
    folders = sorted(d.name for d in out.iterdir())
    assert len(folders) == 3
    results = [json.loads((out / f / "result.json").read_text()) for f in folders]
    assert [r["num_examples"] for r in results] == [200, 200, 200]
    assert [bool(_drift_types(r)) for r in results] == [False, False, True]
    assert set(read_anomalies(str(out / folders[2] / "SchemaDiff.pb")).anomaly_info) == {"x", "c"}


def test_cli_usage_errors(tmp_path):
    from conveyor.orchestration.cli import main

    schema = tmp_path / "schema.pbtxt"
    schema.write_text(SCHEMA_TEXT)
    base = ["monitor", "--schema", str(schema), "--output", str(tmp_path / "o")]
    assert main(base) == 2  # no source
    assert main(base + ["--input", "x*.csv", "--pubsub-subscription", "projects/p/subscriptions/s"]) == 2
    assert main(base + ["--input", "x*.csv", "--label-key", "y"]) == 2
    assert main(base + ["--input", "x*.csv", "--window-seconds", "0"]) == 2


def test_example_decoder_csv_lines_and_tf_examples():
    """The decoding behind ReadPubSubExamples (Pub/Sub itself is not available here)."""
    from tensorflow.core.example import example_pb2

    from conveyor.components.monitor import ExampleDecoder

    schema = make_schema({"x": "FLOAT", "c": "BYTES", "ts": "BYTES"})
    decoder = ExampleDecoder(schema)
    [(batch, rejected)] = list(decoder.csv_lines(b"1.5,a,100\nnot-a-number,b,101\n,c,102\n", "msg"))
    assert batch.column(0).to_pylist() == [[1.5], None]
    assert batch.column(2).to_pylist() == [[b"100"], [b"102"]]
    assert [r.row for r in rejected] == [3]

    def example(x, ts):
        ex = example_pb2.Example()
        ex.features.feature["x"].float_list.value.append(x)
        ex.features.feature["ts"].int64_list.value.append(ts)
        return ex.SerializeToString()

    batch, rejected = decoder.tf_examples([example(2.0, 7), b"\xff\xfe garbage", example(3.0, 8)], "msg")
    assert batch.schema == schema
    assert batch.column(0).to_pylist() == [[2.0], [3.0]]
    assert batch.column(1).to_pylist() == [None, None]
    assert batch.column(2).to_pylist() == [[b"7"], [b"8"]]
    assert [r.row for r in rejected] == [2]
