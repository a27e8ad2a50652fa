"""``EvaluateModel``: metrics per slice for RecordBatches with labels.

Example (model-free, predictions already in a column)::

    import apache_beam as beam
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.evaluation import EvaluateModel, WriteEvaluation, make_settings

    settings = make_settings("late", "p_late", slice_by=["carrier"])
    with beam.Pipeline() as p:
        read = p | ReadExamples("flights.csv")
        result = read.examples | EvaluateModel(settings, schema=read.arrow_schema)
        result.report | WriteEvaluation("out/eval")

Or with a SavedModel (run through :class:`~conveyor.components.inference.BulkInference`)::

    EvaluateModel(settings, schema, model_path="model/", baseline_model_path="old_model/")

Each input batch is split by slice with numpy (per batch, not per row); the
pieces go to one ``CombinePerKey`` over every slice with hot-key fanout, whose
CombineFn keeps exact sums and a fixed-bucket prediction histogram per slice
(see :mod:`~conveyor.components.evaluation.metrics`). A last step gathers the
slices, checks the thresholds and decides the blessing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.components.evaluation import report as report_lib
from conveyor.components.evaluation.config import (
    OVERALL,
    EvalSettings,
    config_has_baseline_column,
    load_eval_config,
    settings_from_eval_config,
)
from conveyor.components.evaluation.metrics import Chunk, MetricsKernel, SliceAccumulator
from conveyor.components.evaluation.preprocessing import (
    DEAD,
    PreprocessFn,
    check_models_with_preprocessing,
    names_of,
    plan_preprocessing,
    resolve_columns,
)
from conveyor.components.evaluation.slicing import BatchSlicer

METRICS_NAMESPACE = "conveyor.evaluation"
DEFAULT_HOT_KEY_FANOUT = 4
CANDIDATE_PREFIX = "__candidate__/"
BASELINE_PREFIX = "__baseline__/"


class EvaluationResult(NamedTuple):
    """The outputs of :class:`EvaluateModel`.

    Attributes:
      slices: PCollection of per-slice dicts (``slice``, ``slice_key``,
        ``example_count`` and, per model name, metrics, plots, problems and
        confidence intervals).
      report: PCollection with one dict: ``metrics`` (one entry per slice,
        the overall slice first), ``plots``, ``validation`` and ``blessed``.
    """

    slices: beam.PCollection
    report: beam.PCollection


@beam.typehints.with_input_types(Chunk)
@beam.typehints.with_output_types(SliceAccumulator)
class MetricsCombineFn(beam.CombineFn):
    """All metrics of one slice: Chunks in, a SliceAccumulator out (mergeable, works per window).

    Combine per slice key (``(slice key, Chunk)`` pairs from :class:`BatchSlicer`)
    and read the accumulator with :meth:`MetricsKernel.outputs`.
    """

    def __init__(self, settings: EvalSettings):
        self._settings = settings
        self._kernel = None

    @property
    def kernel(self) -> MetricsKernel:
        """The :class:`MetricsKernel` of the settings (made where the fn runs)."""
        if self._kernel is None:
            self._kernel = MetricsKernel(self._settings)
        return self._kernel

    def create_accumulator(self):
        return self.kernel.create()

    def add_input(self, accumulator, chunk):
        return self.kernel.add(accumulator, chunk)

    def merge_accumulators(self, accumulators):
        return self.kernel.merge(accumulators)

    def extract_output(self, accumulator):
        return accumulator

    def __getstate__(self):
        return {"settings": self._settings}

    def __setstate__(self, state):
        self._settings = state["settings"]
        self._kernel = None


class _SliceFn(beam.DoFn):
    """A RecordBatch -> ``(slice key, Chunk)`` per slice it has rows in."""

    def __init__(self, settings: EvalSettings, prediction_columns, checked: bool, columns=None):
        self._settings = settings
        self._predictions = list(prediction_columns)
        self._checked = checked
        self._columns = columns
        self._rows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "examples_in")

    def setup(self):
        self._slicer = _slicer(self._settings, self._predictions, self._columns)
        self._schema = None

    def process(self, batch: pa.RecordBatch):
        if not self._checked and batch.schema != self._schema:
            self._slicer.check_schema(batch.schema)
            self._schema = batch.schema
        self._rows.inc(batch.num_rows)
        yield from self._slicer.split(batch)


def _slicer(settings: EvalSettings, prediction_columns, columns) -> BatchSlicer:
    """The BatchSlicer reading labels, weights and slices where ``columns``
    (a :class:`~.preprocessing.ResolvedColumns`, or None: their own names) says."""
    if columns is None:
        return BatchSlicer(settings, prediction_columns)
    return BatchSlicer(
        settings,
        prediction_columns,
        label_columns=columns.labels,
        weight_columns=columns.weights,
        slice_columns=columns.slices,
    )


def _inference(model, path: str, schema: pa.Schema, signature: str):
    """BulkInference of one model spec's prediction signature (a missing one names the spec)."""
    from conveyor.components.inference import BulkInference

    prefix = BASELINE_PREFIX if model.is_baseline else CANDIDATE_PREFIX
    try:
        return BulkInference(path, schema, signature, prediction_prefix=prefix)
    except InputError as e:
        if "has no signature" not in str(e):
            raise
        raise InputError(f"model spec {model.name!r} (signature_name {signature!r}): {e}") from None


