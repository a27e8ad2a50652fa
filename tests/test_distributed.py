"""Every component runs unchanged outside the in-memory runner, and spreads its work.

Statistics, validation, transform, evaluation and inference each run once on
the in-memory DirectRunner and once on the PortableRunner with two EXTERNAL SDK
workers started by a worker pool (``worker_pool_main``, see ``conftest.py``),
through Conveyor's job service (Beam's Python job service, giving each job the
``--sdk_worker_parallelism`` workers it asks for; Beam's own starts one). The
results must be equal (floating means, z-scores and model predictions to float
precision: their last bits depend on how a runner groups batches). That a large
input is not funnelled through one worker is checked on both the portable
runner and the multi-processing DirectRunner with two workers: each worker
records its process id for every batch it processes.
"""

from __future__ import annotations

import glob
import json
import os
import textwrap
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import external_args
from google.protobuf import text_format
from pipeline_helpers import CollectBatches, CollectJson, load_json, load_table
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from conveyor.beam_utils import datasets
from conveyor.beam_utils.io import ReadExamples, read_examples_dir
from conveyor.beam_utils.options import pipeline_options
from conveyor.components.schema_gen import infer_schema
from conveyor.components.statistics import GenerateStatistics, StatsOptions, run_statistics
from conveyor.components.validation import ValidateExamples, ValidateStatistics

FLIGHTS_ROWS = 3000
BATCH = 500  # several batches per input, so merges and worker hand-offs happen
STATS_OPTIONS = StatsOptions(slice_by=["origin"])
MULTI_PROCESSING = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


# ------------------------------------------------------------------ shared inputs


@pytest.fixture(scope="module")
def ext(parallel_job_endpoint, worker_pool):
    # Two SDK workers from the pool per job (Beam's own job service would start one).
    return external_args(parallel_job_endpoint, worker_pool)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def flights():
    return datasets.flights_sample_csv(FLIGHTS_ROWS)


def _rows(table: pa.Table) -> list:
    """Rows as tuples of each column's values in column-name order, sorted (order-free comparison).

    Sorted by value (a missing value first), so a tiny change of the floats of
    every row by one monotone map, as a slightly different mean does to
    z-scores, keeps the order.
    """
    cols = sorted(table.column_names)
    data = [table.column(c).to_pylist() for c in cols]
    rows = [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in zip(*data)]
    return sorted(
        rows, key=lambda row: tuple((v is not None, v if v is not None else ()) for v in row)
    )


def _assert_same_rows(got: pa.Table, expected: pa.Table, rel: float = 1e-6) -> None:
    """The same rows; floats equal to ``rel`` (analyzers' float sums depend on merge order)."""
    assert sorted(got.column_names) == sorted(expected.column_names)
    a, b = _rows(got), _rows(expected)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(v, tuple) and v and isinstance(v[0], float):
                assert u == pytest.approx(v, rel=rel, abs=1e-9)
            else:
                assert u == v


# ------------------------------------------------------------------ statistics

#: Floating moments, folded batch by batch with Chan et al.'s update: the last
#: bits depend on how batches were grouped into partial results.
MOMENTS = ("mean", "std_dev")


def _pop_moments(message, out: list) -> None:
    for field, value in message.ListFields():
        if field.name in MOMENTS and field.type == field.TYPE_DOUBLE:
            out.append(value)
            message.ClearField(field.name)
        elif field.type == field.TYPE_MESSAGE:
            for item in value if field.label == field.LABEL_REPEATED else [value]:
                _pop_moments(item, out)


def assert_same_statistics(got, expected) -> None:
    """Every field equal; means and standard deviations equal to 1e-12 (relative)."""
    got, expected = (
        type(got).FromString(got.SerializeToString()),
        type(expected).FromString(expected.SerializeToString()),
    )
    got_moments, expected_moments = [], []
    _pop_moments(got, got_moments)
    _pop_moments(expected, expected_moments)
    assert got == expected
    assert got_moments == pytest.approx(expected_moments, rel=1e-12, abs=1e-12)


