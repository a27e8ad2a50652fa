"""Command-line arguments shared by ``conveyor`` commands.

Every command that reads examples takes ``--input PATTERN [--format
csv|tfrecord|parquet]`` or ``--examples DIR`` (an ExampleGen output with
splits) and writes under ``--output DIR``; the commands that read statistics
take ``--dataset``. This module imports nothing heavy, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse

from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.files import DEFAULT_MISSING_VALUES

__all__ = [
    "DEFAULT_MISSING",
    "FORMATS",
    "add_dataset_argument",
    "add_input_arguments",
    "check_input_arguments",
    "missing_values",
    "read_transforms",
    "refuse_beam_args",
]

FORMATS = ("csv", "tfrecord", "parquet")
#: ``--missing-values``' default: the readers' markers besides the empty field, which is always one.
DEFAULT_MISSING = ",".join(v for v in DEFAULT_MISSING_VALUES if v)


def add_input_arguments(
    parser: argparse.ArgumentParser, examples: bool = True, batch_size: bool = True
) -> None:
    """Adds ``--input``/``--examples``, ``--format``, ``--batch-size``, ``--missing-values``, ``--delimiter``.

    ``batch_size=False`` leaves out ``--batch-size`` (rows per RecordBatch read)
    for a command whose own ``--batch-size`` means something else (``infer``).
    """
    group = parser.add_argument_group("input")
    group.add_argument("--input", metavar="PATTERN", help="input files (a path or glob)")
    if examples:
        group.add_argument(
            "--examples", metavar="DIR", help="an Examples directory (Split-<name>/ folders)"
        )
    group.add_argument(
        "--format", choices=FORMATS, help="input format (default: from the file names)"
    )
    if batch_size:
        group.add_argument(
            "--batch-size", type=int, default=None, metavar="ROWS", help="rows per RecordBatch"
        )
    group.add_argument(
        "--missing-values",
        default=DEFAULT_MISSING,
        metavar="LIST",
        help="comma-separated CSV texts read as missing, besides the empty field "
        f"(default: {DEFAULT_MISSING}; pass '' for empty fields only)",
    )
    group.add_argument(
        "--delimiter",
        default=",",
        type=_one_character,
        metavar="CHAR",
        help="CSV field delimiter (default: ','; a tab as $'\\t')",
    )


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--dataset NAME``: which dataset of sliced statistics a command reads."""
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="dataset to read in sliced statistics (default: the first, the whole data)",
    )


def refuse_beam_args(command: str, beam_args: list[str]) -> None:
    """Raises :class:`UsageError` if Beam flags came after ``--`` to a command that runs no pipeline."""
    if beam_args:
        raise UsageError(f"conveyor {command} runs no pipeline; it takes no Beam flags after '--'")


def _one_character(text: str) -> str:
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"a delimiter is one character, not {text!r}")
    return text


def check_input_arguments(args: argparse.Namespace) -> None:
    """Raises :class:`UsageError` unless exactly one of --input/--examples is given."""
    given = [n for n in ("input", "examples") if getattr(args, n, None)]
    if len(given) != 1:
        raise UsageError("give exactly one of --input PATTERN or --examples DIR")
    if getattr(args, "examples", None) and args.format:
        raise UsageError("--format applies to --input, not to --examples (always TFRecord)")
    rows = getattr(args, "batch_size", None)
    if rows is not None and rows < 1:
        raise UsageError(f"--batch-size must be positive, not {rows}")


def missing_values(args: argparse.Namespace) -> tuple[str, ...]:
    """The CSV missing-value markers from ``--missing-values`` (the empty field always)."""
    return ("",) + tuple(v for v in args.missing_values.split(",") if v)


def read_transforms(args: argparse.Namespace, **kwargs) -> dict:
    """``{split or None: ReadExamples}`` for the input the arguments name.

    ``--input`` gives one entry keyed None; ``--examples`` one per split.
    """
    from conveyor.beam_utils.io import DEFAULT_BATCH_SIZE, ReadExamples, read_examples_dir

    check_input_arguments(args)
    kwargs.setdefault("batch_size", getattr(args, "batch_size", None) or DEFAULT_BATCH_SIZE)
    if args.input:
        return {
            None: ReadExamples(
                args.input,
                format=args.format,
                missing_values=missing_values(args),
                delimiter=args.delimiter,
                **kwargs,
            )
        }
    from conveyor.beam_utils.files import examples_splits

    return {
        s: read_examples_dir(args.examples, s, **kwargs) for s in examples_splits(args.examples)
    }
