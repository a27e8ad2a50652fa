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

The pipeline is :func:`conveyor.components.inference.run_bulk_inference`; the
input flags are the shared ones of :mod:`conveyor.beam_utils.cli_args`.

The model, signature and input features are checked before the pipeline
starts; a mismatch is an input error (exit status 2).
"""

from __future__ import annotations

import argparse

HELP = "Run a TensorFlow SavedModel over examples: PredictionLogs, optionally examples with predictions."

#: Split name used for ``--input`` (a plain file pattern has no splits).
INPUT_SPLIT = "all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared input flags (``--input`` or ``--examples``, ``--format``, CSV
    ``--missing-values`` and ``--delimiter``) and the model's."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    # --batch-size is the inference batches' bounds here, not the reader's batch rows.
    add_input_arguments(parser, batch_size=False)
    parser.add_argument(
        "--splits", metavar="NAMES", help="comma-separated splits of --examples (default: all)"
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
        dest="inference_batch_size",
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


def _examples(args) -> dict:
    """``{split: ReadExamples}``: ``--input`` as the split ``all``, or ``--examples``' ``--splits``."""
    from conveyor.beam_utils.cli_args import check_input_arguments, read_transforms
    from conveyor.beam_utils.errors import UsageError

    check_input_arguments(args)
    if args.input and args.splits:
        raise UsageError("--splits goes with --examples")
    reads = read_transforms(args)
    if None in reads:
        return {INPUT_SPLIT: reads[None]}
    if not args.splits:
        return reads
    wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in reads]
    if unknown:
        raise UsageError(
            f"{args.examples} has no split(s) {', '.join(unknown)} (it has {', '.join(reads)})"
        )
    return {s: reads[s] for s in wanted}


def run(args, beam_args) -> int:
    """Checks the flags, the model and the input, runs the pipeline and prints the counts."""
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.components.inference.component import run_bulk_inference, summary_line

    min_batch, max_batch = parse_batch_size(args.inference_batch_size)
    inputs = [args.input, args.examples, args.model]
    check_output(args.output, inputs=inputs)
    examples = _examples(args)

    with staged_output(args.output, inputs=inputs) as output:
        summary = run_bulk_inference(
            examples,
            args.model,
            output,
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
