"""``conveyor schema``: infer a schema from statistics and write ``schema.pbtxt``."""

from __future__ import annotations

import argparse

HELP = "Infer a schema (schema.pbtxt) from statistics (FeatureStats.pb) for a person to curate."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--statistics", required=True, metavar="FILE",
                        help="statistics: binary FeatureStats.pb, or text format if the name ends in .pbtxt")
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="the schema to write (text format; binary if the name ends in .pb)")
    parser.add_argument("--max-string-domain-size", type=int, default=100, metavar="N",
                        help="most distinct strings a feature may have to get a string domain (default 100)")
    parser.add_argument("--no-infer-shape", action="store_true",
                        help="give fixed-valency features a value_count rather than a shape")
    parser.add_argument("--int-ranges", action="store_true",
                        help="give INT features an int_domain with their observed min and max "
                             "(not done by TFDV)")
    parser.add_argument("--dataset", metavar="NAME",
                        help="dataset to read in sliced statistics (default: the first, the whole data)")


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.beam_utils.proto_io import read_statistics, schema_text, write_schema
    from conveyor.components.validation.schema_inference import InferOptions, infer_schema

    if beam_args:
        raise UsageError("conveyor schema runs no pipeline; it takes no Beam flags after '--'")
    check_output(args.output, is_file=True, inputs=[args.statistics])
    try:
        options = InferOptions(max_string_domain_size=args.max_string_domain_size,
                               infer_feature_shape=not args.no_infer_shape,
                               infer_int_ranges=args.int_ranges, dataset=args.dataset)
        stats = read_statistics(args.statistics)
        schema = infer_schema(stats, options)
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        raise UsageError(f"{args.statistics}: {e}") from None
    with staged_output(args.output, is_file=True, inputs=[args.statistics]) as output:
        write_schema(schema, output)
    domains = sum(1 for f in schema.feature if f.WhichOneof("domain_info"))
    required = sum(1 for f in schema.feature if f.presence.min_fraction >= 1)
    print(f"schema: {len(schema.feature)} features ({required} always present, "
          f"{domains} with a domain) -> {args.output}")
    if args.output.endswith(".pb"):
        return 0
    if len(schema_text(schema)) < 4000:
        print(schema_text(schema), end="")
    return 0
