"""Model evaluation: metrics per slice, thresholds, and a blessing (TFX's Evaluator).

:class:`EvaluateModel` turns RecordBatches with labels, plus a SavedModel or a
prediction column, into metrics per slice computed by our own mergeable
CombineFns (no TFMA at run time), checks value and change thresholds, and
decides the blessing; :class:`WriteEvaluation` writes ``metrics.json``,
``validation.json``, ``blessing/BLESSED|NOT_BLESSED``, PNG plots and an HTML
page. Settings come from a ``tfma.EvalConfig`` (proto, JSON or text) via
:func:`settings_from_eval_config`, or from :func:`make_settings`.
:func:`run_evaluation` runs it all on ``{split: ReadExamples}``; the
``conveyor evaluate`` command and the :class:`Evaluator` node call it.

The pieces are public for steps that compute the same metrics their own way
(the monitor, per window): :class:`MetricsCombineFn` (a slice's metrics as a
CombineFn), :class:`BatchSlicer` (a batch into per-slice chunks),
:class:`MetricsKernel` (the accumulator arithmetic), :func:`slice_entry` and
:func:`build_report` (one slice's result, and the report with validation and
blessing), :data:`OVERALL` (the slice of all examples).

Example::

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.evaluation import run_evaluation, make_settings
    report = run_evaluation({"eval": ReadExamples("flights.csv")},
                            make_settings("late", "p_late", slice_by=["carrier"]), "out/eval")
    print(report["blessed"], report["metrics"][0]["metrics"]["auc"])

Names are imported on first use, so ``conveyor.components.evaluation.cli``
loads without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "OVERALL": "config",
    "EvalSettings": "config",
    "MetricSpec": "config",
    "ModelSettings": "config",
    "SliceSpec": "config",
    "Threshold": "config",
    "ThresholdRule": "config",
    "load_eval_config": "config",
    "make_settings": "config",
    "settings_from_eval_config": "config",
    "MetricsKernel": "metrics",
    "build_report": "report",
    "slice_entry": "report",
    "write_report": "report",
    "BatchSlicer": "slicing",
    "EvaluateModel": "transform",
    "EvaluationResult": "transform",
    "MetricsCombineFn": "transform",
    "WriteEvaluation": "transform",
    "Evaluator": "node",
    "run_evaluation": "component",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
