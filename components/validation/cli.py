"""``conveyor validate``: check statistics against a schema; a gate for CI and pipelines.

Runs :func:`run_validation` on one ``FeatureStats.pb``: writes
``OUTPUT/SchemaDiff.pb`` (a binary ``Anomalies``, as TFX's ExampleValidator
writes it) and prints a report. Exit status 0 when no anomaly has severity
ERROR, 1 when one does, 2 for usage or input errors.
"""

from __future__ import annotations

import argparse

from conveyor.dsl.layout import ANOMALIES_FILE

HELP = f"Validate statistics against a schema (drift, skew): {ANOMALIES_FILE} + report; exit 1 on errors."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``conveyor validate``."""
    from conveyor.beam_utils.cli_args import add_dataset_argument

    parser.add_argument(
        "--statistics",
        required=True,
        metavar="FILE",
        help="statistics to check: FeatureStats.pb (text format if the name ends in .pbtxt)",
    )
    parser.add_argument(
        "--schema",
        required=True,
        metavar="FILE",
        help="the curated schema (schema.pbtxt; binary if the name ends in .pb)",
    )
    parser.add_argument(
        "--baseline-statistics",
        metavar="FILE",
        help="previous statistics, for the schema's drift comparators",
    )
    parser.add_argument(
        "--serving-statistics",
        metavar="FILE",
        help="serving statistics, for the schema's skew comparators",
    )
    parser.add_argument(
        "--environment",
        metavar="NAME",
        help="environment of the statistics (e.g. SERVING), as the schema names it",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="directory for SchemaDiff.pb"
    )
    parser.add_argument(
        "--warn",
        action="append",
        default=[],
        metavar="TYPE",
        help="report anomalies of this type (e.g. SCHEMA_NEW_COLUMN) as WARNING, "
        "which does not fail the gate (repeatable)",
    )
    add_dataset_argument(parser)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Validates and writes the anomalies; returns the exit status (1 with an ERROR anomaly)."""
    import posixpath

    from conveyor.beam_utils.cli_args import refuse_beam_args
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.beam_utils.proto_io import read_schema, read_statistics
    from conveyor.components.validation.component import run_validation
    from conveyor.components.validation.report import anomalies_report
    from conveyor.components.validation.validate import ValidationOptions

    refuse_beam_args("validate", beam_args)
    try:
        options = ValidationOptions(
            environment=args.environment,
            dataset=args.dataset,
            severity_overrides={t: "WARNING" for t in args.warn},
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    inputs = [args.statistics, args.schema, args.baseline_statistics, args.serving_statistics]
    check_output(args.output, inputs=inputs)
    # Read here, in this order, so a bad file is named before any note is printed.
    stats = read_statistics(args.statistics)
    schema = read_schema(args.schema)
    previous = read_statistics(args.baseline_statistics) if args.baseline_statistics else None
    serving = read_statistics(args.serving_statistics) if args.serving_statistics else None
    if (
        args.environment
        and args.environment not in schema.default_environment
        and not any(args.environment in f.in_environment for f in schema.feature)
    ):
        print(
            f"note: the schema does not name environment {args.environment!r} "
            "(default_environment or in_environment): no feature is expected in it"
        )
    try:
        # A failed check (exit status 1) is a complete output too: it replaces the old one.
        with staged_output(args.output, inputs=inputs) as output:
            result = run_validation(
                stats,
                schema,
                output,
                options,
                previous_statistics=previous,
                serving_statistics=serving,
                report_file=False,
            )
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        raise UsageError(str(e)) from None
    print(anomalies_report(result["splits"][""]["anomalies"]))
    print(f"wrote {posixpath.join(args.output, ANOMALIES_FILE)}")
    return 1 if result["errors"] else 0
