"""Mergeable metric state and the metrics computed from it (numpy only).

A :class:`SliceAccumulator` holds, for one slice and every model, the exact
sums behind the scalar metrics and a fixed-bucket prediction histogram behind
AUC-ROC, AUC-PR and the calibration plot. Accumulators merge by addition, so
any split of the data into chunks, in any order, gives the same result (up to
float rounding of sums).

What is exact and what is not:

* counts, weighted counts, the sums behind mean label / prediction,
  calibration, log loss, MSE, RMSE, MAE and R^2, and the confusion matrices at
  the configured decision thresholds (``prediction > threshold`` is a positive
  call) are exact;
* AUC-ROC and AUC-PR are computed at the ``B`` bucket boundaries ``j / B`` of
  the histogram (``B = 10,000`` by default, as TFMA). The ROC curve there is
  exact; the trapezoid rule between boundaries counts the positive/negative
  pairs that fall in one bucket as half right. The AUC-ROC therefore differs
  from the exact (Mann-Whitney) AUC by at most ``sum_b pos_b * neg_b /
  (2 * P * N)``; that bound is reported with each slice as
  ``auc_bucketing_error_bound`` (for spread-out predictions it is about
  ``1 / (2B)`` or less). AUC-PR interpolates precision between boundaries
  (Davis & Goadrich), like TFMA's ``interpolation`` summation.

Which rows count: ``example_count`` counts every example of the slice. The
other metrics of a model use the rows whose label, prediction and weight are
present and finite (weight >= 0) and, when a probability metric is configured,
whose prediction and label lie in [0, 1] (for multiclass metrics: whose label
is a class index of the score vector). Every row left out is counted by
reason (``missing_label``, ``missing_prediction``, ``nan_prediction``,
``prediction_out_of_range``, ``label_out_of_range``, ``bad_weight``) and
reported; none is averaged silently.

Confidence intervals use a Poisson bootstrap: each replicate reweights each
row by a Poisson(1) draw, kept as extra rows of every array (axis 0), so
replicates merge like the point estimate does.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from conveyor.components.evaluation.class_groups import (
    MICRO,
    aggregate_metric_name,
    class_metric_name,
    macro_values,
    stream_inputs,
)
from conveyor.components.evaluation.config import (
    CLASSES,
    KINDS,
    MULTICLASS_KINDS,
    PLOT_KINDS,
    PROBABILITIES,
    EvalSettings,
    decision_thresholds_of,
    top_ks_of,
)

#: Reasons a row is left out of a model's metrics, in accumulator order.
PROBLEMS = (
    "missing_label",
    "label_out_of_range",
    "missing_prediction",
    "nan_prediction",
    "prediction_out_of_range",
    "bad_weight",
)
_P = {name: i for i, name in enumerate(PROBLEMS)}
#: Problems that make a model's predictions unfit to bless.
PREDICTION_PROBLEMS = ("nan_prediction", "prediction_out_of_range")

# Columns of ModelState.sums.
_W, _WL, _WP, _WL2, _WSQ, _WABS, _WLOG = range(7)
_NSUMS = 7
_LOG_EPS = 1e-15


class Chunk:
    """The rows of one slice in one input batch, as numpy arrays.

    ``labels`` and ``weights`` hold one float64 ``(n,)`` array per model (NaN
    where missing; models that read the same column share one array);
    ``predictions`` holds one array per model: ``(n,)`` for a scalar
    prediction, ``(n, k)`` for a vector of class scores, NaN where missing;
    ``missing_prediction`` marks rows without a (well-shaped) prediction.
    """

    __slots__ = ("labels", "weights", "predictions", "missing_prediction")

    def __init__(self, labels, weights, predictions, missing_prediction):
        self.labels = list(labels)
        self.weights = list(weights)
        self.predictions = predictions
        self.missing_prediction = missing_prediction

    def __len__(self):
        return len(self.labels[0])

    def take(self, rows: np.ndarray) -> Chunk:
        """The chunk of the given rows (an index or a boolean mask)."""
        taken: dict = {}

        def pick(a):
            if id(a) not in taken:
                taken[id(a)] = a[rows]
            return taken[id(a)]

        return Chunk(
            [pick(a) for a in self.labels],
            [pick(a) for a in self.weights],
            [p[rows] for p in self.predictions],
            [m[rows] for m in self.missing_prediction],
        )

    def __getstate__(self):
        return (self.labels, self.weights, self.predictions, self.missing_prediction)

    def __setstate__(self, state):
        self.labels, self.weights, self.predictions, self.missing_prediction = state


class ModelState:
    """One model's sums for one slice; axis 0 is the point estimate then the
    bootstrap replicates."""

    __slots__ = ("problems", "sums", "hist", "conf", "topk")

    def __init__(self, samples: int, buckets: int, n_thresholds: int, n_ks: int, probability: bool):
        self.problems = np.zeros(len(PROBLEMS), np.int64)
        self.sums = np.zeros((samples, _NSUMS), np.float64)
        # hist[s, 0] weighted positives, [s, 1] weighted negatives, [s, 2] weighted predictions
        self.hist = np.zeros((samples, 3, buckets), np.float64) if probability else None
        self.conf = np.zeros((samples, n_thresholds, 4), np.float64) if n_thresholds else None
        self.topk = np.zeros((samples, n_ks), np.float64) if n_ks else None

    def merge(self, other: ModelState) -> None:
        """Adds ``other``'s sums into this state."""
        self.problems += other.problems
        self.sums += other.sums
        if self.hist is not None:
            self.hist += other.hist
        if self.conf is not None:
            self.conf += other.conf
        if self.topk is not None:
            self.topk += other.topk

    def __getstate__(self):
        # A partial accumulator (one bundle's rows of one slice) fills few of the histogram's
        # buckets: only those travel. Dense, 10,000 buckets are 240 KB per state, and an
        # engine that flushes its pre-combine every bundle (Flink: every second) would
        # shuffle that for every slice key and bundle.
        hist = self.hist
        if hist is not None:
            used = np.flatnonzero(hist.any(axis=(0, 1)))
            if 2 * len(used) < hist.shape[-1]:
                hist = (hist.shape, used.astype(np.int32), hist[:, :, used])
        return (self.problems, self.sums, hist, self.conf, self.topk)

    def __setstate__(self, state):
        self.problems, self.sums, hist, self.conf, self.topk = state
        if isinstance(hist, tuple):
            shape, used, values = hist
            hist = np.zeros(shape, np.float64)
            hist[:, :, used] = values
        self.hist = hist


