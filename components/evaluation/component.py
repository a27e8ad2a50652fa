"""``run_evaluation``: read examples, evaluate, write the report, in one call.

``conveyor evaluate`` and the :class:`~conveyor.components.evaluation.node.Evaluator`
pipeline component both call it. Under ``output_dir`` it writes what
:class:`~conveyor.components.evaluation.transform.WriteEvaluation` writes, and
``rejected_rows_count.json``: the input rows the readers rejected (one number).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.io import ReadExamples
from conveyor.beam_utils.options import pipeline_options
from conveyor.beam_utils.read import with_one_schema
from conveyor.beam_utils.summary import SumCounts, count_one, count_rows, count_value, reconcile
from conveyor.components.evaluation.report import CROSS_SLICE_FILE
from conveyor.components.evaluation.transform import (
    DEFAULT_HOT_KEY_FANOUT,
    EvaluateModel,
    WriteEvaluation,
)

#: The rows the readers rejected, beside the report.
REJECTED_FILE = "rejected_rows_count.json"


def _read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def run_evaluation(
    examples: Mapping[str, ReadExamples],
    settings,
    output_dir: str,
    *,
    model_path: str | None = None,
    baseline_model_path: str | None = None,
    signature: str = "serving_default",
    beam_args: Sequence[str] | None = None,
    hot_key_fanout: int = DEFAULT_HOT_KEY_FANOUT,
    images: bool = True,
) -> dict:
    """Evaluates the examples and writes the report under ``output_dir``.

    Args:
      examples: ``{split: ReadExamples}``. With several splits their rows are
        evaluated together, as one data set (TFX Evaluator's ``example_splits``),
        every split read with the first reader's schema.
      settings: :class:`EvalSettings` or a ``tfma.EvalConfig`` in any form.
      output_dir: where the report goes.
      model_path, baseline_model_path, signature, hot_key_fanout: as
        :class:`~conveyor.components.evaluation.transform.EvaluateModel` takes them.
      beam_args: Beam flags.
      images: also write the PNG plots.

    Returns:
      ``{"metrics", "validation", "blessed", "rows_rejected_on_read"}`` as written
      (and ``"cross_slice_metrics"`` with cross slicing specs).
      The readers' counts reconcile (rows read = examples + rows rejected), or
      the pipeline fails.
    """
    if not examples:
        raise UsageError("no examples to evaluate")
    reads = with_one_schema(examples)
    evaluate = EvaluateModel(
        settings,
        next(iter(reads.values())).arrow_schema,
        model_path=model_path,
        baseline_model_path=baseline_model_path,
        signature=signature,
        hot_key_fanout=hot_key_fanout,
    )
    rejected_path = FileSystems.join(output_dir, REJECTED_FILE)
    try:
        with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
            results = {name: pipeline | f"Read[{name}]" >> read for name, read in reads.items()}
            batches = [r.examples for r in results.values()]
            if len(batches) > 1:
                batches = batches | "AllSplits" >> beam.Flatten()
            else:
                (batches,) = batches
            evaluation = batches | "Evaluate" >> evaluate
            evaluation.report | "Write" >> WriteEvaluation(output_dir, images=images)
            counts, how = {}, {}
            for name, r in results.items():
                for count, pcoll, fn in (
                    ("read", r.rows_read, count_value),
                    ("accepted", r.examples, count_rows),
                    ("rejected", r.rejected, count_one),
                ):
                    counts[f"{count}[{name}]"] = pcoll
                    how[f"{count}[{name}]"] = fn
            counts | "CountRows" >> SumCounts(how, _write_rejected, list(reads), rejected_path)
    finally:
        if model_path:
            from conveyor.components.evaluation.preprocessing import release_preprocessing_models
            from conveyor.components.inference import release_models

            release_preprocessing_models()
            release_models()  # the models, while TensorFlow is up (not at exit)
    validation = _read_json(FileSystems.join(output_dir, "validation.json"))
    out = {
        "metrics": _read_json(FileSystems.join(output_dir, "metrics.json")),
        "validation": validation,
        "blessed": validation["blessed"],
        "rows_rejected_on_read": int(_read_json(rejected_path)),
    }
    cross = FileSystems.join(output_dir, CROSS_SLICE_FILE)
    if FileSystems.exists(cross):
        out["cross_slice_metrics"] = _read_json(cross)
    return out


def _write_rejected(totals: Mapping[str, int], splits: list, path: str) -> int:
    """Checks each split's counts reconcile and writes the rows rejected in all."""
    from conveyor.beam_utils.files import write_text

    for name in splits:
        t = {count: totals[f"{count}[{name}]"] for count in ("read", "accepted", "rejected")}
        reconcile(t["read"], t["accepted"], t["rejected"], f"split {name!r}")
    rejected = sum(totals[f"rejected[{name}]"] for name in splits)
    write_text(path, f"{int(rejected)}\n")
    return rejected
