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


def _monitor(stream, log, *args, **kwargs) -> list[dict]:
    """Runs ``stream | MonitorWindows(*args, **kwargs)`` streaming; its results, by window start."""
    from conveyor.components.monitor import MonitorWindows

    with beam.Pipeline(options=_streaming_options()) as p:
        _ = p | stream | MonitorWindows(*args, **kwargs) | _collect(log)
    return _results(log)


def _drift_types(result):
    return {(f, t) for f, t in result["anomalies"] if t.startswith("COMPARATOR_")}


def test_drift_in_third_window_with_timestamp_column(tmp_path):
    from conveyor.beam_utils.proto_io import read_anomalies, read_statistics

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
        stream = stream.add_elements(
            [_batch(x[:half], c[:half], ts[:half]), _batch(x[half:], c[half:], ts[half:])]
        )
        stream = stream.advance_watermark_to(T0 + WINDOW * (k + 1))
    stream = stream.advance_watermark_to_infinity()

    out = tmp_path / "out"
    log = tmp_path / "results.jsonl"
    results = _monitor(
        stream, log, _schema(), _baseline(), WINDOW, timestamp_column="ts", output_dir=str(out)
    )
    assert [r["num_examples"] for r in results] == [ROWS] * 4
    starts = [r["window_start"] for r in results]
    assert starts == [
        Timestamp(T0 + WINDOW * k).to_utc_datetime().strftime("%Y-%m-%dT%H:%M:%SZ")
        for k in range(4)
    ]
    drift = [_drift_types(r) for r in results]
    assert drift[0] == set() and drift[1] == set() and drift[3] == set()
    assert drift[2] == {
        ("x", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"),
        ("c", "COMPARATOR_L_INFTY_HIGH"),
    }
    assert [r["errors"] for r in results] == [False, False, True, False]
    # the timestamp column is not in the schema: it was removed, not reported as new
    assert all(("ts", "SCHEMA_NEW_COLUMN") not in map(tuple, r["anomalies"]) for r in results)

    folders = sorted(d.name for d in out.iterdir())
    assert len(folders) == 4 and all(f.startswith("window-") for f in folders)
    third = out / folders[2]
    assert {p.name for p in third.iterdir()} == {
        "FeatureStats.pb",
        "SchemaDiff.pb",
        "report.txt",
        "result.json",
    }
    assert str(third) == results[2]["output"]
    anomalies = read_anomalies(str(third / "SchemaDiff.pb"))
    assert set(anomalies.anomaly_info) == {"x", "c"}
    assert read_statistics(str(third / "FeatureStats.pb")).datasets[0].num_examples == ROWS
    assert "COMPARATOR_L_INFTY_HIGH" in (third / "report.txt").read_text()
    assert "No anomalies." in (out / folders[0] / "report.txt").read_text()


def test_arrival_time_and_metrics_per_window(tmp_path, caplog):
    from conveyor.components.evaluation import make_settings

    rng = np.random.default_rng(3)
    schema = _schema()  # without label and prediction: they stay out of the statistics
    stream = TestStream().advance_watermark_to(0)
    for k in range(2):
        x, c, _ = _window_rows(k, rng, rows=100)
        label = [i % 2 for i in range(100)]
        # window 0: perfect predictions; window 1: inverted
        pred = [float(v if k == 0 else 1 - v) for v in label]
        stream = stream.add_elements(
            [window.TimestampedValue(_batch(x, c, label=label, pred=pred), 10 * k + 1)]
        )
        stream = stream.advance_watermark_to(10 * (k + 1))
    stream = stream.advance_watermark_to_infinity()

    log = tmp_path / "results.jsonl"
    settings = make_settings("label", "pred", metrics=["BinaryAccuracy"])
    with caplog.at_level("INFO", logger="conveyor.components.monitor.transform"):
        results = _monitor(stream, log, schema, None, 10, eval_settings=settings)
    assert [r["num_examples"] for r in results] == [100, 100]
    assert [r["window_start"] for r in results] == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:10Z"]
    assert [r["metrics"]["binary_accuracy"] for r in results] == [1.0, 0.0]
    assert all(r["anomalies"] == [] and r["output"] is None for r in results)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("window ")]
    assert sorted(lines)[0].startswith(
        "window 1970-01-01T00:00:00Z .. 1970-01-01T00:00:10Z: 100 examples; no anomalies"
    )


