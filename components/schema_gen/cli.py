"""``conveyor schema``: infer a schema from statistics and write ``schema.pbtxt``.

Reads one ``FeatureStats.pb`` (``--statistics``), runs :func:`run_schema_gen`
and writes the schema to ``--output`` (text format; binary if the name ends in
``.pb``), then prints how many features it has and, when short, the schema.
Exit status 2 for usage or input errors.
"""

from __future__ import annotations

import argparse

from conveyor.dsl.layout import SCHEMA_FILE

HELP = f"Infer a schema ({SCHEMA_FILE}) from statistics, for a person to curate."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``conveyor schema``."""
    from conveyor.beam_utils.cli_args import add_dataset_argument

    parser.add_argument(
        "--statistics",
        required=True,
        metavar="FILE",
        help="statistics: binary FeatureStats.pb, or text format if the name ends in .pbtxt",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="the schema to write (text format; binary if the name ends in .pb)",
    )
    parser.add_argument(
        "--max-string-domain-size",
        type=int,
        default=100,
        metavar="N",
        help="most distinct strings a feature may have to get a string domain (default 100)",
    )
    parser.add_argument(
        "--no-infer-shape",
        action="store_true",
        help="give fixed-valency features a value_count rather than a shape",
    )
    parser.add_argument(
        "--int-ranges",
        action="store_true",
        help="give INT features an int_domain with their observed min and max (not done by TFDV)",
    )
    add_dataset_argument(parser)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Infers and writes the schema; returns the exit status (0)."""
    from conveyor.beam_utils.cli_args import refuse_beam_args
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.beam_utils.proto_io import schema_text
    from conveyor.components.schema_gen.component import run_schema_gen
    from conveyor.components.schema_gen.schema_inference import InferOptions

    refuse_beam_args("schema", beam_args)
    check_output(args.output, is_file=True, inputs=[args.statistics])
    try:
        options = InferOptions(
            max_string_domain_size=args.max_string_domain_size,
            infer_feature_shape=not args.no_infer_shape,
            infer_int_ranges=args.int_ranges,
            dataset=args.dataset,
        )
        # Written beside the output and moved into place once complete.
        with staged_output(args.output, is_file=True, inputs=[args.statistics]) as output:
            summary = run_schema_gen(args.statistics, None, options, schema_file=output)
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        raise UsageError(f"{args.statistics}: {e}") from None
    print(
        f"schema: {summary['features']} features ({summary['always_present']} always present, "
        f"{summary['with_domain']} with a domain) -> {args.output}"
    )
    if args.output.endswith(".pb"):
        return 0
    text = schema_text(summary["schema"])
    if len(text) < 4000:
        print(text, end="")
    return 0
