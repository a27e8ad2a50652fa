"""Evaluation settings, read from a ``tfma.EvalConfig`` or built directly.

TFMA users bring their ``EvalConfig`` unchanged: as the proto message, its JSON
form or its text form (a file path or the text itself). :func:`load_eval_config`
parses it and :func:`settings_from_eval_config` turns it into
:class:`EvalSettings`, the plain, picklable description the pipeline runs on.

What is read from the config:

* ``model_specs``: ``name``, ``label_key``, ``prediction_key``,
  ``example_weight_key``, ``is_baseline`` (at most one candidate and one
  baseline), ``signature_name`` (the model's prediction signature) and
  ``preprocessing_function_names`` (its signatures that turn raw examples into
  the transformed features the label, weight and slices may be read from);
* ``slicing_specs``: the overall slice (an empty spec), ``feature_keys``
  (one slice per value, crossed when there are several keys) and
  ``feature_values`` (only those values);
* ``cross_slicing_specs``: each slice of ``baseline_spec`` compared with each
  of ``slicing_specs`` (every other slice when none), the metric being the
  baseline slice's value minus the comparison slice's, as TFMA computes it;
* ``metrics_specs``: ``metrics`` (by ``class_name``, with their JSON
  ``config``), each metric's ``threshold``, ``per_slice_thresholds`` and
  ``cross_slice_thresholds`` (value thresholds), the spec-level
  ``thresholds`` / ``per_slice_thresholds`` / ``cross_slice_thresholds`` maps
  (value thresholds and change thresholds against the baseline), and
  ``binarize.class_ids`` / ``aggregate`` (``micro_average``,
  ``macro_average``, ``weighted_macro_average``, ``class_weights``) for
  binary metrics of a multi-class model (see
  :mod:`~conveyor.components.evaluation.class_groups`);
* ``options``: ``compute_confidence_intervals`` and ``min_slice_size``.

Anything we would otherwise silently ignore is refused with a
:class:`~conveyor.beam_utils.errors.UsageError` that names it:
``slice_keys_sql`` (needs an SQL engine over the features), custom metric
modules and unknown ``class_name`` s (metrics are Conveyor's own mergeable
computations, not TFMA's or Keras' code), ``binarize.k_list`` /
``binarize.top_k_list`` / ``aggregate.top_k_list`` (top-k sub keys),
a change threshold on cross slices, multi-output models (``label_keys``,
``prediction_keys``, ``example_weight_keys``, ``output_names``), ranking
(``query_key``), and TFMA's Python preprocessing functions (``name@feature``).

As in TFX's Evaluator, whether there is a baseline is said by the caller
(``has_baseline``, from the ``baseline_model`` input), not by the config alone:
without one the baseline model spec is dropped and change thresholds are
skipped (listed in ``validation.json`` as ``skipped_change_thresholds``), so the
first run of a continuous pipeline is judged by its value thresholds alone.

This module imports neither Beam nor TensorFlow: the ``EvalConfig`` proto is
loaded from TFMA's generated ``config_pb2`` file without importing TFMA.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from conveyor.beam_utils.errors import UsageError

#: Buckets of the prediction histogram behind AUC-ROC and AUC-PR (TFMA's default).
DEFAULT_NUM_BUCKETS = 10_000
#: Buckets of the calibration plot (TFMA's default).
DEFAULT_CALIBRATION_BUCKETS = 1_000
#: Poisson bootstrap replicates for confidence intervals (TFMA's default).
DEFAULT_BOOTSTRAP_SAMPLES = 20
DEFAULT_THRESHOLD = 0.5
DEFAULT_MATRIX_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

BINARY = "binary"
MULTICLASS = "multiclass"
REGRESSION = "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)

HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
LOWER_IS_BETTER = "LOWER_IS_BETTER"

#: Why change thresholds were skipped: there is no baseline to compare with (the
#: first run of a continuous pipeline, before any model is blessed).
NO_BASELINE = "no baseline model"

# --- metric kinds ----------------------------------------------------------------
#
# Every kind of metric is one row of KINDS: what it is computed from, how its
# parameters are read from a metric's JSON config, whether it is a plot, and the
# decision thresholds at which it counts a confusion matrix. The sets of kinds
# below, the parsing in metric_spec and what EvalSettings needs all read it.

#: What a kind is computed from: probabilities in [0, 1] and labels in [0, 1] ...
PROBABILITIES = "probabilities"
#: ... a vector of class scores and an integer class label ...
CLASSES = "classes"
#: ... any finite label and prediction ...
VALUES = "values"
#: ... or the rows alone (counts).
COUNTS = "counts"


def _probability(value: float, what: str) -> float:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise UsageError(f"{what} must be in [0, 1], not {value}")
    return value


def _read_nothing(name: str, config: dict, class_name: str) -> dict:
    return {}


def _read_auc(name: str, config: dict, class_name: str) -> dict:
    method = str(config.pop("summation_method", "interpolation")).lower()
    if method != "interpolation":
        raise UsageError(f"{name}: only summation_method 'interpolation' is supported")
    config.pop("num_thresholds", None)  # the histogram's bucket count governs
    return {}


def _read_threshold(name: str, config: dict, class_name: str) -> dict:
    t = config.pop("threshold", config.pop("thresholds", DEFAULT_THRESHOLD))
    if isinstance(t, (list, tuple)):
        if len(t) != 1:
            raise UsageError(f"{name}: give one threshold (one metric per threshold), got {t}")
        t = t[0]
    return {"threshold": _probability(float(t), f"{name} threshold")}


def _read_thresholds(name: str, config: dict, class_name: str) -> dict:
    ts = config.pop("thresholds", DEFAULT_MATRIX_THRESHOLDS)
    ts = [ts] if isinstance(ts, (int, float)) else list(ts)
    if not ts:
        raise UsageError(f"{name}: thresholds is empty")
    return {"thresholds": tuple(sorted({_probability(float(t), f"{name} threshold") for t in ts}))}


def _read_calibration_plot(name: str, config: dict, class_name: str) -> dict:
    n = int(config.pop("num_buckets", DEFAULT_CALIBRATION_BUCKETS))
    if n < 1:
        raise UsageError(f"{name}: num_buckets must be positive")
    for key in ("left", "right"):
        if key in config and float(config.pop(key)) != (0.0 if key == "left" else 1.0):
            raise UsageError(f"{name}: only the range [0, 1] is supported")
    return {"num_buckets": n}


def _read_log_loss(name: str, config: dict, class_name: str) -> dict:
    if config.pop("from_logits", False):
        raise UsageError(f"{name}: from_logits is not supported; give probabilities")
    if config.pop("label_smoothing", 0):
        raise UsageError(f"{name}: label_smoothing is not supported")
    return {}


def _read_top_1(name: str, config: dict, class_name: str) -> dict:
    return {"k": 1}


def _read_top_k(name: str, config: dict, class_name: str) -> dict:
    # Keras' defaults: 5 for SparseTopKCategoricalAccuracy, 3 for TopKAccuracy.
    k = int(config.pop("k", config.pop("top_k", 5 if class_name.startswith("Sparse") else 3)))
    if k < 1:
        raise UsageError(f"{name}: k must be positive")
    return {"k": k}


def _at_threshold(spec) -> tuple[float, ...]:
    return (spec.threshold,)


def _at_thresholds(spec) -> tuple[float, ...]:
    return tuple(spec.thresholds)


@dataclasses.dataclass(frozen=True)
class MetricKind:
    """One kind of metric: what it is computed from and how its config is read.

    Attributes:
      needs: :data:`PROBABILITIES`, :data:`CLASSES`, :data:`VALUES` or :data:`COUNTS`.
      read: ``read(name, config, class_name) -> {MetricSpec field: value}``
        reads the kind's parameters from a metric's config dict, popping the
        keys it understands (the caller refuses any left over), and raises
        :class:`UsageError` naming the metric for a value it cannot take.
      plot: its value is a table (a plot), not a number; thresholds do not apply.
      confusion_at: ``confusion_at(spec) -> thresholds``: where it counts a
        confusion matrix (None: it counts none).
    """

    needs: str
    read: Callable[[str, dict, str], dict] = _read_nothing
    plot: bool = False
    confusion_at: Callable[..., tuple[float, ...]] | None = None


#: Every kind of metric: kind -> :class:`MetricKind`.
KINDS = {
    "example_count": MetricKind(COUNTS),
    "weighted_example_count": MetricKind(COUNTS),
    "auc": MetricKind(PROBABILITIES, _read_auc),
    "auc_precision_recall": MetricKind(PROBABILITIES, _read_auc),
    "binary_accuracy": MetricKind(PROBABILITIES, _read_threshold, confusion_at=_at_threshold),
    "precision": MetricKind(PROBABILITIES, _read_threshold, confusion_at=_at_threshold),
    "recall": MetricKind(PROBABILITIES, _read_threshold, confusion_at=_at_threshold),
    "f1_score": MetricKind(PROBABILITIES, _read_threshold, confusion_at=_at_threshold),
    "log_loss": MetricKind(PROBABILITIES, _read_log_loss),
    "confusion_matrix_at_thresholds": MetricKind(
        PROBABILITIES, _read_thresholds, plot=True, confusion_at=_at_thresholds
    ),
    "calibration_plot": MetricKind(PROBABILITIES, _read_calibration_plot, plot=True),
    "accuracy": MetricKind(CLASSES, _read_top_1),
    "top_k_accuracy": MetricKind(CLASSES, _read_top_k),
    "calibration": MetricKind(VALUES),
    "mean_label": MetricKind(VALUES),
    "mean_prediction": MetricKind(VALUES),
    "mean_squared_error": MetricKind(VALUES),
    "root_mean_squared_error": MetricKind(VALUES),
    "mean_absolute_error": MetricKind(VALUES),
    "r_squared": MetricKind(VALUES),
}


def _kinds(**match) -> frozenset:
    return frozenset(
        k for k, v in KINDS.items() if all(getattr(v, f) == want for f, want in match.items())
    )


#: Kinds computed from probabilities in [0, 1] and labels in [0, 1].
PROBABILITY_KINDS = _kinds(needs=PROBABILITIES)
#: Kinds over a vector of class scores and an integer class label.
MULTICLASS_KINDS = _kinds(needs=CLASSES)
#: Kinds over any finite label and prediction.
VALUE_KINDS = _kinds(needs=VALUES)
COUNT_KINDS = _kinds(needs=COUNTS)
#: Kinds whose value is a plot (a table), not a number.
PLOT_KINDS = _kinds(plot=True)
ALL_KINDS = frozenset(KINDS)

#: TFMA / Keras ``class_name`` -> (our kind, default output name).
CLASS_NAMES = {
    "ExampleCount": ("example_count", "example_count"),
    "WeightedExampleCount": ("weighted_example_count", "weighted_example_count"),
    "AUC": ("auc", "auc"),
    "AUCPrecisionRecall": ("auc_precision_recall", "auc_precision_recall"),
    "BinaryAccuracy": ("binary_accuracy", "binary_accuracy"),
    "Precision": ("precision", "precision"),
    "Recall": ("recall", "recall"),
    "F1Score": ("f1_score", "f1_score"),
    "LogLoss": ("log_loss", "log_loss"),
    "BinaryCrossEntropy": ("log_loss", "binary_crossentropy"),
    "BinaryCrossentropy": ("log_loss", "binary_crossentropy"),
    "Calibration": ("calibration", "calibration"),
    "MeanLabel": ("mean_label", "mean_label"),
    "MeanPrediction": ("mean_prediction", "mean_prediction"),
    "ConfusionMatrixAtThresholds": (
        "confusion_matrix_at_thresholds",
        "confusion_matrix_at_thresholds",
    ),
    "CalibrationPlot": ("calibration_plot", "calibration_plot"),
    "MeanSquaredError": ("mean_squared_error", "mean_squared_error"),
    "RootMeanSquaredError": ("root_mean_squared_error", "root_mean_squared_error"),
    "MeanAbsoluteError": ("mean_absolute_error", "mean_absolute_error"),
    "RSquared": ("r_squared", "r_squared"),
    "R2Score": ("r_squared", "r2_score"),
    "Accuracy": ("accuracy", "accuracy"),
    "SparseCategoricalAccuracy": ("accuracy", "sparse_categorical_accuracy"),
    "TopKAccuracy": ("top_k_accuracy", "top_k_accuracy"),
    "SparseTopKCategoricalAccuracy": ("top_k_accuracy", "sparse_top_k_categorical_accuracy"),
}

DEFAULT_METRICS = {
    BINARY: (
        "ExampleCount",
        "WeightedExampleCount",
        "AUC",
        "AUCPrecisionRecall",
        "BinaryAccuracy",
        "Precision",
        "Recall",
        "F1Score",
        "LogLoss",
        "Calibration",
        "MeanLabel",
        "MeanPrediction",
        "ConfusionMatrixAtThresholds",
        "CalibrationPlot",
    ),
    MULTICLASS: ("ExampleCount", "WeightedExampleCount", "Accuracy", "TopKAccuracy"),
    REGRESSION: (
        "ExampleCount",
        "WeightedExampleCount",
        "MeanSquaredError",
        "RootMeanSquaredError",
        "MeanAbsoluteError",
        "RSquared",
        "MeanLabel",
        "MeanPrediction",
    ),
}


def decision_thresholds_of(metrics: Iterable[MetricSpec]) -> tuple[float, ...]:
    """Every threshold one of ``metrics`` counts a confusion matrix at, sorted."""
    out = set()
    for m in metrics:
        confusion_at = KINDS[m.kind].confusion_at
        if confusion_at is not None:
            out.update(confusion_at(m))
    return tuple(sorted(out))


def top_ks_of(metrics: Iterable[MetricSpec]) -> tuple[int, ...]:
    """Every ``k`` one of ``metrics`` counts hits in the top ``k`` class scores for, sorted."""
    return tuple(sorted({m.k for m in metrics if KINDS[m.kind].needs == CLASSES}))


# --- settings --------------------------------------------------------------------


#: The preprocessing signatures TFMA calls when a model spec names none (each
#: only if the model has it; TFMA's ``transformed_features`` extractor defaults).
DEFAULT_PREPROCESSING_FUNCTION_NAMES = ("transformed_features", "transformed_labels")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """One model's columns and signatures.

    ``prediction_key`` names a column of the examples (model-free) or, with a
    SavedModel, an output of its signature ``signature_name`` (None: the
    evaluation's default, ``serving_default``). ``preprocessing_function_names``
    are signatures of the same SavedModel called on the raw examples first
    (TFMA's field): their outputs are this model's transformed features, where
    ``label_key``, ``example_weight_key`` and the slicing columns are looked up
    before the raw features (a TFX module file's ``transform_features``
    signature gives, for instance, a ``species_xf`` label). Empty: the
    signatures of :data:`DEFAULT_PREPROCESSING_FUNCTION_NAMES` the model has.
    """

    name: str
    label_key: str
    prediction_key: str | None = None
    example_weight_key: str | None = None
    is_baseline: bool = False
    signature_name: str | None = None
    preprocessing_function_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SliceSpec:
    """``feature_keys`` (one slice per value) and ``feature_values`` (fixed values).

    The empty spec is the overall slice.
    """

    feature_keys: tuple[str, ...] = ()
    feature_values: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the spec slices by, sorted."""
        return tuple(sorted(set(self.feature_keys) | {k for k, _ in self.feature_values}))

    def is_overall(self) -> bool:
        """Whether this is the overall slice (no columns)."""
        return not self.feature_keys and not self.feature_values

    def matches(self, slice_key: tuple) -> bool:
        """Whether a slice key (sorted ``(column, value)`` pairs) is one of this spec's slices."""
        keys = dict(slice_key)
        if set(keys) != set(self.columns):
            return False
        return all(str(keys[k]) == v for k, v in self.feature_values)

    def fixed_key(self) -> tuple | None:
        """The one slice key of a spec that fixes every column, else None."""
        if self.feature_keys:
            return None
        return tuple(sorted(self.feature_values))

    def describe(self) -> dict:
        """The spec as TFMA writes a slicing spec (``feature_keys``, ``feature_values``)."""
        out = {}
        if self.feature_keys:
            out["feature_keys"] = list(self.feature_keys)
        if self.feature_values:
            out["feature_values"] = dict(self.feature_values)
        return out


#: The overall slice (every example): the empty spec, always evaluated and listed first.
OVERALL = SliceSpec()


@dataclasses.dataclass(frozen=True)
class CrossSliceSpec:
    """TFMA's ``CrossSlicingSpec``: each slice of ``baseline`` compared with each
    slice of the ``comparisons`` (none: every other slice evaluated).

    A cross slice's metric is the baseline slice's value minus the comparison
    slice's, as in TFMA.
    """

    baseline: SliceSpec
    comparisons: tuple[SliceSpec, ...] = ()

    def matches(self, baseline_key: tuple, comparison_key: tuple) -> bool:
        """Whether the pair of slice keys is one of this spec's cross slices."""
        if not self.baseline.matches(baseline_key):
            return False
        if self.comparisons:
            return any(c.matches(comparison_key) for c in self.comparisons)
        return not self.baseline.matches(comparison_key)

    def covers(self, other: CrossSliceSpec) -> bool:
        """Whether every cross slice of ``other`` is one of this spec's."""
        if other.baseline != self.baseline:
            return False
        if not self.comparisons:
            return other.baseline not in other.comparisons
        return bool(other.comparisons) and set(other.comparisons) <= set(self.comparisons)

    def describe(self) -> dict:
        """The spec as TFMA writes it (``baseline_spec``, ``slicing_specs``)."""
        out = {"baseline_spec": self.baseline.describe()}
        if self.comparisons:
            out["slicing_specs"] = [c.describe() for c in self.comparisons]
        return out


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A value threshold (``lower``/``upper``) and/or a change threshold against
    the baseline (``direction`` with ``absolute`` and/or ``relative``)."""

    lower: float | None = None
    upper: float | None = None
    direction: str | None = None
    absolute: float | None = None
    relative: float | None = None

    @property
    def has_value(self) -> bool:
        """Whether it bounds the value (``lower`` and/or ``upper``)."""
        return self.lower is not None or self.upper is not None

    @property
    def has_change(self) -> bool:
        """Whether it bounds the change against the baseline."""
        return self.absolute is not None or self.relative is not None

    def describe(self) -> dict:
        """The threshold as TFMA writes it (``value_threshold``, ``change_threshold``)."""
        out = {}
        if self.has_value:
            out["value_threshold"] = {
                k: v
                for k, v in (("lower_bound", self.lower), ("upper_bound", self.upper))
                if v is not None
            }
        if self.has_change:
            change = {"direction": self.direction}
            if self.absolute is not None:
                change["absolute"] = self.absolute
            if self.relative is not None:
                change["relative"] = self.relative
            out["change_threshold"] = change
        return out


@dataclasses.dataclass(frozen=True)
class ThresholdRule:
    """A threshold for one metric, on every slice (``slices`` None) or on the
    slices that match one of ``slices``."""

    metric: str
    threshold: Threshold
    slices: tuple[SliceSpec, ...] | None = None
    #: A cross-slice rule (TFMA's ``cross_slice_thresholds``): checked on the
    #: cross slices of these specs only, never on single slices.
    cross_slices: tuple[CrossSliceSpec, ...] | None = None

    def applies_to(self, slice_key: tuple) -> bool:
        """Whether the rule is checked on the slice with this key."""
        if self.cross_slices is not None:
            return False
        if self.slices is None:
            return True
        return any(s.matches(slice_key) for s in self.slices)

    def applies_to_cross(self, baseline_key: tuple, comparison_key: tuple) -> bool:
        """Whether the rule is checked on the cross slice of these two slice keys."""
        return self.cross_slices is not None and any(
            c.matches(baseline_key, comparison_key) for c in self.cross_slices
        )

    def describe(self) -> dict:
        """``metric``, ``threshold`` (as TFMA writes it) and, for per-slice rules,
        ``slices`` (``cross_slices`` for cross-slice rules)."""
        out = {"metric": self.metric, "threshold": self.threshold.describe()}
        if self.slices is not None:
            out["slices"] = [s.describe() for s in self.slices]
        if self.cross_slices is not None:
            out["cross_slices"] = [c.describe() for c in self.cross_slices]
        return out


def split_change_thresholds(
    rules: Iterable[ThresholdRule],
) -> tuple[tuple[ThresholdRule, ...], tuple[ThresholdRule, ...]]:
    """``(kept, change)``: the rules without their change parts, and the change parts.

    A rule with a value and a change bound keeps its value bound (TFMA clears
    only the ``change_threshold`` of a ``MetricThreshold``); a change-only rule
    is dropped.
    """
    kept, change = [], []
    for rule in rules:
        t = rule.threshold
        if not t.has_change:
            kept.append(rule)
            continue
        change.append(
            dataclasses.replace(rule, threshold=dataclasses.replace(t, lower=None, upper=None))
        )
        if t.has_value:
            value_only = Threshold(lower=t.lower, upper=t.upper)
            kept.append(dataclasses.replace(rule, threshold=value_only))
    return tuple(kept), tuple(change)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric to compute: its output ``name``, ``kind`` and parameters."""

    name: str
    kind: str
    threshold: float = DEFAULT_THRESHOLD  # binary_accuracy, precision, recall, f1_score
    thresholds: tuple[float, ...] = ()  # confusion_matrix_at_thresholds
    k: int = 1  # top_k_accuracy
    num_buckets: int = 0  # calibration_plot


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Everything :class:`~conveyor.components.evaluation.EvaluateModel` needs."""

    models: tuple[ModelSettings, ...]
    slices: tuple[SliceSpec, ...] = (OVERALL,)
    metrics: tuple[MetricSpec, ...] = ()
    thresholds: tuple[ThresholdRule, ...] = ()
    compute_confidence_intervals: bool = False
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES
    min_slice_size: int = 1
    num_buckets: int = DEFAULT_NUM_BUCKETS
    seed: int = 0
    #: Change thresholds not checked, for want of a baseline (:meth:`without_baseline`).
    skipped_change_thresholds: tuple[ThresholdRule, ...] = ()
    #: Cross slices compared (TFMA's ``cross_slicing_specs``); their slices are in ``slices``.
    cross_slices: tuple[CrossSliceSpec, ...] = ()
    #: Binarized / aggregated multi-class metrics, one group per ``metrics_specs``
    #: entry with ``binarize`` or ``aggregate`` (:class:`~.class_groups.ClassGroup`).
    class_groups: tuple = ()

    def __post_init__(self):
        self._check_models()
        names = self.metric_names
        if not names:
            raise UsageError("no metrics to compute")
        seen = set()
        for name in names:
            if name in seen:
                raise UsageError(f"metric name {name!r} is configured twice")
            seen.add(name)
        self._check_kinds()
        self._check_thresholds(seen)
        self._check_cross_slices()
        if self.min_slice_size < 1:
            raise UsageError(f"min_slice_size must be at least 1, got {self.min_slice_size}")
        if self.bootstrap_samples < 2:
            raise UsageError(f"bootstrap_samples must be at least 2, got {self.bootstrap_samples}")
        if self.num_buckets < 2:
            raise UsageError(f"num_buckets must be at least 2, got {self.num_buckets}")

    def _check_models(self) -> None:
        candidates = [m for m in self.models if not m.is_baseline]
        baselines = [m for m in self.models if m.is_baseline]
        if len(candidates) != 1:
            raise UsageError(
                f"an evaluation needs exactly one candidate model spec, got {len(candidates)}"
            )
        if len(baselines) > 1:
            raise UsageError(f"at most one baseline model spec, got {len(baselines)}")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise UsageError(f"model spec names must differ, got {names}")
        for m in self.models:
            if not m.label_key:
                raise UsageError(f"model spec {m.name!r} has no label_key")

    def _check_kinds(self) -> None:
        needs = {KINDS[m.kind].needs for m in self.metrics}
        if CLASSES in needs and needs & {PROBABILITIES, VALUES}:
            raise UsageError(
                "multiclass metrics (over a vector of class scores) cannot be mixed with "
                "binary or regression metrics (over one prediction) in one evaluation"
            )
        if self.class_groups and needs & {PROBABILITIES, VALUES}:
            raise UsageError(
                "metrics_specs with binarize or aggregate read predictions as vectors of class "
                "scores; binary or regression metrics outside them (over one prediction) "
                "cannot be in the same evaluation"
            )
        for group in self.class_groups:
            for m in group.metrics:
                if KINDS[m.kind].needs not in (PROBABILITIES, VALUES):
                    raise UsageError(
                        f"{m.name!r} cannot be binarized or aggregated (binary and value "
                        "metrics can)"
                    )

    def _check_thresholds(self, names: set) -> None:
        has_baseline = self.baseline is not None
        for rule in self.thresholds:
            if rule.metric not in names:
                raise UsageError(f"a threshold names metric {rule.metric!r}, which is not computed")
            if rule.cross_slices is not None and rule.threshold.has_change:
                raise UsageError(
                    f"metric {rule.metric!r}: a change_threshold on cross slices is not "
                    "supported; cross_slice_thresholds take value thresholds"
                )
            if rule.threshold.has_change and not has_baseline:
                raise UsageError(
                    f"metric {rule.metric!r} has a change threshold but no baseline model is configured"
                )
            if KINDS[self.output_kind(rule.metric)].plot:
                raise UsageError(f"{rule.metric!r} is a plot; thresholds apply to scalar metrics")
            for cross in rule.cross_slices or ():
                if not any(c.covers(cross) for c in self.cross_slices):
                    raise UsageError(
                        f"metric {rule.metric!r}: the cross_slice_threshold's cross slicing spec "
                        f"{cross.describe()} is not among the cross_slicing_specs evaluated"
                    )

    def _check_cross_slices(self) -> None:
        for cross in self.cross_slices:
            for spec in (cross.baseline, *cross.comparisons):
                if spec not in self.slices:
                    raise UsageError(
                        f"cross slicing spec {cross.describe()} names slices {spec.describe()} "
                        "that are not evaluated (not in slices)"
                    )

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric output name: the metrics', then each class group's
        (``auc/classId:1``, ``auc/macro_average``...)."""
        names = [m.name for m in self.metrics]
        for group in self.class_groups:
            names += [n for m in group.metrics for n in group.output_names(m)]
        return tuple(names)

    def output_kind(self, name: str) -> str:
        """The kind of the metric output under ``name``."""
        for m in self.metrics:
            if m.name == name:
                return m.kind
        for group in self.class_groups:
            for m in group.metrics:
                if name in group.output_names(m):
                    return m.kind
        raise KeyError(name)

    @property
    def candidate(self) -> ModelSettings:
        """The model being evaluated."""
        return next(m for m in self.models if not m.is_baseline)

    @property
    def baseline(self) -> ModelSettings | None:
        """The model it is compared with, if any."""
        return next((m for m in self.models if m.is_baseline), None)

    def metric(self, name: str) -> MetricSpec:
        """The metric of that output name."""
        return next(m for m in self.metrics if m.name == name)

    @property
    def needs_probabilities(self) -> bool:
        """Whether a metric is computed from probabilities (a prediction histogram is kept)."""
        return any(KINDS[m.kind].needs == PROBABILITIES for m in self.metrics)

    @property
    def needs_classes(self) -> bool:
        """Whether the metrics are over vectors of class scores."""
        return any(KINDS[m.kind].needs == CLASSES for m in self.metrics)

    @property
    def needs_vectors(self) -> bool:
        """Whether predictions are read as vectors of class scores."""
        return self.needs_classes or bool(self.class_groups)

    @property
    def decision_thresholds(self) -> tuple[float, ...]:
        """Every threshold a metric counts a confusion matrix at, sorted."""
        return decision_thresholds_of(self.metrics)

    @property
    def top_ks(self) -> tuple[int, ...]:
        """Every ``k`` a class metric counts hits in the top ``k`` scores for, sorted."""
        return top_ks_of(self.metrics)

    def with_slices(self, slices: Iterable[SliceSpec]) -> EvalSettings:
        """The same settings with other slicing specs."""
        return dataclasses.replace(self, slices=tuple(slices))

    def without_baseline(self) -> EvalSettings:
        """The settings with no baseline model: TFX's Evaluator when the baseline is absent.

        The baseline model spec goes, and the change thresholds are kept aside in
        :attr:`skipped_change_thresholds` (``validation.json`` lists them with
        the reason :data:`NO_BASELINE`) instead of being checked; value
        thresholds still apply. The settings themselves when there is nothing
        to remove.
        """
        kept, change = split_change_thresholds(self.thresholds)
        if self.baseline is None and not change:
            return self
        return dataclasses.replace(
            self,
            models=(self.candidate,),
            thresholds=kept,
            skipped_change_thresholds=self.skipped_change_thresholds + change,
        )

    def with_baseline(self) -> EvalSettings:
        """The settings with a baseline model spec: the candidate's columns, named
        ``baseline``, when there is none (TFX's default baseline ModelSpec)."""
        if self.baseline is not None:
            return self
        return dataclasses.replace(self, models=(*self.models, _default_baseline(self.candidate)))


def _default_baseline(candidate: ModelSettings) -> ModelSettings:
    """A baseline model spec with the candidate's columns and signatures."""
    name = "baseline" if candidate.name != "baseline" else "baseline_model"
    return dataclasses.replace(candidate, name=name, is_baseline=True)


def metric_spec(class_name: str, config: Mapping | None = None) -> MetricSpec:
    """A :class:`MetricSpec` from a TFMA/Keras ``class_name`` and its config dict.

    The class names its kind (:data:`CLASS_NAMES`; ``AUC`` with ``"curve":
    "PR"`` is AUC-PR) and the kind reads its parameters (:data:`KINDS`); a key
    neither reads (besides ``name`` and ``dtype``) is refused.
    """
    if class_name not in CLASS_NAMES:
        raise UsageError(
            f"metric class {class_name!r} is not supported; supported: {', '.join(sorted(CLASS_NAMES))}"
        )
    kind, name = CLASS_NAMES[class_name]
    config = dict(config or {})
    name = config.pop("name", None) or name
    if class_name == "AUC":
        kind = _auc_curve(config)
    fields = KINDS[kind].read(name, config, class_name)
    config.pop("dtype", None)
    if config:
        raise UsageError(f"{name}: unsupported config keys {sorted(config)}")
    return MetricSpec(name=name, kind=kind, **fields)


def _auc_curve(config: dict) -> str:
    """The kind Keras' ``AUC`` computes: its ``curve`` is ROC (``auc``) or PR."""
    curve = str(config.pop("curve", "ROC")).upper()
    if curve not in ("ROC", "PR"):
        raise UsageError(f"AUC curve must be ROC or PR, not {curve!r}")
    return "auc_precision_recall" if curve == "PR" else "auc"


def default_metrics(task: str, weighted: bool = False) -> tuple[MetricSpec, ...]:
    """The metrics computed when a config names none."""
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    names = [n for n in DEFAULT_METRICS[task] if weighted or n != "WeightedExampleCount"]
    return tuple(metric_spec(n) for n in names)


# --- EvalConfig ------------------------------------------------------------------

_CONFIG_PB2 = None


def config_pb2():
    """TFMA's ``config_pb2`` module, loaded from its file without importing TFMA.

    Importing ``tensorflow_model_analysis`` pulls in TensorFlow and Beam (seconds);
    the generated proto module alone needs only protobuf. If TFMA is already
    imported its module is used, so messages are of one class either way.
    """
    global _CONFIG_PB2
    if _CONFIG_PB2 is None:
        name = "tensorflow_model_analysis.proto.config_pb2"
        if name in sys.modules:
            _CONFIG_PB2 = sys.modules[name]
        else:
            spec = importlib.util.find_spec("tensorflow_model_analysis")
            if spec is None or not spec.submodule_search_locations:
                raise UsageError(
                    "reading an EvalConfig needs the tensorflow-model-analysis package installed"
                )
            path = os.path.join(list(spec.submodule_search_locations)[0], "proto", "config_pb2.py")
            module_spec = importlib.util.spec_from_file_location("_conveyor_tfma_config_pb2", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            _CONFIG_PB2 = module
    return _CONFIG_PB2


def load_eval_config(source):
    """An ``EvalConfig`` message from a message, a path, JSON text or text-format text.

    Raises:
      UsageError: the text parses as neither form (the message carries both
        parsers' complaints), or the file does not exist.
    """
    from google.protobuf import json_format, text_format

    pb2 = config_pb2()
    if hasattr(source, "SerializeToString") and hasattr(source, "DESCRIPTOR"):
        if source.DESCRIPTOR.full_name != "tensorflow_model_analysis.EvalConfig":
            raise UsageError(f"expected a tfma.EvalConfig, got a {source.DESCRIPTOR.full_name}")
        out = pb2.EvalConfig()
        out.ParseFromString(source.SerializeToString())
        return out
    if isinstance(source, Mapping):
        text, where = json.dumps(source), "the config dict"
    else:
        text = str(source)
        where = "the config text"
        if os.path.isfile(text):
            where = text
            with open(text, encoding="utf-8") as f:
                text = f.read()
        elif not any(c in text for c in "{}:\n"):
            raise UsageError(f"config file {text!r} does not exist")
    out = pb2.EvalConfig()
    if text.lstrip().startswith("{") or where.endswith(".json"):
        try:
            json_format.Parse(text, out)
            return out
        except json_format.ParseError as e:
            raise UsageError(f"{where} is not a valid EvalConfig in JSON form: {e}") from None
    try:
        text_format.Parse(text, out)
        return out
    except text_format.ParseError as e:
        raise UsageError(f"{where} is not a valid EvalConfig in text form: {e}") from None


def _threshold(proto) -> Threshold:
    pb2 = config_pb2()
    kw: dict = {}
    if proto.HasField("value_threshold"):
        v = proto.value_threshold
        if v.HasField("lower_bound"):
            kw["lower"] = v.lower_bound.value
        if v.HasField("upper_bound"):
            kw["upper"] = v.upper_bound.value
    if proto.HasField("change_threshold"):
        c = proto.change_threshold
        if c.direction == pb2.MetricDirection.HIGHER_IS_BETTER:
            kw["direction"] = HIGHER_IS_BETTER
        elif c.direction == pb2.MetricDirection.LOWER_IS_BETTER:
            kw["direction"] = LOWER_IS_BETTER
        else:
            raise UsageError(
                "a change_threshold needs direction HIGHER_IS_BETTER or LOWER_IS_BETTER"
            )
        if c.HasField("absolute"):
            kw["absolute"] = c.absolute.value
        if c.HasField("relative"):
            kw["relative"] = c.relative.value
        if "absolute" not in kw and "relative" not in kw:
            raise UsageError("a change_threshold needs an absolute or a relative bound")
    return Threshold(**kw)


def _slice_spec(proto) -> SliceSpec:
    if proto.slice_keys_sql:
        raise UsageError(
            "slicing_specs with slice_keys_sql are not supported; use feature_keys/feature_values"
        )
    keys = tuple(proto.feature_keys)
    values = tuple(sorted((k, str(v)) for k, v in proto.feature_values.items()))
    both = set(keys) & {k for k, _ in values}
    if both:
        raise UsageError(
            f"slicing spec names {sorted(both)} in both feature_keys and feature_values"
        )
    return SliceSpec(keys, values)


def settings_from_eval_config(
    config,
    *,
    task: str = BINARY,
    extra_slices: Sequence[SliceSpec] = (),
    seed: int = 0,
    has_baseline: bool | None = None,
) -> EvalSettings:
    """:class:`EvalSettings` from an ``EvalConfig`` (any form :func:`load_eval_config` takes).

    ``task`` picks the default metrics when the config has no ``metrics_specs``;
    ``extra_slices`` are added to the config's slicing specs. ``has_baseline``
    says whether a baseline will be there, as TFX's Evaluator is told by its
    ``baseline_model`` input (``tfma.update_eval_config_with_defaults``):

    * None: the config as written (a change threshold needs a baseline model spec);
    * False: the baseline model spec is removed and the change thresholds are
      skipped (:meth:`EvalSettings.without_baseline`); value thresholds apply;
    * True: a config without a baseline model spec gets one, the candidate's
      columns (:meth:`EvalSettings.with_baseline`).
    """
    config = load_eval_config(config)
    models = _model_settings(config)
    cross = tuple(_cross_slice_spec(c) for c in config.cross_slicing_specs)
    slices = _slices(config, extra_slices, cross)
    metrics, groups, rules = _metrics_and_rules(config, models)
    weighted = any(m.example_weight_key for m in models)
    if groups and not metrics:
        metrics = [metric_spec("ExampleCount")]  # not the binary defaults: scores are vectors
    skipped: tuple[ThresholdRule, ...] = ()
    if has_baseline is False:
        models = tuple(m for m in models if not m.is_baseline)
        rules, skipped = split_change_thresholds(rules)
    elif has_baseline and not any(m.is_baseline for m in models):
        models += tuple(_default_baseline(m) for m in models)
    return EvalSettings(
        models=models,
        slices=slices,
        metrics=_with_example_count(metrics, task, weighted),
        thresholds=tuple(rules),
        seed=seed,
        skipped_change_thresholds=skipped,
        cross_slices=cross,
        class_groups=tuple(groups),
        **_options(config),
    )


def config_has_baseline_column(config) -> bool:
    """Whether an ``EvalConfig``'s baseline model spec names a prediction column
    (the baseline of a model-free evaluation)."""
    return any(s.is_baseline and s.prediction_key for s in load_eval_config(config).model_specs)


def _model_settings(config) -> tuple[ModelSettings, ...]:
    """The ``model_specs`` (one label, prediction and weight column each)."""
    if not config.model_specs:
        raise UsageError("the EvalConfig has no model_specs")
    models = []
    for i, spec in enumerate(config.model_specs):
        for field in ("label_keys", "prediction_keys", "example_weight_keys"):
            if getattr(spec, field):
                raise UsageError(f"model_specs[{i}].{field} (multi-output models) is not supported")
        models.append(
            ModelSettings(
                name=spec.name or ("baseline" if spec.is_baseline else "candidate"),
                label_key=spec.label_key,
                prediction_key=spec.prediction_key or None,
                example_weight_key=spec.example_weight_key or None,
                is_baseline=spec.is_baseline,
                signature_name=spec.signature_name or None,
                preprocessing_function_names=_preprocessing_names(spec, i),
            )
        )
    return tuple(models)


def _preprocessing_names(spec, i: int) -> tuple[str, ...]:
    """``preprocessing_function_names``: signatures of the model (TFMA's Python
    ``name@feature`` preprocessing functions are refused)."""
    names = tuple(spec.preprocessing_function_names)
    for name in names:
        if not name:
            raise UsageError(f"model_specs[{i}].preprocessing_function_names has an empty name")
        if "@" in name:
            raise UsageError(
                f"model_specs[{i}].preprocessing_function_names: {name!r} names one of TFMA's "
                "Python preprocessing functions (name@feature), which is not supported; name "
                "a signature of the SavedModel (e.g. transform_features)"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"model_specs[{i}].preprocessing_function_names repeats a name: {names}")
    return names


def _cross_slice_spec(proto) -> CrossSliceSpec:
    return CrossSliceSpec(
        _slice_spec(proto.baseline_spec), tuple(_slice_spec(s) for s in proto.slicing_specs)
    )


def _slices(
    config, extra_slices: Sequence[SliceSpec], cross: Sequence[CrossSliceSpec] = ()
) -> tuple[SliceSpec, ...]:
    """The ``slicing_specs`` (overall when none), then ``extra_slices`` and the slices
    the cross slicing specs compare (as TFMA evaluates them); overall always first."""
    slices = [_slice_spec(s) for s in config.slicing_specs] or [OVERALL]
    for s in (*extra_slices, *(x for c in cross for x in (c.baseline, *c.comparisons))):
        if s not in slices:
            slices.append(s)
    if OVERALL not in slices:
        slices.insert(0, OVERALL)
    return tuple(slices)


def _metrics_and_rules(config, models) -> tuple[list[MetricSpec], list, list[ThresholdRule]]:
    """The candidate's metrics, class groups (entries with ``binarize``/``aggregate``) and
    the thresholds on them, from every ``metrics_specs``."""
    from conveyor.components.evaluation.class_groups import class_group

    metrics: list[MetricSpec] = []
    groups: list = []
    rules: list[ThresholdRule] = []
    candidate = next((m.name for m in models if not m.is_baseline), None)
    for i, ms in enumerate(config.metrics_specs):
        where = f"metrics_specs[{i}]"
        _check_metrics_spec(ms, where, models)
        if ms.model_names and candidate not in ms.model_names:
            continue  # metrics for other models only
        grouped = ms.HasField("binarize") or ms.HasField("aggregate")
        own: list[MetricSpec] = []
        spec_rules: list[ThresholdRule] = []
        for mc in ms.metrics:
            spec = _metric_of(mc, where)
            counted_once = not grouped or spec.kind in COUNT_KINDS
            target = metrics if counted_once else own
            if spec in target:
                continue  # the same metric again
            if any(m.name == spec.name for m in target):
                raise UsageError(
                    f"metric name {spec.name!r} is configured twice with different settings"
                )
            target.append(spec)
            spec_rules += _metric_rules(spec.name, mc)
        spec_rules += _spec_rules(ms)
        group = class_group(ms, where, tuple(own), PLOT_KINDS) if grouped else None
        if group is not None and own:
            groups.append(group)
            spec_rules = _expand_rules(spec_rules, group)
        rules += spec_rules
    return metrics, groups, rules


def _expand_rules(rules: list[ThresholdRule], group) -> list[ThresholdRule]:
    """A class group's thresholds on a metric apply to each of its outputs (every class
    and the aggregate), as TFMA applies a spec's thresholds to all its sub keys."""
    names = {m.name: group.output_names(m) for m in group.metrics}
    out = []
    for rule in rules:
        for name in names.get(rule.metric, (rule.metric,)):
            out.append(dataclasses.replace(rule, metric=name))
    return out


def _check_metrics_spec(ms, where: str, models) -> None:
    """Refuses what a ``metrics_specs`` entry may ask that is not computed as asked."""
    if ms.output_names or ms.query_key:
        raise UsageError(f"{where}: output_names and query_key are not supported")
    if ms.HasField("example_weights") and any(m.example_weight_key for m in models):
        ew = ms.example_weights
        if ew.unweighted and not ew.weighted:
            raise UsageError(
                f"{where}.example_weights asks for unweighted metrics only; with an "
                "example_weight_key metrics are weighted (example_count always counts examples)"
            )


def _metric_of(mc, where: str) -> MetricSpec:
    """The :class:`MetricSpec` of one ``MetricConfig`` (its class name and JSON config)."""
    if mc.module and not mc.module.startswith(
        ("tensorflow_model_analysis", "tfma", "tf.keras", "keras")
    ):
        raise UsageError(f"{where}: custom metric module {mc.module!r} is not supported")
    try:
        # TFMA accepts the object with or without its braces ('"thresholds": [0.5]').
        text = mc.config.strip()
        cfg = json.loads(text if text.startswith("{") else "{" + text + "}") if text else {}
    except json.JSONDecodeError as e:
        raise UsageError(f"{where} {mc.class_name}: config is not JSON: {e}") from None
    return metric_spec(mc.class_name, cfg)


def _metric_rules(name: str, mc) -> list[ThresholdRule]:
    """A ``MetricConfig``'s own ``threshold``, ``per_slice_thresholds`` and
    ``cross_slice_thresholds``."""
    rules = [ThresholdRule(name, _threshold(mc.threshold))] if mc.HasField("threshold") else []
    rules += [_per_slice_rule(name, ps) for ps in mc.per_slice_thresholds]
    return rules + [_cross_slice_rule(name, cs) for cs in mc.cross_slice_thresholds]


def _spec_rules(ms) -> list[ThresholdRule]:
    """A ``metrics_specs`` entry's ``thresholds``, ``per_slice_thresholds`` and
    ``cross_slice_thresholds`` maps (by metric name)."""
    rules = [ThresholdRule(name, _threshold(t)) for name, t in ms.thresholds.items()]
    for name, per in ms.per_slice_thresholds.items():
        rules += [_per_slice_rule(name, ps) for ps in per.thresholds]
    for name, cross in ms.cross_slice_thresholds.items():
        rules += [_cross_slice_rule(name, cs) for cs in cross.thresholds]
    return rules


def _cross_slice_rule(name: str, cs) -> ThresholdRule:
    if not cs.cross_slicing_specs:
        raise UsageError(f"{name}: a cross_slice_threshold needs cross_slicing_specs")
    return ThresholdRule(
        name,
        _threshold(cs.threshold),
        cross_slices=tuple(_cross_slice_spec(c) for c in cs.cross_slicing_specs),
    )


def _per_slice_rule(name: str, ps) -> ThresholdRule:
    return ThresholdRule(
        name, _threshold(ps.threshold), tuple(_slice_spec(s) for s in ps.slicing_specs)
    )


def _with_example_count(
    metrics: list[MetricSpec], task: str, weighted: bool
) -> tuple[MetricSpec, ...]:
    """The task's default metrics when none is configured, else ``example_count`` first if missing."""
    if not metrics:
        return default_metrics(task, weighted)
    if not any(m.kind == "example_count" for m in metrics):
        return (metric_spec("ExampleCount"), *metrics)
    return tuple(metrics)


def _options(config) -> dict:
    """The ``options`` read: ``compute_confidence_intervals`` and ``min_slice_size`` (at least 1)."""
    opts = config.options
    ci = (
        opts.compute_confidence_intervals.value
        if opts.HasField("compute_confidence_intervals")
        else False
    )
    min_size = opts.min_slice_size.value if opts.HasField("min_slice_size") else 1
    return {"compute_confidence_intervals": ci, "min_slice_size": max(1, min_size)}


def make_settings(
    label_key: str,
    prediction_key: str | None = None,
    *,
    baseline_prediction_key: str | None = None,
    example_weight_key: str | None = None,
    slice_by: Sequence[str] = (),
    task: str = BINARY,
    metrics: Sequence[str] | None = None,
    thresholds: Mapping[str, Threshold] | None = None,
    compute_confidence_intervals: bool = False,
    min_slice_size: int = 1,
    seed: int = 0,
) -> EvalSettings:
    """:class:`EvalSettings` without an EvalConfig (what ``conveyor evaluate`` builds
    when no ``--config`` is given).

    ``metrics`` are TFMA class names (default: the task's default set);
    ``slice_by`` adds one ``feature_keys`` slicing spec per column.
    """
    models = [ModelSettings("candidate", label_key, prediction_key, example_weight_key)]
    if baseline_prediction_key is not None:
        models.append(
            ModelSettings("baseline", label_key, baseline_prediction_key, example_weight_key, True)
        )
    specs = (
        tuple(metric_spec(n) for n in metrics)
        if metrics
        else default_metrics(task, example_weight_key is not None)
    )
    return EvalSettings(
        models=tuple(models),
        slices=(OVERALL, *(SliceSpec((c,)) for c in slice_by)),
        metrics=specs,
        thresholds=tuple(ThresholdRule(n, t) for n, t in (thresholds or {}).items()),
        compute_confidence_intervals=compute_confidence_intervals,
        min_slice_size=min_slice_size,
        seed=seed,
    )
