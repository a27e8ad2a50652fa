"""Multi-class metrics one class at a time: TFMA's ``metrics_specs`` ``binarize`` and ``aggregate``.

A ``metrics_specs`` entry with ``binarize { class_ids { values: [...] } }``
and/or ``aggregate { micro_average | macro_average | weighted_macro_average }``
computes its binary (and value) metrics over a vector of class scores and an
integer class label, as TFMA does:

* per class ``c`` of ``binarize.class_ids``: the label is ``label == c`` and
  the prediction the score of class ``c``; the metric is named
  ``<name>/classId:<c>`` (TFMA's ``SubKey(class_id=c)``);
* ``micro_average``: every (example, class) pair is one binary example
  (weighted by ``aggregate.class_weights[c]`` when given, 0 for a class not
  listed), named ``<name>/micro_average``;
* ``macro_average``: the mean of the per-class values over the classes of
  ``class_weights`` (required, as in TFMA), weighted by them:
  ``<name>/macro_average``;
* ``weighted_macro_average``: likewise, each class also weighted by its share
  of the (weighted) labels among those classes: ``<name>/weighted_macro_average``
  (TFMA's own key for it says ``macro_average``).

A class id beyond the width of a row's score vector leaves that row's
prediction missing for that class (counted as ``missing_prediction``).
Example counts in such an entry are counted once, as in any other.

:class:`ClassGroup` is one such entry; :func:`class_group` reads it from the
proto; :func:`stream_inputs` gives the binary rows of one class (or of the
micro average) from a slice's rows; :func:`macro_values` averages per-class
values. Numpy only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from conveyor.beam_utils.errors import UsageError

MICRO = "micro_average"
MACRO = "macro_average"
WEIGHTED_MACRO = "weighted_macro_average"
AGGREGATIONS = (MICRO, MACRO, WEIGHTED_MACRO)


def class_metric_name(name: str, class_id: int) -> str:
    """The output name of a metric binarized for one class: ``auc/classId:2``."""
    return f"{name}/classId:{class_id}"


def aggregate_metric_name(name: str, aggregation: str) -> str:
    """The output name of an aggregated metric: ``auc/macro_average``."""
    return f"{name}/{aggregation}"


@dataclasses.dataclass(frozen=True)
class ClassGroup:
    """The binary metrics of one ``metrics_specs`` entry with ``binarize`` and/or ``aggregate``.

    Attributes:
      metrics: the entry's metrics (``MetricSpec``; binary and value kinds).
      class_ids: ``binarize.class_ids``: one set of metrics per class.
      aggregation: None, :data:`MICRO`, :data:`MACRO` or :data:`WEIGHTED_MACRO`.
      class_weights: ``aggregate.class_weights`` as sorted ``(class id, weight)``.
    """

    metrics: tuple
    class_ids: tuple[int, ...] = ()
    aggregation: str | None = None
    class_weights: tuple[tuple[int, float], ...] = ()

    @property
    def stream_classes(self) -> tuple[int, ...]:
        """The classes whose binary rows are accumulated: ``class_ids``, and for a
        (weighted) macro average the classes of ``class_weights``."""
        out = list(self.class_ids)
        if self.aggregation in (MACRO, WEIGHTED_MACRO):
            out += [c for c, _ in self.class_weights if c not in out]
        return tuple(out)

    @property
    def streams(self) -> tuple:
        """What each accumulated set of binary rows is: a class id, or :data:`MICRO`."""
        return self.stream_classes + ((MICRO,) if self.aggregation == MICRO else ())

    def output_names(self, metric) -> tuple[str, ...]:
        """The names a metric of the group is output under."""
        names = [class_metric_name(metric.name, c) for c in self.class_ids]
        if self.aggregation:
            names.append(aggregate_metric_name(metric.name, self.aggregation))
        return tuple(names)

    def describe(self) -> dict:
        """The group as TFMA writes its options (``binarize``, ``aggregate``)."""
        out: dict = {"metrics": [m.name for m in self.metrics]}
        if self.class_ids:
            out["binarize"] = {"class_ids": list(self.class_ids)}
        if self.aggregation:
            agg: dict = {self.aggregation: True}
            if self.class_weights:
                agg["class_weights"] = {str(c): w for c, w in self.class_weights}
            out["aggregate"] = agg
        return out


def class_group(ms, where: str, metrics: tuple, plot_kinds: frozenset) -> ClassGroup | None:
    """The :class:`ClassGroup` of a ``MetricsSpec`` with ``binarize``/``aggregate`` (else None).

    Raises:
      UsageError: naming what is not supported (``k_list``, ``top_k_list``),
        missing (``class_ids``, the aggregation type, ``class_weights`` for a
        macro average) or invalid.
    """
    has_binarize, has_aggregate = ms.HasField("binarize"), ms.HasField("aggregate")
    if not (has_binarize or has_aggregate):
        return None
    b, a = ms.binarize, ms.aggregate
    for field in ("k_list", "top_k_list"):
        if getattr(b, field).values:
            raise UsageError(f"{where}.binarize.{field} is not supported; give class_ids")
    if a.top_k_list.values:
        raise UsageError(f"{where}.aggregate.top_k_list is not supported")
    class_ids = tuple(int(c) for c in b.class_ids.values)
    if has_binarize and not class_ids:
        raise UsageError(f"{where}.binarize needs class_ids")
    if any(c < 0 for c in class_ids) or len(set(class_ids)) != len(class_ids):
        raise UsageError(f"{where}.binarize.class_ids must be distinct and >= 0, got {class_ids}")
    aggregation = a.WhichOneof("type") if has_aggregate else None
    if has_aggregate and aggregation is None:
        raise UsageError(
            f"{where}.aggregate needs one of micro_average, macro_average, weighted_macro_average"
        )
    weights = tuple(sorted((int(c), float(w)) for c, w in a.class_weights.items()))
    for c, w in weights:
        if c < 0 or not math.isfinite(w) or w < 0:
            raise UsageError(
                f"{where}.aggregate.class_weights: class {c} weight {w} (need class >= 0, weight >= 0)"
            )
    if aggregation in (MACRO, WEIGHTED_MACRO):
        if not weights:
            raise UsageError(
                f"{where}.aggregate.{aggregation} needs class_weights (the classes averaged, "
                "as TFMA requires)"
            )
        for m in metrics:
            if m.kind in plot_kinds:
                raise UsageError(f"{where}: {m.name!r} is a plot; a plot cannot be {aggregation}d")
    return ClassGroup(tuple(metrics), class_ids, aggregation, weights)


def stream_inputs(stream, class_weights, labels, weights, pred, missing, replicate_weights):
    """The binary rows of one stream (a class id or :data:`MICRO`) of a model's slice rows.

    ``pred`` is ``(n, k)`` class scores, ``labels`` ``(n,)`` class ids (NaN
    where missing). Returns ``(labels, weights, predictions, missing,
    replicate_weights)`` for a binary metric kernel: for a class, ``n`` rows
    (label ``label == c``, prediction the class's score); for the micro
    average ``n * k`` rows, one per (example, class), weighted by the class weights.
    """
    n, k = pred.shape if pred.ndim == 2 else (len(pred), 1)
    pred = pred.reshape(n, k)
    with np.errstate(invalid="ignore"):
        if stream != MICRO:
            c = int(stream)
            binary = np.where(np.isnan(labels), np.nan, (labels == c).astype(np.float64))
            if c >= k:
                return binary, weights, np.full(n, np.nan), np.ones(n, bool), replicate_weights
            return binary, weights, pred[:, c], missing, replicate_weights
        onehot = (labels[:, None] == np.arange(k)[None, :]).astype(np.float64)
        onehot[np.isnan(labels)] = np.nan
    cw = np.ones(k)
    if class_weights:
        cw = np.zeros(k)
        for c, w in class_weights:
            if c < k:
                cw[c] = w
    flat_weights = (weights[:, None] * cw[None, :]).reshape(-1)
    rw = None if replicate_weights is None else np.repeat(replicate_weights, k, axis=1)
    return onehot.reshape(-1), flat_weights, pred.reshape(-1), np.repeat(missing, k), rw


def macro_values(group: ClassGroup, per_class: dict, label_weights: dict) -> dict:
    """``{metric name/aggregation: value}`` of a (weighted) macro average.

    ``per_class`` is ``{class id: {metric name: value}}``, ``label_weights``
    ``{class id: weighted count of that class's labels}`` (for the weighted
    average). A metric undefined for a class makes its average undefined (NaN).
    """
    if group.aggregation not in (MACRO, WEIGHTED_MACRO):
        return {}
    weights = dict(group.class_weights)
    if group.aggregation == WEIGHTED_MACRO:
        total = sum(label_weights.get(c, 0.0) for c in weights)
        weights = {
            c: w * (label_weights.get(c, 0.0) / total if total else 0.0) for c, w in weights.items()
        }
    out = {}
    norm = sum(weights.values())
    for m in group.metrics:
        value = sum(w * per_class[c][m.name] for c, w in weights.items() if w)
        out[aggregate_metric_name(m.name, group.aggregation)] = value / norm if norm else math.nan
    return out