def test_event_micros_parses_numbers_text_and_lists():
    from conveyor.components.monitor.transform import event_micros

    ints = to_column(pa.array([1, None, 3]), pa.large_list(pa.int64()))
    assert event_micros(ints).tolist() == [1_000_000, -1, 3_000_000]
    text = pa.array(
        [b"1.5", b"2024-01-01T00:00:00Z", None, b"garbage", b"2024-01-01T01:00:00+01:00"],
        type=pa.large_binary(),
    )
    got = event_micros(to_column(text, pa.large_list(pa.large_binary())))
    assert got.tolist() == [1_500_000, 1_704_067_200_000_000, -1, -1, 1_704_067_200_000_000]
    assert event_micros(pa.array([2.25, float("nan")])).tolist() == [2_250_000, -1]


def _window_folders(out):
    return sorted(d.name for d in out.iterdir() if d.name.startswith("window-"))


def _write_csv(path, x, c, ts):
    lines = ["ts,x,c,extra"] + [f"{t},{v},{s.decode()},1" for v, s, t in zip(x, c, ts)]
    path.write_text("\n".join(lines) + "\n")


def test_cli_watches_files_until_stop_after(tmp_path, capsys):
    from conveyor.beam_utils.proto_io import read_anomalies
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(5)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for k in range(3):  # window 2 drifts; each file holds one window
        _write_csv(incoming / f"part-{k}.csv", *_window_rows(k, rng, rows=200))
    (incoming / "notes.txt.skip").write_text("not matched")
    baseline_path = tmp_path / "FeatureStats.pb"
    baseline_path.write_bytes(_baseline().SerializeToString())
    out = tmp_path / "out"

    extra = ["--baseline-statistics", str(baseline_path), "--poll-interval", "1"]
    rc = main(_watch_args(incoming, tmp_path, out, *extra, "--stop-after", "2"))
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 1, printed  # the drifting window has ERROR anomalies
    logged = sorted(
        line.split(" ", 2)[2] for line in captured.err.splitlines() if " window " in line
    )
    assert len(logged) == 3
    assert logged[0].startswith(
        "INFO window 2023-11-14T22:14:00Z .. 2023-11-14T22:15:00Z: 200 examples; no anomalies"
    )
    assert (
        "ERROR anomalies: c:COMPARATOR_L_INFTY_HIGH, x:COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"
        in logged[2]
    )
    assert "3 window(s)" in printed and "1 with ERROR anomalies" in printed
    folders = _window_folders(out)
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
    assert (
        main(base + ["--input", "x*.csv", "--pubsub-subscription", "projects/p/subscriptions/s"])
        == 2
    )
    assert main(base + ["--input", "x*.csv", "--label-key", "y"]) == 2
    assert main(base + ["--input", "x*.csv", "--window-seconds", "0"]) == 2
    assert main(base + ["--input", "x*.csv", "--prediction-key", "p"]) == 2  # no label
    assert main(base + ["--input", "x*.csv", "--allowed-lateness", "-1"]) == 2
    assert (
        main(base + ["--pubsub-subscription", "projects/p/subscriptions/s", "--format", "parquet"])
        == 2
    )


def _watch_args(incoming, tmp_path, out, *extra, pattern="*.csv"):
    return [
        "monitor",
        "--input",
        str(incoming / pattern),
        "--schema",
        str(_schema_file(tmp_path)),
        "--output",
        str(out),
        "--window-seconds",
        str(WINDOW),
        "--timestamp-column",
        "ts",
        *extra,
    ]


#: Long enough that the old watch (Beam's MatchContinuously on the in-memory
#: FnApiRunner, which resumed its deferred look at once) ran over 1,000 empty
#: bundles, whose nested metrics then overflowed the stack in result.metrics():
#: measured on this 2-core machine, it failed from --stop-after 5 when idle
#: (~250 bundles/s) and from 8 under a load of 5 (~150 bundles/s).
LONG_WATCH = 8


def test_cli_watch_of_several_seconds_exits_0_without_spinning(tmp_path, capsys):
    import threading
    import time

    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(23)
    incoming, staging = tmp_path / "incoming", tmp_path / "staging"
    incoming.mkdir()
    staging.mkdir()
    _write_csv(incoming / "part-0.csv", *_window_rows(0, rng, rows=120))
    _write_csv(staging / "part-1.csv", *_window_rows(1, rng, rows=80))
    # a file moved in while the watch runs is read too
    mover = threading.Timer(2.0, lambda: (staging / "part-1.csv").rename(incoming / "part-1.csv"))
    out = tmp_path / "out"
    wall, cpu = time.monotonic(), time.process_time()
    mover.start()
    try:
        rc = main(
            _watch_args(
                incoming, tmp_path, out, "--poll-interval", "1", "--stop-after", str(LONG_WATCH)
            )
        )
    finally:
        mover.cancel()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    captured = capsys.readouterr()
    assert rc == 0, captured
    # The watch waits between looks: the old one spun through empty bundles,
    # a core busy for the whole run (CPU time near the wall time, whatever the load).
    assert cpu < LONG_WATCH / 2, (cpu, wall)
    assert wall >= LONG_WATCH
    assert "2 window(s) written to" in captured.out and "0 with ERROR anomalies" in captured.out
    results = [json.loads((out / f / "result.json").read_text()) for f in _window_folders(out)]
    assert [r["num_examples"] for r in results] == [120, 80]
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["windows"],
        summary["files_read"],
        summary["rows_read"],
        summary["files_unreadable"],
    ) == (2, 2, 200, 0)


