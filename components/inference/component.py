"""The bulk inference step as a function: :func:`run_bulk_inference`.

``conveyor infer`` and the :class:`~conveyor.components.inference.node.BulkInferrer`
pipeline component both call it. Under ``output_dir`` it writes:

* ``inference_result/prediction_logs-SSSSS-of-NNNNN.gz``: gzip TFRecords of
  ``tensorflow_serving`` ``PredictionLog`` (TFX BulkInferrer's layout);
* ``output_examples/Split-<name>/data_tfrecord-*.gz`` with ``output_examples``:
  the input examples with one prediction column per signature output;
* ``dead_letters/Split-<name>/dead_letters-*.gz``: rows whose inference batch
  raised, with the exception text in an ``inference_error`` column;
* ``inference_summary.json``: the counts (see :func:`run_bulk_inference`).

The counts are computed by the pipeline itself, not read from runner metrics
(which some runners do not report); the Beam counters of
:mod:`~conveyor.components.inference.transform` are kept for monitoring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import files
from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.io import ReadExamples, WriteExamples
from conveyor.beam_utils.read import with_one_schema
from conveyor.beam_utils.summary import SumCounts, count_one, count_rows, count_value, reconcile
from conveyor.components.inference.handler import release_models
from conveyor.components.inference.transform import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MIN_BATCH_SIZE,
    AppendPredictions,
    BulkInference,
    WritePredictionLogs,
    dead_letter_examples,
)

INFERENCE_RESULT_DIR = "inference_result"
OUTPUT_EXAMPLES_DIR = "output_examples"
DEAD_LETTERS_DIR = "dead_letters"
SUMMARY_FILE = "inference_summary.json"

#: The per-split counts, in the order the summary lists them.
COUNTS = (
    "rows_read",
    "rows_rejected_on_read",
    "examples_in",
    "examples_predicted",
    "examples_dead_lettered",
)


def _prediction_rows(result) -> int:
    """A BatchPrediction or a DeadLetter counts the rows of its examples."""
    return result.examples.num_rows


#: How an element of each count's PCollection counts.
_HOW = {
    "rows_read": count_value,  # the reader's rows-read figures
    "rows_rejected_on_read": count_one,  # one element per rejected row
    "examples_in": count_rows,  # RecordBatches
    "examples_predicted": _prediction_rows,
    "examples_dead_lettered": _prediction_rows,
}


def _count_key(split: str, count: str) -> str:
    return f"{count}[{split}]"


def run_bulk_inference(
    examples: Mapping[str, ReadExamples],
    model_dir: str,
    output_dir: str,
    *,
    signature: str = "serving_default",
    min_batch_size: int = DEFAULT_MIN_BATCH_SIZE,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    input_mode: str | None = None,
    prediction_prefix: str = "",
    output_examples: bool = False,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Runs a SavedModel signature over examples as a Beam pipeline; returns the summary.

    Args:
      examples: ``{split name: ReadExamples}``; each split is read, inferred and
        written (output examples, dead letters) on its own; the prediction logs
        of all splits go to one ``inference_result`` directory. Every split is
        read with the first split's schema (its reader's, given or inferred),
        so the model sees one set of feature types.
      model_dir: a TensorFlow SavedModel directory.
      output_dir: where the outputs go (see the module docstring).
      signature: the signature to run.
      min_batch_size, max_batch_size: bounds, in rows, of inference batches.
      input_mode: ``examples`` or ``tensors``; None decides from the signature.
      prediction_prefix: prefix of prediction column names (``output_examples``).
      output_examples: also write the examples with prediction columns.
      beam_args: Beam flags.

    Returns:
      the summary written to ``<output_dir>/inference_summary.json``:
      ``{"model", "signature", "splits": [names], "rows_read",
      "rows_rejected_on_read", "examples_in", "examples_predicted",
      "examples_dead_lettered", "split_counts": {split: {count: n}}}``. The
      counts reconcile, per split and in total: ``examples_in ==
      examples_predicted + examples_dead_lettered`` and ``rows_read ==
      examples_in + rows_rejected_on_read``; if they do not, the pipeline fails
      and no summary is written.

    Raises:
      InputError, UsageError: before the pipeline starts, for a missing input,
        a bad model path or signature, or features the model cannot take.
    """
    from conveyor.beam_utils.options import pipeline_options

    if not examples:
        raise UsageError("no splits to run inference on")
    # Everything is checked here, before the pipeline runs.
    reads = with_one_schema(examples)
    schema = next(iter(reads.values())).arrow_schema
    infer = {
        name: BulkInference(
            model_dir,
            schema,
            signature,
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            input_mode=input_mode,
            prediction_prefix=prediction_prefix,
        )
        for name in reads
    }

    pipeline = beam.Pipeline(options=pipeline_options(beam_args))
    all_predictions = []
    counts, how = {}, {}
    encoder = None
    for name, read_transform in reads.items():
        read = pipeline | f"Read[{name}]" >> read_transform
        result = read.examples | f"Infer[{name}]" >> infer[name]
        encoder = result.log_encoder
        all_predictions.append(result.predictions)
        if output_examples:
            (
                result.predictions
                | f"AppendPredictions[{name}]"
                >> AppendPredictions(result.prediction_schema, result.prediction_columns)
                | f"WriteExamples[{name}]"
                >> WriteExamples(FileSystems.join(output_dir, OUTPUT_EXAMPLES_DIR), split=name)
            )
        (
            result.dead_letters
            | f"DeadLetterRows[{name}]" >> beam.Map(dead_letter_examples)
            | f"WriteDeadLetters[{name}]"
            >> WriteExamples(
                FileSystems.join(output_dir, DEAD_LETTERS_DIR),
                split=name,
                file_prefix="dead_letters",
            )
        )
        for count, pcoll in zip(
            COUNTS,
            (read.rows_read, read.rejected, read.examples, result.predictions, result.dead_letters),
            strict=True,
        ):
            counts[_count_key(name, count)] = pcoll
            how[_count_key(name, count)] = _HOW[count]
    (
        all_predictions
        | "AllPredictions" >> beam.Flatten()
        | "WritePredictionLogs"
        >> WritePredictionLogs(FileSystems.join(output_dir, INFERENCE_RESULT_DIR), encoder)
    )
    info = {"model": model_dir, "signature": signature, "splits": list(reads)}
    counts | "Summary" >> SumCounts(how, _write_summary, info, output_dir)
    path = FileSystems.join(output_dir, SUMMARY_FILE)
    if FileSystems.exists(path):  # an earlier run's: it must not pass for this one's
        FileSystems.delete([path])
    try:
        pipeline.run().wait_until_finish()
    finally:
        release_models()  # while TensorFlow is up, not at exit (see release_models)

    if not FileSystems.exists(path):
        raise RuntimeError(f"bulk inference finished without writing {path}")
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def summarize(counts: Mapping[tuple[str, str], int], info: Mapping) -> dict:
    """The summary from ``{(split, count name): n}``; raises if the counts do not reconcile."""
    split_counts = {
        name: {c: int(counts.get((name, c), 0)) for c in COUNTS} for name in info["splits"]
    }
    summary = {
        "model": info["model"],
        "signature": info["signature"],
        "splits": list(info["splits"]),
        **{c: sum(s[c] for s in split_counts.values()) for c in COUNTS},
        "split_counts": split_counts,
    }
    for name, s in split_counts.items():
        if s["examples_in"] != s["examples_predicted"] + s["examples_dead_lettered"]:
            raise RuntimeError(
                f"split {name!r}: examples in ({s['examples_in']}) != predicted "
                f"({s['examples_predicted']}) + dead-lettered ({s['examples_dead_lettered']})"
            )
        reconcile(s["rows_read"], s["examples_in"], s["rows_rejected_on_read"], f"split {name!r}")
    return summary


def _write_summary(totals: Mapping[str, int], info: Mapping, output_dir: str) -> dict:
    """Writes ``inference_summary.json`` once the counts reconcile; returns the summary."""
    counts = {
        (split, count): totals.get(_count_key(split, count), 0)
        for split in info["splits"]
        for count in COUNTS
    }
    summary = summarize(counts, info)
    files.write_text(
        FileSystems.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
    )
    return summary


def summary_line(summary: Mapping, output_dir: str) -> str:
    """The one-line report ``conveyor infer`` prints."""
    rejected = summary["rows_rejected_on_read"]
    return (
        f"{summary['examples_in']} examples in, {summary['examples_predicted']} predicted, "
        f"{summary['examples_dead_lettered']} dead-lettered"
        + (f", {rejected} rows rejected on read" if rejected else "")
        + f"; output in {output_dir}"
    )
