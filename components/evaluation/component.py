"""``run_evaluation``: read examples, evaluate, write the report, in one call."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils.io import ReadExamples
from conveyor.beam_utils.options import pipeline_options
from conveyor.components.evaluation.transform import (
    DEFAULT_HOT_KEY_FANOUT,
    EvaluateModel,
    WriteEvaluation,
)


def _read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def run_evaluation(
    source,
    settings,
    output_dir: str,
    *,
    model_path: str | None = None,
    baseline_model_path: str | None = None,
    signature: str = "serving_default",
    beam_args=None,
    hot_key_fanout: int = DEFAULT_HOT_KEY_FANOUT,
    images: bool = True,
) -> dict:
    """Evaluates the examples of ``source`` and writes the report under ``output_dir``.

    Args:
      source: a file pattern (CSV, TFRecord, Parquet) or a :class:`ReadExamples`.
      settings: :class:`EvalSettings` or a ``tfma.EvalConfig`` in any form.

    Returns:
      ``{"metrics", "validation", "blessed", "rows_rejected_on_read"}`` as written.
    """
    read = source if isinstance(source, ReadExamples) else ReadExamples(source)
    evaluate = EvaluateModel(
        settings,
        read.arrow_schema,
        model_path=model_path,
        baseline_model_path=baseline_model_path,
        signature=signature,
        hot_key_fanout=hot_key_fanout,
    )
    rejected_dir = FileSystems.join(output_dir, "rejected_rows_count.json")
    try:
        with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
            result = pipeline | "Read" >> read
            evaluation = result.examples | "Evaluate" >> evaluate
            evaluation.report | "Write" >> WriteEvaluation(output_dir, images=images)
            (
                result.rejected
                | "CountRejected" >> beam.combiners.Count.Globally()
                | "WriteRejected" >> beam.Map(_write_count, rejected_dir)
            )
    finally:
        if model_path:
            from conveyor.components.inference.handler import release_models

            release_models()  # the models, while TensorFlow is up (not at exit)
    validation = _read_json(FileSystems.join(output_dir, "validation.json"))
    return {
        "metrics": _read_json(FileSystems.join(output_dir, "metrics.json")),
        "validation": validation,
        "blessed": validation["blessed"],
        "rows_rejected_on_read": int(_read_json(rejected_dir)),
    }


def _write_count(count: int, path: str) -> None:
    from conveyor.beam_utils.files import write_text

    write_text(path, f"{int(count)}\n")