class SliceAccumulator:
    """Examples seen and one :class:`ModelState` per model, for one slice."""

    __slots__ = ("rows", "models")

    def __init__(self, rows: int, models: list):
        self.rows = rows
        self.models = models

    def __getstate__(self):
        return (self.rows, self.models)

    def __setstate__(self, state):
        self.rows, self.models = state


class MetricsKernel:
    """Creates, updates, merges and reads :class:`SliceAccumulator` for one
    :class:`EvalSettings` (the vectorized heart of the CombineFn).

    The accumulator holds one :class:`ModelState` per model for the metrics,
    then, per class group (``binarize`` / ``aggregate``, see
    :mod:`~conveyor.components.evaluation.class_groups`), one per stream (a
    class, or the micro average) and model, each fed the binary rows of its
    stream by a kernel of the group's metrics (``metrics``: those alone).
    """

    def __init__(self, settings: EvalSettings, metrics=None):
        self.settings = settings
        self.metrics = tuple(settings.metrics if metrics is None else metrics)
        self.samples = 1 + (
            settings.bootstrap_samples if settings.compute_confidence_intervals else 0
        )
        self.buckets = settings.num_buckets
        self.thresholds = np.asarray(decision_thresholds_of(self.metrics), np.float64)
        self.ks = np.asarray(top_ks_of(self.metrics), np.int64)
        self.probability = any(KINDS[m.kind].needs == PROBABILITIES for m in self.metrics)
        self.classes = any(KINDS[m.kind].needs == CLASSES for m in self.metrics)
        self.n_models = len(settings.models)
        self.seed = settings.seed
        self.groups = (
            []
            if metrics is not None
            else [(g, MetricsKernel(settings, g.metrics)) for g in settings.class_groups]
        )

    # --- accumulate -------------------------------------------------------------

    def _state(self) -> ModelState:
        return ModelState(
            self.samples, self.buckets, len(self.thresholds), len(self.ks), self.probability
        )

    def create(self) -> SliceAccumulator:
        """An empty accumulator."""
        states = [self._state() for _ in range(self.n_models)]
        for group, kernel in self.groups:
            states += [kernel._state() for _ in group.streams for _ in range(self.n_models)]
        return SliceAccumulator(0, states)

    def merge(self, accumulators) -> SliceAccumulator:
        """The sum of accumulators (the first one, updated)."""
        it = iter(accumulators)
        out = next(it)
        for acc in it:
            out.rows += acc.rows
            for mine, theirs in zip(out.models, acc.models):
                mine.merge(theirs)
        return out

    def add(self, acc: SliceAccumulator, chunk: Chunk) -> SliceAccumulator:
        """Adds a chunk's rows to ``acc`` (updated and returned)."""
        n = len(chunk)
        if not n:
            return acc
        acc.rows += n
        replicate_weights = self._replicate_weights(chunk)
        for i in range(self.n_models):
            self._add_model(
                acc.models[i],
                chunk.labels[i],
                chunk.weights[i],
                chunk.predictions[i],
                chunk.missing_prediction[i],
                replicate_weights,
            )
        pos = self.n_models
        for group, kernel in self.groups:
            for stream in group.streams:
                for i in range(self.n_models):
                    rows = stream_inputs(
                        stream,
                        group.class_weights,
                        chunk.labels[i],
                        chunk.weights[i],
                        chunk.predictions[i],
                        chunk.missing_prediction[i],
                        replicate_weights,
                    )
                    kernel._add_model(acc.models[pos], *rows)
                    pos += 1
        return acc

    def _replicate_weights(self, chunk: Chunk) -> np.ndarray | None:
        if self.samples == 1:
            return None
        # Deterministic for given data: the seed mixes the configured seed and the labels' bytes.
        digest = zlib.crc32(np.ascontiguousarray(chunk.labels[0]).tobytes())
        rng = np.random.default_rng([self.seed, digest, len(chunk)])
        return rng.poisson(1.0, size=(self.samples - 1, len(chunk))).astype(np.float64)

    def _add_model(self, state: ModelState, labels, weights, pred, missing, replicate_weights):
        problems = state.problems
        ok = np.ones(len(labels), bool)

        bad = np.isnan(labels)
        problems[_P["missing_label"]] += int(np.count_nonzero(bad))
        ok &= ~bad
        bad = ok & missing
        problems[_P["missing_prediction"]] += int(np.count_nonzero(bad))
        ok &= ~missing
        finite = np.isfinite(pred) if pred.ndim == 1 else np.isfinite(pred).all(axis=1)
        bad = ok & ~finite
        problems[_P["nan_prediction"]] += int(np.count_nonzero(bad))
        ok &= finite
        with np.errstate(invalid="ignore"):
            if self.probability:
                bad = ok & ((pred < 0.0) | (pred > 1.0))
                problems[_P["prediction_out_of_range"]] += int(np.count_nonzero(bad))
                ok &= ~bad
                bad = ok & ((labels < 0.0) | (labels > 1.0))
                problems[_P["label_out_of_range"]] += int(np.count_nonzero(bad))
                ok &= ~bad
            elif self.classes:
                k = pred.shape[1] if pred.ndim == 2 else 1
                bad = ok & (
                    (labels < 0)
                    | (labels >= k)
                    | (labels != np.floor(labels))
                    | ~np.isfinite(labels)
                )
                problems[_P["label_out_of_range"]] += int(np.count_nonzero(bad))
                ok &= ~bad
            else:
                bad = ok & ~np.isfinite(labels)
                problems[_P["label_out_of_range"]] += int(np.count_nonzero(bad))
                ok &= ~bad
            bad = ok & ~(np.isfinite(weights) & (weights >= 0))
        problems[_P["bad_weight"]] += int(np.count_nonzero(bad))
        ok &= ~bad
        if not ok.any():
            return
        if not ok.all():
            labels, weights, pred = labels[ok], weights[ok], pred[ok]
            if replicate_weights is not None:
                replicate_weights = replicate_weights[:, ok]
        w = weights[None, :]
        if replicate_weights is not None:
            w = np.concatenate([w, replicate_weights * weights[None, :]], axis=0)
        sums = state.sums
        sums[:, _W] += w.sum(axis=1)
        sums[:, _WL] += w @ labels
        if self.classes:
            self._add_classes(state, labels, pred, w)
            return
        if pred.ndim == 2:
            return  # class scores with count metrics only (the rest is in class groups)
        sums[:, _WP] += w @ pred
        sums[:, _WL2] += w @ (labels * labels)
        err = pred - labels
        sums[:, _WSQ] += w @ (err * err)
        sums[:, _WABS] += w @ np.abs(err)
        if not self.probability:
            return
        p = np.clip(pred, _LOG_EPS, 1.0 - _LOG_EPS)
        sums[:, _WLOG] += w @ -(labels * np.log(p) + (1.0 - labels) * np.log1p(-p))
        wl = w * labels
        wn = w - wl
        if state.conf is not None:
            called = (pred[:, None] > self.thresholds[None, :]).astype(np.float64)
            tp = wl @ called
            fp = wn @ called
            pos = wl.sum(axis=1)[:, None]
            neg = wn.sum(axis=1)[:, None]
            state.conf[:, :, 0] += tp
            state.conf[:, :, 1] += fp
            state.conf[:, :, 2] += neg - fp
            state.conf[:, :, 3] += pos - tp
        idx = np.minimum((pred * self.buckets).astype(np.int64), self.buckets - 1)
        hist = state.hist
        wp = w * pred
        for s in range(w.shape[0]):
            hist[s, 0] += np.bincount(idx, weights=wl[s], minlength=self.buckets)
            hist[s, 1] += np.bincount(idx, weights=wn[s], minlength=self.buckets)
            hist[s, 2] += np.bincount(idx, weights=wp[s], minlength=self.buckets)

    def _add_classes(self, state: ModelState, labels, pred, w):
        if pred.ndim == 1:
            pred = pred[:, None]
        rows = np.arange(len(labels))
        own = pred[rows, labels.astype(np.int64)]
        # Rank of the label's score: how many classes score strictly higher.
        rank = (pred > own[:, None]).sum(axis=1)
        hits = (rank[:, None] < self.ks[None, :]).astype(np.float64)
        state.topk += w @ hits

    # --- read -------------------------------------------------------------------

    def outputs(self, acc: SliceAccumulator) -> dict:
        """``{model name: {"metrics", "plots", "confidence_intervals", "problems", "notes"}}``."""
        out = {}
        for i, spec in enumerate(self.settings.models):
            state = acc.models[i]
            groups = self._group_states(acc, i)

            def at(s, state=state, groups=groups):
                return {
                    **self._metrics_at(acc.rows, state, s),
                    **_group_values(acc.rows, groups, s),
                }

            values = at(0)
            problems = state.problems.copy()
            plots = self._plots(state)
            notes = {}
            if state.hist is not None and any(m.kind == "auc" for m in self.metrics):
                notes["auc_bucketing_error_bound"] = _clean(_auc_error_bound(state.hist[0]))
            for _, kernel, states in groups:
                for stream, st in states.items():
                    problems = np.maximum(problems, st.problems)
                    suffix = _suffix(stream)
                    plots.update({f"{k}/{suffix}": v for k, v in kernel._plots(st).items()})
                    if st.hist is not None and any(m.kind == "auc" for m in kernel.metrics):
                        bound = _clean(_auc_error_bound(st.hist[0]))
                        notes[f"auc_bucketing_error_bound/{suffix}"] = bound
            result = {
                "metrics": {k: _clean(v) for k, v in values.items()},
                "problems": {
                    name: int(problems[j]) for j, name in enumerate(PROBLEMS) if problems[j]
                },
            }
            if plots:
                result["plots"] = plots
            if notes:
                result["notes"] = notes
            if self.samples > 1:
                result["confidence_intervals"] = self._intervals(values, at)
            out[spec.name] = result
        return out

    def _group_states(self, acc: SliceAccumulator, model: int) -> list:
        """``[(group, its kernel, {stream: the model's state})]`` of the class groups."""
        pos, out = self.n_models, []
        for group, kernel in self.groups:
            states = {}
            for stream in group.streams:
                states[stream] = acc.models[pos + model]
                pos += self.n_models
            out.append((group, kernel, states))
        return out

    def _metrics_at(self, rows: int, state: ModelState, s: int) -> dict:
        sums = state.sums[s]
        w = sums[_W]
        out: dict = {}
        t_index = {float(t): i for i, t in enumerate(self.thresholds)}
        k_index = {int(k): i for i, k in enumerate(self.ks)}
        hist = state.hist[s] if state.hist is not None else None
        for m in self.metrics:
            kind = m.kind
            if kind in PLOT_KINDS:
                continue
            if kind == "example_count":
                out[m.name] = rows
            elif kind == "weighted_example_count":
                out[m.name] = w
            elif kind == "mean_label":
                out[m.name] = _div(sums[_WL], w)
            elif kind == "mean_prediction":
                out[m.name] = _div(sums[_WP], w)
            elif kind == "calibration":
                out[m.name] = _div(sums[_WP], sums[_WL])
            elif kind == "mean_squared_error":
                out[m.name] = _div(sums[_WSQ], w)
            elif kind == "root_mean_squared_error":
                mse = _div(sums[_WSQ], w)
                out[m.name] = math.sqrt(mse) if mse == mse else mse
            elif kind == "mean_absolute_error":
                out[m.name] = _div(sums[_WABS], w)
            elif kind == "r_squared":
                total = sums[_WL2] - _div(sums[_WL] * sums[_WL], w) if w > 0 else math.nan
                out[m.name] = 1.0 - sums[_WSQ] / total if total > 0 else math.nan
            elif kind == "log_loss":
                out[m.name] = _div(sums[_WLOG], w)
            elif kind == "auc":
                out[m.name] = _auc_roc(hist)
            elif kind == "auc_precision_recall":
                out[m.name] = _auc_pr(hist)
            elif kind in ("binary_accuracy", "precision", "recall", "f1_score"):
                tp, fp, tn, fn = state.conf[s, t_index[m.threshold]]
                if kind == "binary_accuracy":
                    out[m.name] = _div(tp + tn, tp + fp + tn + fn)
                elif kind == "precision":
                    out[m.name] = _div(tp, tp + fp)
                elif kind == "recall":
                    out[m.name] = _div(tp, tp + fn)
                else:
                    out[m.name] = _div(2 * tp, 2 * tp + fp + fn)
            elif kind in MULTICLASS_KINDS:
                out[m.name] = _div(state.topk[s, k_index[m.k]], w)
        return out

    def _plots(self, state: ModelState) -> dict:
        out = {}
        for m in self.metrics:
            if m.kind == "confusion_matrix_at_thresholds":
                rows = []
                for t in m.thresholds:
                    i = int(np.searchsorted(self.thresholds, t))
                    tp, fp, tn, fn = (float(x) for x in state.conf[0, i])
                    rows.append(
                        {
                            "threshold": float(t),
                            "true_positives": tp,
                            "false_positives": fp,
                            "true_negatives": tn,
                            "false_negatives": fn,
                            "precision": _clean(_div(tp, tp + fp)),
                            "recall": _clean(_div(tp, tp + fn)),
                        }
                    )
                out[m.name] = rows
            elif m.kind == "calibration_plot":
                out[m.name] = calibration_buckets(state.hist[0], m.num_buckets)
        if state.hist is not None:
            fpr, tpr = roc_points(state.hist[0])
            if len(fpr):
                out["roc_curve"] = {
                    "fpr": [round(float(x), 6) for x in fpr],
                    "tpr": [round(float(x), 6) for x in tpr],
                }
        return out

    def _intervals(self, point: dict, at) -> dict:
        """Bootstrap intervals of ``point``'s metrics; ``at(s)`` gives replicate ``s``'s values."""
        replicates = [at(s) for s in range(1, self.samples)]
        t = _t_quantile(len(replicates) - 1)
        out = {}
        counts = {m.name for m in self.metrics if m.kind == "example_count"}
        for name, value in point.items():
            if name in counts:
                continue
            values = np.array([r[name] for r in replicates], np.float64)
            values = values[np.isfinite(values)]
            if len(values) < 2 or not np.isfinite(value):
                continue
            se = float(np.std(values, ddof=1))
            out[name] = {
                "lower": float(value) - t * se,
                "upper": float(value) + t * se,
                "std_error": se,
            }
        return out


