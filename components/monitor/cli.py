"""``conveyor monitor``: statistics, validation (drift) and metrics per window of a stream.

Watches new files of ``--input`` (looked for every ``--poll-interval``
seconds) or reads a Pub/Sub subscription (``--pubsub-subscription``; add
``--runner`` and project flags after ``--`` for Dataflow), groups the examples
into fixed windows of ``--window-seconds`` (by ``--timestamp-column`` event
time, else arrival time), and per window writes ``OUTPUT/window-<start>-<end>/``
with ``FeatureStats.pb``, ``SchemaDiff.pb``, ``report.txt`` and ``result.json``
(``metrics.json`` too with ``--label-key`` and ``--prediction-key`` or
``--model``), and logs one line per firing. ``--model`` runs a SavedModel on
each window's rows (its predictions feed the metrics; rejected rows are counted
as dead letters); ``--allowed-lateness`` fires a window again, with the files
rewritten, for rows arriving up to that many seconds late. A file that cannot
be read is logged with the reason and skipped. Runs until cancelled, or for
``--stop-after`` seconds of file watching; a finished run writes its totals to
``OUTPUT/summary.json`` (windows, anomalies, files read and skipped with their
reasons, rejected rows), prints them, and exits 1 if some window (or late
firing) had an ERROR anomaly, 2 if its folder does not exist or no file could
be read in the time watched.
"""

from __future__ import annotations

import argparse

from conveyor.dsl.layout import SCHEMA_FILE, SERVING_DIR, STATS_FILE

HELP = "Monitor a stream: statistics, schema/drift validation and metrics per fixed window."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared input flags (:mod:`conveyor.beam_utils.cli_args`: ``--input``, ``--format``,
    ``--batch-size``, ``--missing-values``, ``--delimiter``), ``--pubsub-subscription`` and the
    monitor's own: windows, schema and drift, metrics and a model."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    # --input PATTERN is the pattern watched for new files.
    add_input_arguments(parser, examples=False)
    pubsub = parser.add_argument_group("Pub/Sub source (instead of --input)")
    pubsub.add_argument(
        "--pubsub-subscription",
        metavar="SUBSCRIPTION",
        help="read messages of projects/<p>/subscriptions/<s> (payload: CSV lines or one "
        "serialized tf.Example, as --format csv or tfrecord says; default: csv)",
    )
    parser.add_argument(
        "--schema", required=True, metavar="FILE", help=f"the curated {SCHEMA_FILE}"
    )
    parser.add_argument(
        "--baseline-statistics",
        metavar="FILE",
        help=f"reference statistics ({STATS_FILE}) for the schema's drift comparators",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="directory of the window folders"
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=600.0,
        metavar="S",
        help="width of the fixed windows (default: 600)",
    )
    parser.add_argument(
        "--timestamp-column",
        metavar="COL",
        help="event time of each row (epoch seconds or ISO-8601); default: arrival time",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between looks for new files (default: 10)",
    )
    parser.add_argument(
        "--stop-after",
        type=float,
        metavar="S",
        help="stop watching files after S seconds and finish the open windows",
    )
    parser.add_argument(
        "--csv-columns",
        metavar="LIST",
        help="column order of header-less CSV messages (default: the schema's, then "
        "the timestamp, label and prediction columns)",
    )
    parser.add_argument(
        "--timestamp-attribute",
        metavar="NAME",
        help="Pub/Sub attribute holding the event time (default: publish time)",
    )
    parser.add_argument("--label-key", metavar="COL", help="label column, for metrics per window")
    parser.add_argument(
        "--prediction-key",
        metavar="COL",
        help="prediction column, for metrics per window (with --model: the model output)",
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help=f"a SavedModel (or a Trainer output with {SERVING_DIR}) to run on each window",
    )
    parser.add_argument(
        "--signature",
        default="serving_default",
        metavar="NAME",
        help="signature of --model (default: serving_default)",
    )
    parser.add_argument(
        "--allowed-lateness",
        type=float,
        default=0.0,
        metavar="S",
        help="rows up to S seconds late fire their window again (default: 0, dropped)",
    )
    parser.add_argument(
        "--warn",
        action="append",
        default=[],
        metavar="TYPE",
        help="report anomalies of this type as WARNING (repeatable)",
    )
    parser.add_argument(
        "--environment", metavar="NAME", help="environment of the examples (e.g. SERVING)"
    )


