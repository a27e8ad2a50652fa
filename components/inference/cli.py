"""``conveyor infer``: run a SavedModel over examples in bulk.

Writes, under ``--output``:

* ``inference_result/prediction_logs-SSSSS-of-NNNNN.gz``: gzip TFRecords of
  ``tensorflow_serving`` ``PredictionLog`` (TFX BulkInferrer's layout);
* ``output_examples/Split-<name>/data_tfrecord-*.gz`` with ``--output-examples``:
  the input examples with one prediction column per signature output;
* ``dead_letters/Split-<name>/dead_letters-*.gz``: rows whose inference batch
  raised, with the exception text in an ``inference_error`` column;
* ``inference_summary.json``: the counts, which reconcile
  (examples in = predicted + dead-lettered).

The pipeline is :func:`conveyor.components.inference.component.run_bulk_inference`.

The model, signature and input features are checked before the pipeline
starts; a mismatch is an input error (exit status 2).
"""

from __future__ import annotations

import argparse

HELP = "Run a TensorFlow SavedModel over examples (PredictionLogs, optional examples with predictions)."

#: Split name used for ``--input`` (a plain file pattern has no splits).
INPUT_SPLIT = "all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="PATTERN", help="CSV, TFRecord or Parquet file(s) (glob)")
    src.add_argument(
        "--examples", metavar="DIR", help="an Examples directory (DIR/Split-<name>/*.gz)"
    )
    parser.add_argument(
        "--splits", metavar="NAMES", help="comma-separated splits of --examples (default: all)"
    )
    parser.add_argument(
        "--format",
        choices=("csv", "tfrecord", "parquet"),
        help="format of --input (default: from the names)",
    )
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="a TensorFlow SavedModel directory"
    )
    parser.add_argument(
        "--signature",
        default="serving_default",
        metavar="NAME",
        help="signature to run (default: serving_default)",
    )
    parser.add_argument(
        "--batch-size",
        default="256:4096",
        metavar="MIN:MAX",
        help="bounds of inference batches, in rows (default 256:4096); one number sets both",
    )
    parser.add_argument(
        "--input-mode",
        choices=("examples", "tensors"),
        help="feed serialized tf.Examples or one tensor per named input (default: from the signature)",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--output-examples",
        action="store_true",
        help="also write the examples with prediction columns",
    )
    parser.add_argument(
        "--prediction-prefix", default="", metavar="TEXT", help="prefix of prediction column names"
    )


def parse_batch_size(text: str) -> tuple[int, int]:
    """``"64:1024"`` -> ``(64, 1024)``; ``"128"`` -> ``(128, 128)``."""
    from conveyor.beam_utils.errors import UsageError

    lo, sep, hi = text.partition(":")
    try:
        lo_n = int(lo)
        hi_n = int(hi) if sep else lo_n
    except ValueError:
        raise UsageError(f"--batch-size must be MIN:MAX or N, not {text!r}") from None
    if lo_n < 1 or hi_n < lo_n:
        raise UsageError(f"--batch-size needs 1 <= MIN <= MAX, got {text!r}")
    return lo_n, hi_n


def run(args, beam_args) -> int:
    from conveyor.beam_utils import files
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.components.inference.component import run_bulk_inference, summary_line

    min_batch, max_batch = parse_batch_size(args.batch_size)
    inputs = [args.input, args.examples, args.model]
    check_output(args.output, inputs=inputs)
    if args.examples:
        splits = files.examples_splits(args.examples)
        if args.splits:
            wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
            unknown = [s for s in wanted if s not in splits]
            if unknown:
                raise UsageError(
                    f"{args.examples} has no split(s) {', '.join(unknown)} (it has {', '.join(splits)})"
                )
            splits = {s: splits[s] for s in wanted}
        fmt = "tfrecord"
    else:
        if args.splits:
            raise UsageError("--splits goes with --examples")
        splits = {INPUT_SPLIT: args.input}
        fmt = args.format

    with staged_output(args.output, inputs=inputs) as output:
        summary = run_bulk_inference(
            splits,
            args.model,
            output,
            format=fmt,
            signature=args.signature,
            min_batch_size=min_batch,
            max_batch_size=max_batch,
            input_mode=args.input_mode,
            prediction_prefix=args.prediction_prefix,
            output_examples=args.output_examples,
            beam_args=beam_args,
        )
    print(summary_line(summary, args.output))
    return 0