def _statistics(src, out, beam_args):
    read = ReadExamples(src, batch_size=BATCH)
    return run_statistics({None: read}, str(out), STATS_OPTIONS, beam_args=beam_args, html=False)[
        ""
    ]


@pytest.fixture(scope="module")
def local_stats(work, flights):
    return _statistics(flights, work / "stats_local", None)


def test_statistics_external_equal_in_memory(work, flights, ext, local_stats):
    external = _statistics(flights, work / "stats_external", ext)
    assert len(local_stats.datasets) == 4  # All Examples + three origins
    assert local_stats.datasets[0].num_examples == FLIGHTS_ROWS
    # Counts, top values, the sketches' quantiles and histograms: every field.
    assert_same_statistics(external, local_stats)
    summary = json.loads((work / "stats_external" / "statistics_summary.json").read_text())
    assert summary == {"input": {"read": FLIGHTS_ROWS, "accepted": FLIGHTS_ROWS, "rejected": 0}}


# ------------------------------------------------------------------ validation


def _tight_schema(stats) -> schema_pb2.Schema:
    """The schema of the data, narrowed so some rows and statistics break it."""
    schema = infer_schema(stats)
    for f in schema.feature:
        if f.name == "origin":
            f.ClearField("domain")
            f.string_domain.value.extend(["EWR", "JFK"])  # LGA is out
        if f.name == "distance":
            f.int_domain.max = 2000
    return schema


