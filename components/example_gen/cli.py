"""``conveyor examples``: ingest input files into an Examples directory."""

from __future__ import annotations

import argparse

from conveyor.dsl.layout import SPLIT_PREFIX, SUMMARY_FILE

HELP = "Ingest CSV, TFRecord or Parquet into train/eval TFRecord splits (ExampleGen)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The input flags (``conveyor.beam_utils.cli_args``, ``--input`` only), ``--output``, the
    splits and TFX's ``--input-config``, ``--output-config``, ``--range-config``."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    add_input_arguments(parser, examples=False)
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="the Examples directory to write"
    )
    parser.add_argument(
        "--splits",
        default=None,
        metavar="NAME:W,...",
        help="split names and weights (default: train:2,eval:1); the short form of --output-config",
    )
    parser.add_argument(
        "--hash-columns",
        default="",
        metavar="COL,...",
        help="columns that decide a row's split, so rows that share them stay together "
        "(default: the whole row)",
    )
    group = parser.add_argument_group(
        "TFX's configs (JSON)",
        "--input is a file, glob or folder (all its files); its pattern may hold {SPAN}, "
        "{VERSION} and {YYYY}{MM}{DD} placeholders ({SPAN:2}: two digits). The latest span "
        "is read, at its latest version, unless --range-config says otherwise.",
    )
    group.add_argument(
        "--input-config",
        metavar="JSON",
        help="named splits under the --input folder, read as they are (not re-split): "
        '\'{"splits": [{"name": "train", "pattern": "train/*"}, '
        '{"name": "eval", "pattern": "eval/*"}]}\'',
    )
    group.add_argument(
        "--output-config",
        metavar="JSON",
        help='the hash split: \'{"split_config": {"splits": [{"name": "train", '
        '"hash_buckets": 2}, {"name": "eval", "hash_buckets": 1}], '
        '"partition_feature_name": "COL"}}\'',
    )
    group.add_argument(
        "--range-config",
        metavar="JSON",
        help='the spans to read: \'{"static_range": {"start_span_number": 3, '
        '"end_span_number": 5}}\' or \'{"rolling_range": {"num_spans": 2}}\' '
        "(default: the latest span)",
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs ``conveyor examples``: reads ``--input``, writes the split Examples, prints a summary."""
    from conveyor.beam_utils.cli_args import check_input_arguments, missing_values
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.io import DEFAULT_BATCH_SIZE, parse_splits
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.components.example_gen.component import run_example_gen
    from conveyor.components.example_gen.inputs import (
        input_root,
        make_readers,
        resolve_input,
        split_settings,
    )

    check_input_arguments(args)
    # The output is checked before any work, the input's resolution included.
    check_output(args.output, inputs=[input_root(args.input)])
    try:
        splits = parse_splits(args.splits) if args.splits is not None else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    hash_columns = [c for c in args.hash_columns.split(",") if c] or None
    resolved = resolve_input(args.input, args.input_config, args.range_config)
    splits, hash_columns = split_settings(
        args.output_config, splits, hash_columns, presplit=len(resolved.files) > 1
    )
    examples = make_readers(
        resolved,
        format=args.format,
        missing_values=missing_values(args),
        delimiter=args.delimiter,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
    )
    with staged_output(args.output, inputs=[input_root(args.input)]) as output:
        summary = run_example_gen(
            examples, output, splits=splits, hash_columns=hash_columns, beam_args=beam_args
        )
    print(format_summary(summary, args.output, resolved.selection))
    return 0


def format_summary(summary: dict, output: str, selection=None) -> str:
    """A few lines a person reads after a run (the span and version read, when the input names
    them: a :class:`~conveyor.components.example_gen.spans.Selection`)."""
    inputs, formats = summary["input"], summary["format"]
    if isinstance(inputs, dict):  # pre-split inputs: {split: pattern}
        inputs = ", ".join(f"{split}: {pattern}" for split, pattern in inputs.items())
        formats = ", ".join(sorted(set(formats.values())))
    lines = [f"ExampleGen: {inputs} ({formats}) -> {output}"]
    if selection is not None and selection.spanned:
        lines.append(f"  {selection.describe()}")
    lines.append(
        f"  read {summary['rows_read']:,}  accepted {summary['rows_accepted']:,}  "
        f"rejected {summary['rows_rejected']:,}"
    )
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
