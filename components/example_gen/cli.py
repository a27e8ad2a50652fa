"""``conveyor examples``: ingest input files into an Examples directory."""

from __future__ import annotations

import argparse

from conveyor.dsl.layout import SPLIT_PREFIX, SUMMARY_FILE

HELP = "Ingest CSV, TFRecord or Parquet into train/eval TFRecord splits (ExampleGen)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The input flags (``conveyor.beam_utils.cli_args``, ``--input`` only), ``--output``, the splits."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    add_input_arguments(parser, examples=False)
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="the Examples directory to write"
    )
    parser.add_argument(
        "--splits",
        default="train:2,eval:1",
        metavar="NAME:W,...",
        help="split names and weights (default: train:2,eval:1)",
    )
    parser.add_argument(
        "--hash-columns",
        default="",
        metavar="COL,...",
        help="columns that decide a row's split, so rows that share them stay together "
        "(default: the whole row)",
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs ``conveyor examples``: reads ``--input``, writes the split Examples, prints a summary."""
    from conveyor.beam_utils.cli_args import check_input_arguments, read_transforms
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.io import parse_splits
    from conveyor.beam_utils.outputs import staged_output
    from conveyor.components.example_gen.component import run_example_gen

    check_input_arguments(args)
    try:
        splits = parse_splits(args.splits)
    except ValueError as e:
        raise UsageError(str(e)) from None
    hash_columns = [c for c in args.hash_columns.split(",") if c] or None
    with staged_output(args.output, inputs=[args.input]) as output:
        summary = run_example_gen(
            read_transforms(args),  # {None: ReadExamples(--input ...)}: one input, split here
            output,
            splits=splits,
            hash_columns=hash_columns,
            beam_args=beam_args,
        )
    print(format_summary(summary, args.output))
    return 0


def format_summary(summary: dict, output: str) -> str:
    """A few lines a person reads after a run."""
    lines = [
        f"ExampleGen: {summary['input']} ({summary['format']}) -> {output}",
        f"  read {summary['rows_read']:,}  accepted {summary['rows_accepted']:,}  "
        f"rejected {summary['rows_rejected']:,}",
    ]
    for name, n in summary["splits"].items():
        share = n / summary["rows_accepted"] if summary["rows_accepted"] else 0.0
        lines.append(f"  {SPLIT_PREFIX}{name}: {n:,} rows ({share:.1%})")
    types = {}
    for col, t in summary["features"].items():
        types.setdefault(t, []).append(col)
    for t, cols in types.items():
        lines.append(f"  {t}: {', '.join(cols)}")
    if summary["rows_rejected"]:
        lines.append(f"  rejected rows with reasons: {output}/rejected/")
    lines.append(f"  summary: {output}/{SUMMARY_FILE}")
    return "\n".join(lines)