#: Binary data: a CR inside its first "line" (on which Python's csv module raises
#: an error that used to stop the whole stream) and NUL bytes.
_GARBAGE = bytes(range(254, -1, -1)) * 16


def test_cli_skips_an_unreadable_file_and_counts_it(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(29)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "a.csv").write_bytes(_GARBAGE)
    _write_csv(incoming / "b.csv", *_window_rows(0, rng, rows=50))
    out = tmp_path / "out"
    rc = main(_watch_args(incoming, tmp_path, out, "--poll-interval", "1", "--stop-after", "1"))
    captured = capsys.readouterr()
    assert rc == 0, captured
    [result] = [json.loads((out / f / "result.json").read_text()) for f in _window_folders(out)]
    assert result["num_examples"] == 50  # b.csv's rows
    [line] = [x for x in captured.err.splitlines() if "skipped unreadable file" in x]
    assert f"{incoming / 'a.csv'}: binary data (it holds NUL bytes), not CSV text" in line
    assert "unreadable files skipped: 1" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files_unreadable"] == 1 and summary["files_read"] == 1
    assert summary["unreadable_files"] == [
        {
            "file": str(incoming / "a.csv"),
            "reason": "binary data (it holds NUL bytes), not CSV text",
        }
    ]


def test_cli_skips_each_kind_of_unreadable_file_with_its_reason(tmp_path, capsys):
    import gzip

    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(31)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_csv(incoming / "good.csv", *_window_rows(0, rng, rows=30))
    _write_csv(tmp_path / "g.csv", *_window_rows(0, rng, rows=20))
    (incoming / "good.csv.gz").write_bytes(gzip.compress((tmp_path / "g.csv").read_bytes()))
    # UTF-16 with a byte order mark is read as its UTF-8 twin (as the batch readers read it);
    # without one, its NUL bytes make it binary data.
    (incoming / "utf16.csv").write_bytes((tmp_path / "g.csv").read_text().encode("utf-16"))
    (incoming / "utf16-no-bom.csv").write_bytes(
        (tmp_path / "g.csv").read_text().encode("utf-16-le")
    )
    _write_csv(tmp_path / "big.csv", *_window_rows(0, rng, rows=3000))
    packed = gzip.compress((tmp_path / "big.csv").read_bytes())
    (incoming / "truncated.csv.gz").write_bytes(packed[: len(packed) // 2])
    (incoming / "header.csv").write_text("foo,bar\n1,2\n")
    (incoming / "empty.csv").write_bytes(b"")
    (incoming / "blank.csv").write_text("\n\n")
    (incoming / "garbage.tfrecord").write_bytes(_GARBAGE)
    out = tmp_path / "out"
    rc = main(
        _watch_args(
            incoming, tmp_path, out, "--poll-interval", "1", "--stop-after", "1", pattern="*"
        )
    )
    captured = capsys.readouterr()
    assert rc == 0, captured
    [result] = [json.loads((out / f / "result.json").read_text()) for f in _window_folders(out)]
    assert result["num_examples"] == 70  # good.csv, good.csv.gz and utf16.csv
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["files_read"], summary["files_unreadable"]) == (3, 6)
    reasons = {f["file"].rsplit("/", 1)[1]: f["reason"] for f in summary["unreadable_files"]}
    assert "utf16.csv" not in reasons
    assert reasons["utf16-no-bom.csv"] == "binary data (it holds NUL bytes), not CSV text"
    assert reasons["truncated.csv.gz"].startswith("damaged or truncated compressed file")
    assert (
        reasons["header.csv"] == "header lacks column(s) ['x', 'c', 'ts']; header is ['foo', 'bar']"
    )
    assert reasons["empty.csv"] == "empty file (0 bytes)"
    assert reasons["blank.csv"] == "no header row (only blank space)"
    assert reasons["garbage.tfrecord"].startswith("corrupt TFRecord")
    logged = [x for x in captured.err.splitlines() if "skipped unreadable file" in x]
    assert len(logged) == 6 and all(any(name in x for x in logged) for name in reasons)
    assert "unreadable files skipped: 6" in captured.out

    # Parquet: garbage, a truncated file and an empty one beside a good one
    pq_in = tmp_path / "pq"
    pq_in.mkdir()
    _write_parquet(pq_in / "good.pq", *_window_rows(0, rng, rows=40))
    data = (pq_in / "good.pq").read_bytes()
    (pq_in / "truncated.pq").write_bytes(data[: len(data) // 2])
    (pq_in / "garbage.pq").write_bytes(_GARBAGE)
    (pq_in / "empty.pq").write_bytes(b"")
    pq_out = tmp_path / "pq_out"
    rc = main(
        _watch_args(
            pq_in,
            tmp_path,
            pq_out,
            "--format",
            "parquet",
            "--poll-interval",
            "1",
            "--stop-after",
            "1",
            pattern="*",
        )
    )
    captured = capsys.readouterr()
    assert rc == 0, captured
    [result] = [
        json.loads((pq_out / f / "result.json").read_text()) for f in _window_folders(pq_out)
    ]
    assert result["num_examples"] == 40
    summary = json.loads((pq_out / "summary.json").read_text())
    reasons = {f["file"].rsplit("/", 1)[1]: f["reason"] for f in summary["unreadable_files"]}
    assert summary["files_read"] == 1 and set(reasons) == {"truncated.pq", "garbage.pq", "empty.pq"}
    assert reasons["garbage.pq"].startswith("not a Parquet file")
    assert reasons["truncated.pq"].startswith("not a Parquet file")
    assert reasons["empty.pq"] == "empty file (0 bytes)"


def _row_texts(batch):
    """Each row of a batch as JSON text (bytes decoded), to compare rows across readers."""
    return [
        json.dumps(
            {
                k: [v.decode() if isinstance(v, bytes) else v for v in vs]
                if vs is not None
                else None
                for k, vs in row.items()
            },
            sort_keys=True,
        )
        for row in batch.to_pylist()
    ]


def test_watch_reads_a_utf16_or_utf32_csv_as_its_utf8_twin(tmp_path):
    """A CSV file with a UTF-16 or UTF-32 byte order mark gives the monitor the rows of its
    UTF-8 twin, as the batch reader (``conveyor statistics``) reads them."""
    import codecs
    import collections
    import gzip

    from conveyor.beam_utils.read import ReadExamples
    from conveyor.components.monitor import WatchFiles

    rng = np.random.default_rng(47)
    twin = tmp_path / "twin.csv"
    _write_csv(twin, *_window_rows(0, rng, rows=40))
    text = twin.read_text()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    encoded = {
        "utf8.csv": text.encode("utf-8"),
        "utf16le.csv": text.encode("utf-16"),  # with its byte order mark (little-endian here)
        "utf16be.csv": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "utf32.csv": text.encode("utf-32"),
        "utf16.csv.gz": gzip.compress(text.encode("utf-16")),
    }
    for name, data in encoded.items():
        (incoming / name).write_bytes(data)
    columns = make_schema({"x": "FLOAT", "c": "BYTES", "ts": "INT"})

    rows_log, reports_log, expected_log = (
        tmp_path / f"{n}.jsonl" for n in ("rows", "reports", "expected")
    )
    with beam.Pipeline(options=_streaming_options()) as p:
        batches, reports = p | WatchFiles(
            str(incoming / "*"), columns, interval=1, stop_after=0, reports=True
        )
        _ = batches | beam.FlatMap(_row_texts) | _collect(rows_log)
        _ = reports | "Reports" >> _collect(reports_log)
    with beam.Pipeline() as p:
        read = p | ReadExamples(str(twin), schema=columns)
        _ = read.examples | beam.FlatMap(_row_texts) | _collect(expected_log)

    got = {r["file"].rsplit("/", 1)[1]: r for r in map(json.loads, open(reports_log))}
    assert got == {
        name: {"file": str(incoming / name), "rows": 40, "rejected": 0, "error": None}
        for name in encoded
    }
    expected = [json.loads(line) for line in open(expected_log)]
    assert len(expected) == 40
    rows = collections.Counter(json.loads(line) for line in open(rows_log))
    assert rows == {row: len(encoded) for row in expected}  # every file gave the twin's rows


def test_cli_input_errors_exit_2_with_a_message(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    missing = tmp_path / "missing"
    assert main(_watch_args(missing, tmp_path, tmp_path / "o", "--stop-after", "0")) == 2
    assert f"the folder {missing} does not exist" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_watch_args(empty, tmp_path, tmp_path / "o", "--stop-after", "0")) == 2
    assert (
        f"--input {empty / '*.csv'}: no file matched in the 0 s watched" in capsys.readouterr().err
    )

    (empty / "bad.csv").write_bytes(_GARBAGE)
    assert main(_watch_args(empty, tmp_path, tmp_path / "o", "--stop-after", "0")) == 2
    err = capsys.readouterr().err
    assert "none of the 1 file(s) matched could be read" in err and "bad.csv: binary data" in err

    with pytest.raises(SystemExit) as e:
        main(_watch_args(empty, tmp_path, tmp_path / "o", "--stop-after", "soon"))
    assert e.value.code == 2
    assert "argument --stop-after: invalid float value: 'soon'" in capsys.readouterr().err
    assert main(_watch_args(empty, tmp_path, tmp_path / "o", "--poll-interval", "0")) == 2
    assert "--poll-interval must be positive" in capsys.readouterr().err


# --------------------------------------------------------------- run_monitor and the type hints


def test_run_monitor_runs_the_watch_and_returns_the_summary_it_wrote(tmp_path):
    from conveyor.beam_utils.errors import UsageError
    from conveyor.components.monitor import WatchFiles, run_monitor

    rng = np.random.default_rng(43)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_csv(incoming / "a.csv", *_window_rows(0, rng, rows=200))
    _write_csv(incoming / "b.csv", *_window_rows(DRIFT_WINDOW, rng, rows=150))
    columns = make_schema({"x": "FLOAT", "c": "BYTES", "ts": "INT"})
    out = tmp_path / "out"
    out.mkdir()
    source = WatchFiles(str(incoming / "*.csv"), columns, interval=1, stop_after=0, reports=True)
    summary = run_monitor(
        source,
        str(out),
        _schema(),
        baseline_statistics=_baseline(),
        window_seconds=WINDOW,
        timestamp_column="ts",
    )
    assert (summary["windows"], summary["files_read"], summary["rows_read"]) == (2, 2, 350)
    assert summary["windows_with_errors"] == 1  # the drifting window, against the baseline
    assert summary == json.loads((out / "summary.json").read_text())
    results = [json.loads((out / f / "result.json").read_text()) for f in _window_folders(out)]
    assert [(r["num_examples"], bool(_drift_types(r))) for r in results] == [
        (200, False),
        (150, True),
    ]

    # MonitorWindows' refusals are usage errors, raised before the pipeline is built
    with pytest.raises(UsageError, match="window_seconds must be positive"):
        run_monitor(source, str(out), _schema(), window_seconds=0)
    with pytest.raises(ValueError, match="reports=True"):
        run_monitor(WatchFiles(str(incoming / "*.csv"), columns, stop_after=0), str(out), _schema())


def test_sources_monitor_and_summary_carry_their_beam_type_hints(tmp_path):
    from typing import Any

    from apache_beam.typehints import Dict
    from apache_beam.typehints.decorators import TypeCheckError

    from conveyor.components.monitor import (
        MonitorWindows,
        ReadPubSubExamples,
        SummarizeRun,
        WatchFiles,
    )

    columns = make_schema({"x": "FLOAT", "c": "BYTES"})
    pattern = str(tmp_path / "*.csv")
    p = beam.Pipeline(options=_streaming_options())
    batches, reports = p | "Watch" >> WatchFiles(pattern, columns, stop_after=0, reports=True)
    assert batches.element_type is pa.RecordBatch and reports.element_type == Dict[str, Any]
    assert (
        p | "WatchAlone" >> WatchFiles(pattern, columns, stop_after=0)
    ).element_type is pa.RecordBatch
    messages, rejected = p | "PubSub" >> ReadPubSubExamples(
        "projects/my-project/subscriptions/monitor-in", columns, reports=True
    )
    assert messages.element_type is pa.RecordBatch and rejected.element_type == Dict[str, Any]
    results = batches | MonitorWindows(_schema(), None, WINDOW)
    assert results.element_type == Dict[str, Any]
    assert ((results, reports) | SummarizeRun()).element_type == Dict[str, Any]

    ints = p | "Ints" >> beam.Create([1, 2])
    with pytest.raises(
        TypeCheckError, match="expected <class 'pyarrow.lib.RecordBatch'>, got <class 'int'>"
    ):
        ints | "MonitorInts" >> MonitorWindows(_schema(), None, WINDOW)
    with pytest.raises(TypeCheckError, match="input position 1"):
        (results, ints) | "SummarizeInts" >> SummarizeRun()


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

    batch, rejected = decoder.tf_examples(
        [example(2.0, 7), b"\xff\xfe garbage", example(3.0, 8)], "msg"
    )
    assert batch.schema == schema
    assert batch.column(0).to_pylist() == [[2.0], [3.0]]
    assert batch.column(1).to_pylist() == [None, None]
    assert batch.column(2).to_pylist() == [[b"7"], [b"8"]]
    assert [r.row for r in rejected] == [2]


# --------------------------------------------------------------- model per window


@pytest.fixture(scope="module")
def sigmoid_model(tmp_path_factory):
    """A Trainer output dir (``<dir>/Format-Serving``) holding a SavedModel: ``p = sigmoid(x)``
    from a ``[None, 1]`` float input ``x`` (a row without ``x`` fails its batch)."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x):
            return {"p": tf.sigmoid(x)}

    model = Model()
    trainer_out = tmp_path_factory.mktemp("trainer") / "model"
    tf.saved_model.save(
        model, str(trainer_out / "Format-Serving"), signatures={"serving_default": model.serve}
    )
    return trainer_out


def _labelled(x, c, ts, label):
    schema = make_schema({"x": "FLOAT", "c": "BYTES", "ts": "INT", "label": "INT"})
    arrays = [
        to_column(pa.array(v), schema.field(k).type)
        for k, v in zip(schema.names, (x, c, ts, label))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _ten_rows(k, rng, *, unlabelled=False, missing_x=False):
    """Ten rows of window ``k`` whose label is ``x > 0`` (None when unlabelled)."""
    x = rng.normal(0.0, 1.0, 10).astype(np.float32).tolist()
    label = [None] * 10 if unlabelled else [int(v > 0) for v in x]
    if missing_x:
        x[3] = None
    c = [b"a"] * 10
    ts = (T0 + WINDOW * k + rng.integers(0, WINDOW, 10)).tolist()
    return _labelled(x, c, ts, label)


def test_model_per_window_metrics_unlabelled_and_dead_letters(tmp_path, sigmoid_model):
    from conveyor.components.evaluation import make_settings
    from conveyor.components.inference import BulkInference

    rng = np.random.default_rng(11)
    # window 0: 30 labelled rows and 10 without a label; window 1: 30 labelled
    # rows and a batch of 10 with a row the model rejects (no x): 10 dead letters.
    w0 = [_ten_rows(0, rng) for _ in range(3)] + [_ten_rows(0, rng, unlabelled=True)]
    w1 = [_ten_rows(1, rng) for _ in range(3)] + [_ten_rows(1, rng, missing_x=True)]
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(w0)
        .advance_watermark_to(T0 + WINDOW)
        .add_elements(w1)
        .advance_watermark_to_infinity()
    )
    input_schema = w0[0].schema
    # batches of exactly 10 rows, so a bad row takes down its own batch only
    model = BulkInference(
        str(sigmoid_model / "Format-Serving"),
        input_schema.remove(2),
        min_batch_size=10,
        max_batch_size=10,
    )
    settings = make_settings("label", metrics=["BinaryAccuracy", "ExampleCount"])
    out, log = tmp_path / "out", tmp_path / "results.jsonl"
    r0, r1 = _monitor(
        stream,
        log,
        _schema(),
        None,
        WINDOW,
        timestamp_column="ts",
        output_dir=str(out),
        eval_settings=settings,
        model=model,
    )
    assert [r["num_examples"] for r in (r0, r1)] == [40, 40]  # dead letters are in the statistics
    assert r0["metrics"]["binary_accuracy"] == 1.0 and r0["metrics"]["example_count"] == 30
    assert (r0["rows_without_label"], r0["examples_predicted"], r0["examples_dead_lettered"]) == (
        10,
        40,
        0,
    )
    assert r1["metrics"]["binary_accuracy"] == 1.0 and r1["metrics"]["example_count"] == 30
    assert (r1["rows_without_label"], r1["examples_predicted"], r1["examples_dead_lettered"]) == (
        0,
        30,
        10,
    )
    assert len(r1["dead_letter_errors"]) == 1 and "input 'x'" in r1["dead_letter_errors"][0]
    assert [(r["firing"], r["pane_index"]) for r in (r0, r1)] == [("on_time", 0), ("on_time", 0)]
    # neither the label nor the prediction is profiled (they are not in the schema)
    assert all(not any(t == "SCHEMA_NEW_COLUMN" for _, t in r["anomalies"]) for r in (r0, r1))
    metrics = json.loads((out / (r1["output"].rsplit("/", 1)[1]) / "metrics.json").read_text())
    assert metrics["metrics"][0]["metrics"]["binary_accuracy"] == 1.0


def test_model_argument_is_checked(sigmoid_model):
    from conveyor.beam_utils.errors import InputError
    from conveyor.components.evaluation import make_settings
    from conveyor.components.monitor import MonitorWindows

    # a Trainer output dir is resolved to its Format-Serving SavedModel
    monitor = MonitorWindows(
        _schema(), None, WINDOW, model=str(sigmoid_model), eval_settings=make_settings("label")
    )
    assert monitor.inference.signature.model_path.endswith("Format-Serving")
    assert (
        "label" in monitor.eval_only_columns
        and monitor.prediction_columns[0] in monitor.eval_only_columns
    )
    with pytest.raises(InputError, match="no output 'q'"):
        MonitorWindows(
            _schema(),
            None,
            WINDOW,
            model=str(sigmoid_model),
            eval_settings=make_settings("label", "q"),
        )
    with pytest.raises(InputError, match="does not exist"):
        MonitorWindows(_schema(), None, WINDOW, model=str(sigmoid_model / "nope"))
    with pytest.raises(TypeError):
        MonitorWindows(_schema(), None, WINDOW, model=42)


def _write_labelled_csv(path, rows):
    x, c, ts, label = (rows.column(i).to_pylist() for i in range(4))
    lines = ["ts,x,c,label"] + [
        f"{t[0]},{'' if v is None else v[0]},{s[0].decode()},{'' if y is None else y[0]}"
        for v, s, t, y in zip(x, c, ts, label)
    ]
    path.write_text("\n".join(lines) + "\n")


def _schema_file(tmp_path):
    from google.protobuf import text_format

    path = tmp_path / "schema.pbtxt"
    path.write_text(text_format.MessageToString(_schema()))
    return path


def test_cli_model_on_watched_folder(tmp_path, sigmoid_model, capsys):
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(13)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    parts = [_ten_rows(0, rng) for _ in range(4)] + [_ten_rows(0, rng, unlabelled=True)]
    table = pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
    _write_labelled_csv(incoming / "part-0.csv", table)
    out = tmp_path / "out"
    extra = ["--label-key", "label", "--model", str(sigmoid_model)]
    rc = main(
        _watch_args(incoming, tmp_path, out, *extra, "--poll-interval", "1", "--stop-after", "2")
    )
    captured = capsys.readouterr()
    assert rc == 0, captured
    [folder] = [out / f for f in _window_folders(out)]
    result = json.loads((folder / "result.json").read_text())
    assert result["num_examples"] == 50 and result["rows_without_label"] == 10
    assert result["metrics"]["binary_accuracy"] == 1.0 and result["metrics"]["example_count"] == 40
    assert result["examples_predicted"] == 50 and result["examples_dead_lettered"] == 0
    assert (folder / "metrics.json").exists()
    assert "model: 50 examples predicted, 0 dead-lettered" in captured.out
    [line] = [x for x in captured.err.splitlines() if " window " in x]
    assert "10 rows without label; predicted 50; on-time firing, pane 0" in line


# --------------------------------------------------------------- allowed lateness


def test_allowed_lateness_refires_window_and_drops_later_data(tmp_path, caplog):
    rng = np.random.default_rng(17)

    def rows(n, k=0):
        x, c, ts = _window_rows(k, rng, rows=n)
        return _batch(x, c, ts)

    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements([rows(100)])
        .advance_watermark_to(T0 + WINDOW)  # past the window's end: on-time firing
        .add_elements([rows(20)])  # late, within the 30 s of lateness
        .advance_watermark_to(T0 + WINDOW + 31)  # past end + lateness: the window is closed
        .add_elements([rows(7)])  # dropped by Beam
        .add_elements([rows(50, k=1)])  # window 1, on time
        .advance_watermark_to_infinity()
    )
    out, log = tmp_path / "out", tmp_path / "results.jsonl"
    with caplog.at_level("INFO", logger="conveyor.components.monitor.transform"):
        results = _monitor(
            stream,
            log,
            _schema(),
            None,
            WINDOW,
            timestamp_column="ts",
            output_dir=str(out),
            allowed_lateness=30,
        )
    results.sort(key=lambda r: (r["window_start"], r["pane_index"]))
    got = [
        (r["window_start"][-9:], r["firing"], r["pane_index"], r["num_examples"]) for r in results
    ]
    assert got == [
        ("22:14:00Z", "on_time", 0, 100),
        ("22:14:00Z", "late", 1, 120),
        ("22:15:00Z", "on_time", 0, 50),
    ]
    # the window's files hold the latest firing's figures
    folder = out / results[1]["output"].rsplit("/", 1)[1]
    written = json.loads((folder / "result.json").read_text())
    assert (written["num_examples"], written["firing"], written["pane_index"]) == (120, "late", 1)
    from conveyor.beam_utils.proto_io import read_statistics

    assert read_statistics(str(folder / "FeatureStats.pb")).datasets[0].num_examples == 120
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("window ")]
    assert any(line.endswith("late firing, pane 1") and ": 120 examples" in line for line in lines)


# --------------------------------------------------------------- Parquet


def _write_parquet(path, x, c, ts):
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "ts": pa.array(ts, pa.int64()),
                "x": pa.array(x, pa.float64()),
                "c": pa.array([s.decode() for s in c]),
            }
        ),
        str(path),
    )


def test_cli_watches_parquet_files(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(19)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for k in range(2):
        _write_parquet(incoming / f"part-{k}.parquet", *_window_rows(k, rng, rows=150))
    (incoming / "broken.parquet").write_bytes(b"not parquet at all")
    out = tmp_path / "out"
    extra = ["--batch-size", "64", "--poll-interval", "1", "--stop-after", "2"]
    rc = main(_watch_args(incoming, tmp_path, out, *extra, pattern="*.parquet"))
    captured = capsys.readouterr()
    assert rc == 0, captured
    results = [json.loads((out / f / "result.json").read_text()) for f in _window_folders(out)]
    assert [r["num_examples"] for r in results] == [150, 150]
    assert all(r["anomalies"] == [] for r in results)
    assert "unreadable files skipped: 1" in captured.out
    assert "broken.parquet: not a Parquet file" in captured.err


def test_read_parquet_batches_names_file_rows_and_column(tmp_path):
    import pyarrow.parquet as pq

    from conveyor.beam_utils.errors import InputError
    from conveyor.beam_utils.parquet_io import read_parquet_batches

    schema = make_schema({"x": "FLOAT", "c": "BYTES"})
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"c": ["a", "b", None], "x": [1, 2, 3], "extra": [0, 0, 0]}), str(good))
    batches = list(read_parquet_batches(str(good), "good.parquet", schema, 2))
    assert [b.num_rows for b in batches] == [2, 1] and all(b.schema == schema for b in batches)
    assert batches[0].column(0).to_pylist() == [[1.0], [2.0]]
    assert batches[1].column(1).to_pylist() == [None]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"x": ["1", "2", "two"], "c": ["a", "b", "c"]}), str(bad))
    with pytest.raises(
        InputError, match=r"bad.parquet: rows 1-3: column 'x' \(string\) does not convert to FLOAT"
    ):
        list(read_parquet_batches(str(bad), "bad.parquet", schema, 10))
    with pytest.raises(InputError, match=r"good.parquet: lacks column\(s\) \['nope'\]"):
        list(
            read_parquet_batches(
                str(good), "good.parquet", make_schema({"x": "FLOAT", "nope": "BYTES"}), 10
            )
        )
    with pytest.raises(InputError, match="bad.txt: not a Parquet file"):
        (tmp_path / "bad.txt").write_bytes(b"nope")
        list(read_parquet_batches(str(tmp_path / "bad.txt"), "bad.txt", schema, 10))


def test_cli_rerun_replaces_the_previous_output(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(37)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_csv(incoming / "b.csv", *_window_rows(0, rng, rows=20))
    out = tmp_path / "out"
    out.mkdir()
    (out / "window-stale").mkdir()
    (out / "window-stale" / "result.json").write_text("{}")
    rc = main(_watch_args(incoming, tmp_path, out, "--poll-interval", "1", "--stop-after", "0"))
    assert rc == 0, capsys.readouterr()
    assert not (out / "window-stale").exists()
    assert [
        json.loads((out / f / "result.json").read_text())["num_examples"]
        for f in _window_folders(out)
    ] == [20]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_cli_output_that_is_a_file_exits_2_before_reading(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_csv(incoming / "b.csv", *_window_rows(0, np.random.default_rng(41), rows=5))
    out = tmp_path / "out"
    out.write_text("not a folder")
    rc = main(_watch_args(incoming, tmp_path, out, "--poll-interval", "1", "--stop-after", "0"))
    assert rc == 2
    assert str(out) in capsys.readouterr().err
    assert out.read_text() == "not a folder"