def _slice_output(item, settings: EvalSettings):
    key, acc = item
    kernel = MetricsKernel(settings)
    return report_lib.slice_entry(key, acc.rows, kernel.outputs(acc))


def _finish(entries: list, inference_failures: int, settings: EvalSettings) -> dict:
    return report_lib.build_report(settings, entries, inference_failures=inference_failures)


def _count_rows(letter) -> int:
    return letter.examples.num_rows


def _baseline_settings(
    settings: EvalSettings, model_path: str | None, baseline_model_path: str | None
) -> EvalSettings:
    """The settings with a baseline spec if there is a baseline, without one if not.

    With models, the baseline is ``baseline_model_path`` (a spec is added when
    the settings have none). Model-free, it is the baseline spec's prediction
    column. Without a baseline, TFX's Evaluator drops the baseline spec and
    skips the change thresholds (:meth:`EvalSettings.without_baseline`).
    """
    if baseline_model_path:
        return settings.with_baseline()
    if settings.baseline is None:
        return settings
    has_baseline = False if model_path else bool(settings.baseline.prediction_key)
    return settings if has_baseline else settings.without_baseline()


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(dict[str, Any])
class EvaluateModel(beam.PTransform):
    """RecordBatches (with labels) -> metrics per slice, validation and blessing.

    The output is an :class:`EvaluationResult` of two PCollections of dicts
    (one per slice, and the one report).

    Args:
      settings: an :class:`EvalSettings`, or a ``tfma.EvalConfig`` (proto,
        JSON or text form, or a path to one).
      schema: the Arrow schema of the batches. With it, a missing or
        non-numeric label / prediction / weight / slicing column is an
        :class:`InputError` at construction; without, at run time.
      model_path: a SavedModel to compute the candidate's predictions with;
        the candidate's ``prediction_key`` then names one of its signature's
        outputs (optional when it has one output). Without a model,
        ``prediction_key`` names a column of the examples.
      baseline_model_path: a SavedModel for the baseline (with ``model_path``;
        the settings get a baseline spec, the candidate's, if they have none).
        With models and no baseline model, or model-free with a baseline spec
        that names no prediction column, there is no baseline: as TFX's
        Evaluator does, the baseline spec is dropped and the change
        thresholds are skipped (listed in the validation), not failed.
      signature: the prediction signature of a model whose spec names no
        ``signature_name`` (a spec's ``signature_name`` is its own).

      hot_key_fanout: intermediate keys per slice in the combine.

    A model spec's ``preprocessing_function_names`` (signatures of its
    SavedModel, e.g. a TFX module file's ``transform_features``) run on the raw
    examples first; their outputs are where its label, weight and the slicing
    features are looked up before the raw columns (see
    :mod:`~conveyor.components.evaluation.preprocessing`). A batch they fail on
    counts as failed inference.
    """

    def __init__(
        self,
        settings,
        schema: pa.Schema | None = None,
        *,
        model_path: str | None = None,
        baseline_model_path: str | None = None,
        signature: str = "serving_default",
        hot_key_fanout: int = DEFAULT_HOT_KEY_FANOUT,
    ):
        super().__init__()
        if baseline_model_path and not model_path:
            raise UsageError("a baseline model goes with a candidate model (model_path)")
        if model_path and schema is None:
            raise UsageError("running a model needs the examples' schema")
        if not isinstance(settings, EvalSettings):
            config = load_eval_config(settings)
            has_baseline = (
                bool(baseline_model_path) if model_path else config_has_baseline_column(config)
            )
            settings = settings_from_eval_config(config, has_baseline=has_baseline)
        if OVERALL not in settings.slices:  # problem counts and blessing read the overall slice
            settings = settings.with_slices((OVERALL, *settings.slices))
        settings = _baseline_settings(settings, model_path, baseline_model_path)
        self.settings = settings
        self.schema = schema
        self.hot_key_fanout = hot_key_fanout
        self.inference = []
        columns = []
        schema_now = schema
        paths = {settings.candidate.name: model_path}
        if settings.baseline is not None:
            paths[settings.baseline.name] = baseline_model_path
        check_models_with_preprocessing(settings, paths)
        for model in settings.models:
            path = paths.get(model.name)
            if path:
                infer = _inference(model, path, schema_now, model.signature_name or signature)
                outputs = list(infer.signature.outputs)
                key = model.prediction_key
                if key is None:
                    if len(outputs) != 1:
                        raise UsageError(
                            f"model {path} has outputs {outputs}; name one as the prediction key"
                        )
                    key = outputs[0]
                elif key not in outputs:
                    raise InputError(
                        f"model {path} (signature {infer.signature.name!r}) has no output "
                        f"{key!r}; outputs: {outputs}"
                    )
                self.inference.append(infer)
                schema_now = infer.prediction_schema
                columns.append(infer.prediction_columns[key])
            else:
                if not model.prediction_key:
                    raise UsageError(
                        f"model spec {model.name!r} needs a prediction_key (a column) or a model"
                    )
                columns.append(model.prediction_key)
        self.preprocessing = []
        for model in settings.models:
            path = paths.get(model.name)
            if path:
                prefix = BASELINE_PREFIX if model.is_baseline else CANDIDATE_PREFIX
                pre = plan_preprocessing(model, path, schema, schema_now, prefix)
                if pre is not None:
                    self.preprocessing.append(pre)
                    schema_now = pre.output_schema
        self.prediction_columns = columns
        if schema_now is not None:
            self.columns = resolve_columns(settings, schema_now, names_of(self.preprocessing))
        else:
            self.columns = None
        self.slicer = _slicer(settings, columns, self.columns)
        if schema_now is not None:
            self.slicer.check_schema(schema_now)
        self.input_schema = schema_now

    def expand(self, batches):
        settings = self.settings
        dead_counts = []
        for i, infer in enumerate(self.inference):
            from conveyor.components.inference import AppendPredictions

            result = batches | f"Infer{i}" >> infer
            dead_counts.append(result.dead_letters | f"DeadRows{i}" >> beam.Map(_count_rows))
            batches = result.predictions | f"AppendPredictions{i}" >> AppendPredictions(
                result.prediction_schema, result.prediction_columns
            )
        for i, pre in enumerate(self.preprocessing):
            result = batches | f"Preprocess{i}" >> beam.ParDo(PreprocessFn(pre)).with_outputs(
                DEAD, main="batches"
            )
            dead_counts.append(result[DEAD])
            batches = result.batches
        fanout = self.hot_key_fanout
        slices = (
            batches
            | "SplitBySlice"
            >> beam.ParDo(
                _SliceFn(
                    settings, self.prediction_columns, self.input_schema is not None, self.columns
                )
            )
            | "ComputeMetrics"
            >> beam.CombinePerKey(MetricsCombineFn(settings)).with_hot_key_fanout(fanout)
            | "SliceOutputs" >> beam.Map(_slice_output, settings)
        )
        pipeline = batches.pipeline
        if dead_counts:
            dead = (
                dead_counts
                | "AllDeadRows" >> beam.Flatten()
                | "SumDeadRows" >> beam.CombineGlobally(sum)
            )
        else:
            dead = pipeline | "NoDeadRows" >> beam.Create([0])
        report = (
            slices
            | "GatherSlices" >> beam.combiners.ToList()
            | "Validate" >> beam.Map(_finish, beam.pvalue.AsSingleton(dead), settings)
        )
        return EvaluationResult(slices, report)


class _WriteFn(beam.DoFn):
    def __init__(self, output_dir: str, html: bool, images: bool):
        self._output_dir = output_dir
        self._html = html
        self._images = images

    def process(self, report):
        report_lib.write_report(report, self._output_dir, html=self._html, images=self._images)
        yield self._output_dir


@beam.typehints.with_input_types(dict[str, Any])
@beam.typehints.with_output_types(str)
class WriteEvaluation(beam.PTransform):
    """Writes an evaluation report under ``output_dir``.

    ``metrics.json``, ``plots.json``, ``validation.json``,
    ``blessing/BLESSED`` or ``blessing/NOT_BLESSED``, ``index.html`` and
    ``plots/*.png`` (ROC and calibration per slice; with ``images``). The
    report (:attr:`EvaluationResult.report`) in; ``output_dir`` out, once written.
    """

    def __init__(self, output_dir: str, html: bool = True, images: bool = True):
        super().__init__()
        self.output_dir = output_dir
        self.html = html
        self.images = images

    def expand(self, report):
        return report | "Write" >> beam.ParDo(_WriteFn(self.output_dir, self.html, self.images))