def _check(args) -> None:
    from conveyor.beam_utils.errors import UsageError

    if bool(args.input) == bool(args.pubsub_subscription):
        raise UsageError(
            "give exactly one of --input PATTERN or --pubsub-subscription SUBSCRIPTION"
        )
    if args.window_seconds <= 0:
        raise UsageError("--window-seconds must be positive")
    if args.poll_interval <= 0:
        raise UsageError("--poll-interval must be positive")
    if args.stop_after is not None and args.stop_after < 0:
        raise UsageError("--stop-after must not be negative")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be positive")
    if args.label_key and not (args.prediction_key or args.model):
        raise UsageError("--label-key needs --prediction-key COL or --model DIR")
    if args.prediction_key and not args.label_key:
        raise UsageError("--prediction-key goes with --label-key")
    if args.allowed_lateness < 0:
        raise UsageError("--allowed-lateness must not be negative")
    if args.pubsub_subscription and args.format == "parquet":
        raise UsageError("--format parquet applies to --input (messages are csv or tfrecord)")
    if args.pubsub_subscription and args.stop_after is not None:
        raise UsageError("--stop-after applies to --input (a Pub/Sub read runs until cancelled)")
    if args.input and (args.csv_columns or args.timestamp_attribute):
        raise UsageError("--csv-columns and --timestamp-attribute apply to --pubsub-subscription")


def _arrow_schema(schema, extra: dict):
    """The schema's columns plus the ones the monitor reads for itself."""
    import pyarrow as pa

    from conveyor.beam_utils import arrow

    base = arrow.from_metadata_schema(schema)
    fields = list(base)
    for name, kind in extra.items():
        if name and name not in base.names:
            fields.append(pa.field(name, arrow.column_type(kind)))
    return pa.schema(fields)


class _WindowLog:
    """Prints the monitor's log lines (one per window) on stderr while a run lasts."""

    def __enter__(self):
        import logging
        import sys

        class _Stderr(logging.StreamHandler):
            @property
            def stream(self):  # the current stderr, even when it is replaced
                return sys.stderr

            @stream.setter
            def stream(self, value):
                pass

        self._logger = logging.getLogger("conveyor.components.monitor")
        self._saved = (self._logger.level, self._logger.propagate)
        self._handler = _Stderr()
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]
        return False


def _check_pattern(pattern: str) -> None:
    """A local pattern whose folder does not exist can never match: a usage error."""
    import glob
    import os

    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.files import is_local

    if not is_local(pattern):
        return
    fixed = pattern
    while glob.has_magic(fixed):
        fixed = os.path.dirname(fixed)
    folder = fixed if glob.has_magic(pattern) else os.path.dirname(pattern)
    if folder and not os.path.isdir(folder):
        raise UsageError(f"--input {pattern}: the folder {folder} does not exist")


def _print_summary(summary: dict, args) -> None:
    print(
        f"{summary['windows']} window(s) written to {args.output}: {summary['windows_with_anomalies']} "
        f"with anomalies, {summary['windows_with_errors']} with ERROR anomalies"
    )
    if summary["late_firings"]:
        print(
            f"{summary['late_firings']} late firing(s) rewrote windows: "
            f"{summary['late_firings_with_errors']} with ERROR anomalies"
        )
    if args.model:
        print(
            f"model: {summary.get('examples_predicted', 0):,} examples predicted, "
            f"{summary.get('examples_dead_lettered', 0):,} dead-lettered"
        )
    rejected, unreadable = summary["rows_rejected"], summary["files_unreadable"]
    if rejected or unreadable:
        print(f"rejected rows: {rejected:,}; unreadable files skipped: {unreadable}")
        for f in summary["unreadable_files"]:
            print(f"  {f['file']}: {f['reason']}")
        if unreadable > len(summary["unreadable_files"]):
            print(f"  ... and {unreadable - len(summary['unreadable_files'])} more")