def _suffix(stream) -> str:
    """What a class group stream's outputs are named after: ``classId:2`` or ``micro_average``."""
    return MICRO if stream == MICRO else f"classId:{stream}"


def _group_values(rows: int, groups: list, s: int) -> dict:
    """The class groups' metric values at replicate ``s``: per class of ``class_ids``,
    the micro average, and the (weighted) macro average over the class weights."""
    out = {}
    for group, kernel, states in groups:
        per_class, label_weights = {}, {}
        for stream, state in states.items():
            values = kernel._metrics_at(rows, state, s)
            if stream == MICRO:
                out.update({aggregate_metric_name(k, MICRO): v for k, v in values.items()})
                continue
            per_class[stream] = values
            label_weights[stream] = float(state.sums[s, _WL])
            if stream in group.class_ids:
                out.update({class_metric_name(k, stream): v for k, v in values.items()})
        out.update(macro_values(group, per_class, label_weights))
    return out


# --- curve arithmetic -------------------------------------------------------------


def _cumulative_from_top(counts: np.ndarray) -> np.ndarray:
    """``out[j] = counts[j:].sum()`` for j = 0..B (so ``out[B] = 0``)."""
    out = np.zeros(len(counts) + 1, np.float64)
    out[:-1] = np.cumsum(counts[::-1])[::-1]
    return out


