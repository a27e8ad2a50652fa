"""``conveyor transform``: tf.Transform a preprocessing_fn over examples.

Reads an Examples directory (``--examples``, one split per ``Split-<name>/``)
or files (``--input``, read as the one split ``train``), analyzes the train split,
transforms every split and writes, under ``--output``:

* ``transform_graph/`` (``transform_fn/``, ``transformed_metadata/``, ``metadata/``),
  readable with ``tft.TFTransformOutput``;
* ``transformed_examples/Split-<name>/transformed_examples-SSSSS-of-NNNNN.gz``;
* ``transform_summary.json``.

A missing feature, a module file that is absent or lacks the function, and an
error in the function while it is traced, or when its ops fail on the examples,
are input errors (exit status 2).
"""

from __future__ import annotations

import argparse

HELP = "Run a tf.Transform preprocessing_fn: analyze train, transform all splits (TFX layout)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``conveyor transform``'s flags (the shared input flags, then its own)."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    add_input_arguments(parser)
    parser.add_argument(
        "--module-file",
        required=True,
        metavar="FILE",
        help="Python file that defines the preprocessing_fn",
    )
    parser.add_argument(
        "--preprocessing-fn",
        default="preprocessing_fn",
        metavar="NAME",
        help="name of the function in --module-file (default: preprocessing_fn)",
    )
    parser.add_argument(
        "--schema",
        metavar="FILE",
        help="tensorflow-metadata Schema (schema.pbtxt) of the raw features "
        "(default: the input's feature types; every feature a SparseTensor)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="where transform_graph/ and transformed_examples/ go",
    )
    parser.add_argument(
        "--train-split",
        default="train",
        metavar="NAME",
        help="the split to analyze (default: train; --input is read as this split)",
    )
    parser.add_argument(
        "--splits",
        metavar="NAMES",
        help="comma-separated splits of --examples to transform (default: all)",
    )
    parser.add_argument(
        "--analyzer-cache",
        metavar="DIR",
        help="analyzer cache to read and update: a rerun on unchanged train data skips analysis",
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=0,
        metavar="N",
        help="files per split of transformed examples (default: the runner decides)",
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs :func:`~conveyor.components.transform.component.run_transform` for the parsed flags.

    Writes ``--output`` through a staged folder (replaced only when the run
    succeeds), prints :func:`format_summary` and returns the exit status 0.
    """
    from conveyor.beam_utils.cli_args import read_transforms
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.components.transform.component import run_transform
    from conveyor.components.transform.schema import load_schema
    from conveyor.components.transform.user_fn import load_preprocessing_fn

    # The analyzer cache is read and updated in place, so the output must not hold it either.
    inputs = [args.input, args.examples, args.module_file, args.schema, args.analyzer_cache]
    check_output(args.output, inputs=inputs)
    fn = load_preprocessing_fn(args.module_file, args.preprocessing_fn)
    schema = load_schema(args.schema) if args.schema else None
    examples = read_transforms(args)
    if None in examples:
        examples = {args.train_split: examples[None]}
    if args.splits:
        wanted = [s for s in args.splits.split(",") if s]
        unknown = sorted(set(wanted) - set(examples))
        if unknown:
            raise UsageError(f"no split(s) {unknown} in the input (splits: {sorted(examples)})")
        if args.train_split not in wanted:
            wanted.append(args.train_split)
        examples = {s: examples[s] for s in wanted}
    if args.num_shards < 0:
        raise UsageError("--num-shards must be 0 or positive")
    with staged_output(args.output, inputs=inputs) as output:
        summary = run_transform(
            examples,
            output,
            fn,
            schema=schema,
            train_split=args.train_split,
            cache_dir=args.analyzer_cache,
            num_shards=args.num_shards,
            beam_args=beam_args,
        )
    print(format_summary(summary, args.output))
    return 0


def format_summary(summary: dict, output: str) -> str:
    """A few lines a person reads after a run."""
    from conveyor.dsl.layout import SPLIT_PREFIX

    analysis = "computed" if summary["analyzed"] else "all analyzers from the cache"
    lines = [
        f"Transform: {summary['preprocessing_fn']} -> {output}",
        f"  analyzed {SPLIT_PREFIX}{summary['train_split']} ({analysis}); "
        f"reads {', '.join(sorted(set(summary['analyze_columns']) | set(summary['transform_columns'])))}",
    ]
    for name in summary["splits"]:
        line = f"  {SPLIT_PREFIX}{name}: {summary['rows'][name]:,} rows transformed"
        if summary["rows_rejected"].get(name):
            line += f" ({summary['rows_rejected'][name]:,} input rows rejected)"
        lines.append(line)
    lines.append(f"  transform graph: {output}/transform_graph")
    lines.append(f"  examples: {output}/transformed_examples/{SPLIT_PREFIX}<name>/")
    return "\n".join(lines)