def run(args, beam_args) -> int:
    """Runs ``conveyor monitor``: checks the flags, builds the source, runs
    :func:`~conveyor.components.monitor.run_monitor`, prints the totals.

    Returns 1 if some window (or late firing) had an ERROR anomaly, else 0;
    raises :class:`UsageError` or :class:`InputError` (exit 2) for bad flags or
    input, and when no file could be read in the time watched.
    """
    from conveyor.beam_utils.cli_args import missing_values
    from conveyor.beam_utils.csv_io import CsvOptions
    from conveyor.beam_utils.errors import InputError, UsageError
    from conveyor.beam_utils.outputs import check_output, live_output
    from conveyor.beam_utils.proto_io import read_schema, read_statistics
    from conveyor.beam_utils.read import DEFAULT_BATCH_SIZE
    from conveyor.components.monitor.component import run_monitor
    from conveyor.components.monitor.transform import ReadPubSubExamples, WatchFiles
    from conveyor.components.validation import ValidationOptions

    _check(args)
    if args.input:
        _check_pattern(args.input)
    inputs = [args.input, args.schema, args.baseline_statistics, args.model]
    check_output(args.output, inputs=inputs)
    try:
        validation = ValidationOptions(
            environment=args.environment, severity_overrides={t: "WARNING" for t in args.warn}
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    schema = read_schema(args.schema)
    baseline = read_statistics(args.baseline_statistics) if args.baseline_statistics else None
    settings = None
    if args.label_key:
        from conveyor.components.evaluation import make_settings

        settings = make_settings(args.label_key, args.prediction_key)
    prediction_column = None if args.model else args.prediction_key
    try:
        read_schema_ = _arrow_schema(
            schema,
            {args.timestamp_column: "BYTES", args.label_key: "FLOAT", prediction_column: "FLOAT"},
        )
    except ValueError as e:
        raise UsageError(f"{args.schema}: {e}") from None
    csv_options = CsvOptions(delimiter=args.delimiter, missing_values=missing_values(args))
    if args.input:
        source = WatchFiles(
            args.input,
            read_schema_,
            format=args.format,
            interval=args.poll_interval,
            stop_after=args.stop_after,
            csv_options=csv_options,
            batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
            reports=True,
        )
    else:
        columns = [c.strip() for c in args.csv_columns.split(",")] if args.csv_columns else None
        try:
            source = ReadPubSubExamples(
                args.pubsub_subscription,
                read_schema_,
                format=args.format or "csv",
                csv_columns=columns,
                csv_options=csv_options,
                timestamp_attribute=args.timestamp_attribute,
                reports=True,
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    # The windows appear as they fire, so the output is replaced when the run starts, not staged.
    with live_output(args.output, inputs=inputs) as output, _WindowLog():
        summary = run_monitor(
            source,
            output,
            schema,
            baseline_statistics=baseline,
            window_seconds=args.window_seconds,
            timestamp_column=args.timestamp_column,
            validation_options=validation,
            eval_settings=settings,
            model=args.model,
            input_schema=read_schema_ if args.model else None,
            signature=args.signature,
            allowed_lateness=args.allowed_lateness,
            beam_args=beam_args,
        )

    if summary is None:
        print(
            f"the stream was stopped before its end (cancelled?): no totals; see the windows in {args.output}"
        )
        return 0
    _print_summary(summary, args)
    if args.input and args.stop_after is not None and not summary["files_read"]:
        if summary["files_unreadable"]:
            raise InputError(
                f"--input {args.input}: none of the {summary['files_unreadable']} file(s) "
                "matched could be read"
            )
        raise InputError(
            f"--input {args.input}: no file matched in the {args.stop_after:g} s watched"
        )
    return 1 if summary["windows_with_errors"] or summary["late_firings_with_errors"] else 0