def _auc_roc(hist: np.ndarray) -> float:
    pos, neg = hist[0], hist[1]
    p, n = pos.sum(), neg.sum()
    if p <= 0 or n <= 0:
        return math.nan
    above = _cumulative_from_top(pos)[1:]  # positives in higher buckets
    return float(np.dot(neg, above + 0.5 * pos) / (p * n))


def _auc_error_bound(hist: np.ndarray) -> float:
    pos, neg = hist[0], hist[1]
    p, n = pos.sum(), neg.sum()
    if p <= 0 or n <= 0:
        return math.nan
    return float(np.dot(pos, neg) / (2.0 * p * n))


def _auc_pr(hist: np.ndarray) -> float:
    """Area under precision-recall with precision interpolated between boundaries.

    Between two boundaries, true positives grow linearly with predicted
    positives ``q``: ``tp(q) = a * q + b``. Precision ``tp/q`` integrated over
    recall ``tp/P`` is then ``a/P * (dtp + b * ln(q0/q1))`` in closed form.
    """
    tp = _cumulative_from_top(hist[0])
    fp = _cumulative_from_top(hist[1])
    total = tp[0]
    if total <= 0:
        return math.nan
    q = tp + fp
    q0, q1 = q[:-1], q[1:]  # lower boundary (more calls), next higher boundary
    dtp = tp[:-1] - tp[1:]
    dq = q0 - q1
    step = dq > 0
    slope = np.where(step, dtp / np.where(step, dq, 1.0), 0.0)
    intercept = tp[1:] - slope * q1
    ratio = np.where(step & (q1 > 0), q0 / np.where(q1 > 0, q1, 1.0), 1.0)
    area = slope * (dtp + intercept * np.log(ratio)) / total
    return float(area.sum())