def _write_text_proto(message, folder):
    with open(os.path.join(folder, f"{uuid.uuid4().hex}.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(message))


def _validate(src, out, schema, beam_args):
    os.makedirs(out / "anomalies")
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        read = p | ReadExamples(src, batch_size=BATCH)
        checked = read.examples | ValidateExamples(schema)
        checked.valid | "Valid" >> CollectBatches(out / "valid")
        checked.quarantine | "Quarantine" >> CollectJson(out / "quarantine")
        checked.counts | "Counts" >> CollectJson(out / "counts")
        (
            read.examples
            | GenerateStatistics()
            | ValidateStatistics(schema)
            | beam.Map(_write_text_proto, str(out / "anomalies"))
        )
    (path,) = glob.glob(str(out / "anomalies" / "*.pbtxt"))
    anomalies = text_format.Parse(open(path).read(), anomalies_pb2.Anomalies())
    quarantine = sorted(load_json(out / "quarantine"), key=lambda q: json.dumps(q, sort_keys=True))
    counts = load_json(out / "counts")
    totals = {k: sum(c[k] for c in counts) for k in ("rows", "valid", "quarantined")}
    return load_table(out / "valid"), quarantine, totals, anomalies


def test_validation_external_equal_in_memory(work, flights, ext, local_stats):
    schema = _tight_schema(local_stats)
    local = _validate(flights, work / "val_local", schema, None)
    external = _validate(flights, work / "val_external", schema, ext)
    valid, quarantine, totals, anomalies = local
    assert totals["rows"] == FLIGHTS_ROWS and 0 < totals["quarantined"] < FLIGHTS_ROWS
    assert totals["valid"] == valid.num_rows and totals["quarantined"] == len(quarantine)
    assert {"origin", "distance"} <= set(anomalies.anomaly_info)
    assert _rows(external[0]) == _rows(valid)
    assert external[1:] == (quarantine, totals, anomalies)


# ------------------------------------------------------------------ transform

MODULE = textwrap.dedent(
    """
    import tensorflow as tf
    import tensorflow_transform as tft


    def _dense(x, default):
        return tf.squeeze(tft.sparse_tensor_to_dense_with_shape(x, [None, 1], default), 1)


    def preprocessing_fn(inputs):
        return {
            "bill_z": _dense(tft.scale_to_z_score(inputs["bill_length_mm"]), 0.0),
            "mass_01": _dense(tft.scale_to_0_1(tf.cast(inputs["body_mass_g"], tf.float32)), 0.5),
            "island_id": tft.compute_and_apply_vocabulary(
                _dense(inputs["island"], b""), num_oov_buckets=1, vocab_filename="island"),
            "flipper_bucket": tft.bucketize(_dense(inputs["flipper_length_mm"], 0), num_buckets=4),
            "species": _dense(inputs["species"], b""),
        }
    """
)


def _decode_files(pattern: str) -> pa.Table:
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    paths = sorted(glob.glob(pattern))
    assert paths, pattern
    records = [r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")]
    return pa.Table.from_batches(
        [example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)]
    )


def _transform(examples, module_file, out, beam_args):
    from conveyor.components.transform import load_preprocessing_fn, run_transform

    reads = {s: read_examples_dir(examples, s, batch_size=64) for s in ("train", "eval")}
    summary = run_transform(
        reads, str(out), load_preprocessing_fn(module_file), beam_args=beam_args
    )
    tables = {
        s: _decode_files(str(out / "transformed_examples" / f"Split-{s}" / "*.gz"))
        for s in ("train", "eval")
    }
    (vocab,) = glob.glob(str(out / "transform_graph" / "transform_fn" / "assets" / "island"))
    return summary, tables, open(vocab, "rb").read()


def test_transform_external_equal_in_memory(work, ext):
    from conveyor.components.example_gen import run_example_gen

    examples = str(work / "penguins_examples")
    run_example_gen(
        {None: ReadExamples(datasets.penguins_csv())}, examples, splits={"train": 2, "eval": 1}
    )
    module_file = work / "prep.py"
    module_file.write_text(MODULE)
    local = _transform(examples, str(module_file), work / "tf_local", None)
    external = _transform(examples, str(module_file), work / "tf_external", ext)
    summary, tables, vocab = local
    assert sum(summary["rows"].values()) == 344 and summary["analyzed"] is True
    assert external[0] == summary
    assert external[2] == vocab and set(vocab.split()) == {b"Biscoe", b"Dream", b"Torgersen"}
    for split in ("train", "eval"):
        assert tables[split].num_rows == summary["rows"][split]
        _assert_same_rows(external[1][split], tables[split])


# ------------------------------------------------------------------ a model: evaluation, inference


@pytest.fixture(scope="module")
def flights_parquet(work, flights):
    """Flights with an id, the delay at departure and whether the arrival was late."""
    import pyarrow.csv as pcsv

    t = pcsv.read_csv(flights, convert_options=pcsv.ConvertOptions(null_values=["NA"]))
    dep = t["dep_delay"].to_numpy().astype(float)
    arr = t["arr_delay"].to_numpy().astype(float)
    keep = ~np.isnan(dep) & ~np.isnan(arr)
    table = pa.table(
        {
            "id": np.flatnonzero(keep).astype(np.int64),
            "carrier": t["carrier"].filter(pa.array(keep)),
            "dep_delay": dep[keep].astype(np.float32),
            "late": (arr[keep] > 15).astype(np.int64),
        }
    )
    path = work / "flights.parquet"
    pq.write_table(table, path)
    return str(path)


@pytest.fixture(scope="module")
def model_dir(work):
    """A tiny SavedModel: P(late) from the departure delay (a fixed logistic curve)."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="dep_delay")])
        def serve(self, dep_delay):
            return {"p_late": tf.sigmoid((dep_delay - 10.0) / 8.0)}

    model = Model()
    path = str(work / "model")
    tf.saved_model.save(model, path, signatures={"serving_default": model.serve})
    return path


def _evaluate(src, model, out, beam_args):
    from conveyor.components.evaluation import make_settings, run_evaluation

    settings = make_settings("late", "p_late", slice_by=["carrier"])
    report = run_evaluation(
        {"eval": ReadExamples(src, batch_size=BATCH)},
        settings,
        str(out),
        model_path=model,
        beam_args=beam_args,
        images=False,
    )
    return report, json.loads((out / "metrics.json").read_text())


# TensorFlow's float32 kernels (the model's sigmoid here) may round an element
# differently (one float32 ulp) depending on where it falls in its inference
# batch, and runners cut batches differently; so predictions, and the metrics
# averaged from them, agree to float32 precision rather than bit for bit.
PREDICTION_ATOL = 1e-6


def test_evaluation_external_equal_in_memory(work, flights_parquet, model_dir, ext):
    local, metrics = _evaluate(flights_parquet, model_dir, work / "eval_local", None)
    external, external_metrics = _evaluate(flights_parquet, model_dir, work / "eval_external", ext)
    overall = metrics[0]
    assert overall["slice"] == {} and 0.7 < overall["metrics"]["auc"] <= 1
    assert len(metrics) > 5  # the overall slice and one per carrier
    assert external["validation"] == local["validation"] and external["blessed"] is True
    assert external["rows_rejected_on_read"] == local["rows_rejected_on_read"] == 0
    assert [(m["slice"], m["notes"], sorted(m["metrics"])) for m in external_metrics] == [
        (m["slice"], m["notes"], sorted(m["metrics"])) for m in metrics
    ]
    assert_same_metrics(external_metrics, metrics)


def assert_same_metrics(got_metrics: list[dict], metrics: list[dict]) -> None:
    """Per slice, every metric of ``metrics`` equal in ``got_metrics``: floats within the
    predictions' tolerance, counts (and None for a metric undefined on a slice) exactly."""
    for got, expected in zip(got_metrics, metrics):
        for name, value in expected["metrics"].items():
            if isinstance(value, float):
                assert got["metrics"][name] == pytest.approx(
                    value, rel=1e-6, abs=PREDICTION_ATOL
                ), name
            else:  # counts, and None for a metric undefined on a slice
                assert got["metrics"][name] == value, name


def _split_log(log):
    """(the log without its output values as text, {output: values})."""
    import tensorflow as tf

    log = type(log).FromString(log.SerializeToString())
    outputs = {}
    for key, tensor in log.predict_log.response.outputs.items():
        outputs[key] = tf.make_ndarray(tensor).ravel().tolist()
        tensor.ClearField("tensor_content")
    return text_format.MessageToString(log), outputs


def _infer(src, model, out, beam_args):
    from tensorflow_serving.apis import prediction_log_pb2

    from conveyor.components.inference import run_bulk_inference

    summary = run_bulk_inference(
        {"eval": ReadExamples(src)},
        model,
        str(out),
        output_examples=True,
        min_batch_size=50,
        max_batch_size=400,
        beam_args=beam_args,
    )
    logs = []
    for path in sorted(glob.glob(str(out / "inference_result" / "*.gz"))):
        import tensorflow as tf

        for rec in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            logs.append(prediction_log_pb2.PredictionLog.FromString(rec.numpy()))
    examples = _decode_files(str(out / "output_examples" / "Split-eval" / "*.gz"))
    return summary, sorted((_split_log(log) for log in logs), key=repr), examples


def test_inference_external_equal_in_memory(work, flights_parquet, model_dir, ext):
    summary, logs, examples = _infer(flights_parquet, model_dir, work / "infer_local", None)
    external = _infer(flights_parquet, model_dir, work / "infer_external", ext)
    n = pq.read_metadata(flights_parquet).num_rows
    assert (
        summary["examples_predicted"]
        == summary["examples_in"]
        == n
        == len(logs)
        == examples.num_rows
    )
    assert summary["examples_dead_lettered"] == 0
    assert "p_late" in examples.column_names
    assert external[0] == summary
    # The logs hold the same requests; their predictions agree to float32 precision.
    assert [text for text, _ in external[1]] == [text for text, _ in logs]
    got = np.array([out["p_late"] for _, out in external[1]])
    np.testing.assert_allclose(
        got, np.array([out["p_late"] for _, out in logs]), rtol=0, atol=PREDICTION_ATOL
    )
    # The output examples: the same rows, predictions equal to float32 precision.
    others = [c for c in examples.column_names if c != "p_late"]
    assert _rows(external[2].select(others)) == _rows(examples.select(others))
    by_id = {
        name: dict(
            zip(
                pc.list_flatten(t.column("id")).to_pylist(),
                pc.list_flatten(t.column("p_late")).to_pylist(),
            )
        )
        for name, t in (("external", external[2]), ("local", examples))
    }
    assert sorted(by_id["external"]) == sorted(by_id["local"])
    np.testing.assert_allclose(
        [by_id["external"][i] for i in sorted(by_id["local"])],
        [by_id["local"][i] for i in sorted(by_id["local"])],
        rtol=0,
        atol=PREDICTION_ATOL,
    )


# ------------------------------------------------------------------ no funnel: two workers share the work


def _note_worker(batch: pa.RecordBatch, folder: str) -> pa.RecordBatch:
    """Records which process handled this batch (a file per batch: pid and rows)."""
    with open(os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex}"), "w") as f:
        f.write(str(batch.num_rows))
    return batch


def _write_stats(stats, path: str) -> None:
    with open(path, "wb") as f:
        f.write(stats.SerializeToString())


def _stats_noting_workers(src, out, beam_args):
    seen = out / "seen"
    os.makedirs(seen)
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        examples = (p | ReadExamples(src, batch_size=BATCH)).examples
        (
            examples
            | "NoteWorker" >> beam.Map(_note_worker, str(seen))
            | GenerateStatistics(STATS_OPTIONS)
            | beam.Map(_write_stats, str(out / "stats.pb"))
        )
    rows_by_pid: dict[str, int] = {}
    for path in glob.glob(str(seen / "*")):
        pid = os.path.basename(path).split("-")[0]
        rows_by_pid[pid] = rows_by_pid.get(pid, 0) + int(open(path).read())
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString((out / "stats.pb").read_bytes())
    return rows_by_pid, stats


def test_statistics_work_is_spread_over_two_workers(work):
    src = datasets.flights_sample_csv(20_000)
    local_pids, local = _stats_noting_workers(src, work / "spread_local", None)
    pids, stats = _stats_noting_workers(src, work / "spread_mp", MULTI_PROCESSING)
    assert list(local_pids.values()) == [20_000]  # in memory: this process did it all
    # One CSV file, no batch reshuffle: its byte ranges spread the reading, so
    # the batches reach the statistics step on both workers, and each worker
    # folds a real share of them (the CombinePerKey is lifted into a
    # pre-combine that runs where the batches are).
    assert sum(pids.values()) == 20_000
    assert len(pids) == 2, pids
    assert min(pids.values()) >= 20_000 // 10, pids
    assert_same_statistics(stats, local)


def test_portable_runner_with_two_external_workers_shares_the_work(
    work, parallel_job_endpoint, worker_pool
):
    # Conveyor's job service gives the job the two workers it asks for, both
    # started by the worker pool; each reads a share of the CSV's byte ranges.
    src = datasets.flights_sample_csv(20_000)
    local_pids, local = _stats_noting_workers(src, work / "ext2_local", None)
    pids, stats = _stats_noting_workers(
        src, work / "ext2", external_args(parallel_job_endpoint, worker_pool)
    )
    assert sum(pids.values()) == 20_000
    assert len(pids) == 2 and os.getpid() not in map(int, pids), pids
    assert min(pids.values()) >= 20_000 // 10, pids
    assert_same_statistics(stats, local)


@pytest.mark.parametrize(
    "args, one_worker",
    [
        ([], True),  # in memory: one process
        (MULTI_PROCESSING, False),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=1"], True),
        (["--runner=PortableRunner", "--job_endpoint=localhost:1"], False),
    ],
)
def test_files_are_read_in_pieces_only_when_there_are_several_workers(args, one_worker):
    from conveyor.beam_utils.io import WHOLE_FILES

    read = ReadExamples(datasets.flights_sample_csv(2_000))
    pieces = read.piece_bytes(beam.Pipeline(options=pipeline_options(args)))
    assert (pieces == WHOLE_FILES) is one_worker
    assert (
        ReadExamples(read.file_pattern, split_bytes=4096).piece_bytes(
            beam.Pipeline(options=pipeline_options(args))
        )
        == 4096
    )