def roc_points(hist: np.ndarray, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at the histogram's boundaries, from (0, 0) to (1, 1), at most
    ``max_points`` of them (the corners always kept)."""
    tp = _cumulative_from_top(hist[0])[::-1]
    fp = _cumulative_from_top(hist[1])[::-1]
    p, n = tp[-1], fp[-1]
    if p <= 0 or n <= 0:
        return np.array([]), np.array([])
    keep = np.concatenate([[True], (np.diff(tp) != 0) | (np.diff(fp) != 0)])
    tpr, fpr = tp[keep] / p, fp[keep] / n
    if len(tpr) > max_points:
        pick = np.unique(np.linspace(0, len(tpr) - 1, max_points).round().astype(int))
        tpr, fpr = tpr[pick], fpr[pick]
    return fpr, tpr


def calibration_buckets(hist: np.ndarray, num_buckets: int) -> list[dict]:
    """The non-empty buckets of a calibration plot over [0, 1] in ``num_buckets``
    equal buckets, rebinned from the prediction histogram (exact when the
    histogram's bucket count is a multiple of ``num_buckets``)."""
    fine = hist.shape[1]
    target = (np.arange(fine) * num_buckets) // fine
    weights = np.bincount(target, weights=hist[0] + hist[1], minlength=num_buckets)
    labels = np.bincount(target, weights=hist[0], minlength=num_buckets)
    preds = np.bincount(target, weights=hist[2], minlength=num_buckets)
    out = []
    for b in np.nonzero(weights)[0]:
        out.append(
            {
                "lower_threshold": float(b) / num_buckets,
                "upper_threshold": float(b + 1) / num_buckets,
                "weighted_examples": float(weights[b]),
                "total_weighted_label": float(labels[b]),
                "total_weighted_refined_prediction": float(preds[b]),
            }
        )
    return out


def _div(a, b) -> float:
    return float(a) / float(b) if b else math.nan


def _clean(v):
    """A JSON-safe number: NaN and infinities become None, numpy scalars Python ones."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def _t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, df))
    except ImportError:  # pragma: no cover - scipy ships with the pinned set
        return 1.959964
