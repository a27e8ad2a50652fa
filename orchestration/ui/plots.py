"""The evaluation's ROC and calibration plots, read from ``plots.json`` and drawn as inline SVG.

The Evaluator writes, per slice, ``roc_curve`` (``{"fpr": [...], "tpr": [...]}``) and a
calibration plot (buckets of ``lower_threshold``, ``upper_threshold``,
``weighted_examples``, ``total_weighted_label``, ``total_weighted_refined_prediction``;
under the metric's own name, ``calibration_plot`` by default). :func:`curves` turns them
into a few points each; :func:`roc_svg` and :func:`calibration_svg` draw them with no
script and no external file, so the page stays offline and inside the CSP.
"""

from __future__ import annotations

import html
import math

__all__ = [
    "CALIBRATION_BINS",
    "ROC_POINTS",
    "calibration_points",
    "calibration_svg",
    "curves",
    "roc_points",
    "roc_svg",
]

#: At most this many points of a ROC curve are kept (evenly spaced along the curve).
ROC_POINTS = 200
#: Calibration buckets are merged into this many equal bins over [0, 1].
CALIBRATION_BINS = 10

SIZE, PAD = 240, 34
_BUCKET_KEYS = ("lower_threshold", "weighted_examples", "total_weighted_label")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def roc_points(roc, limit: int = ROC_POINTS) -> list[list[float]]:
    """``[[fpr, tpr], ...]`` of a ``{"fpr", "tpr"}`` curve, sorted by fpr, at most ``limit``
    (the first and last kept); ``[]`` for anything else."""
    if not isinstance(roc, dict):
        return []
    fpr, tpr = roc.get("fpr"), roc.get("tpr")
    if not isinstance(fpr, list) or not isinstance(tpr, list):
        return []
    pts = sorted(
        [float(f), float(t)] for f, t in zip(fpr, tpr, strict=False) if _finite(f) and _finite(t)
    )
    if len(pts) > limit:
        step = (len(pts) - 1) / (limit - 1)
        pts = [pts[round(i * step)] for i in range(limit)]
    return pts


def _is_calibration(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(b, dict) and all(k in b for k in _BUCKET_KEYS) for b in value)
    )


def calibration_points(buckets: list, bins: int = CALIBRATION_BINS) -> list[list[float]]:
    """``[[mean prediction, mean label, weight], ...]`` of the non-empty bins of ``bins``
    equal bins over [0, 1] (each bucket goes to the bin of its lower threshold)."""
    weight = [0.0] * bins
    label = [0.0] * bins
    pred = [0.0] * bins
    for b in buckets:
        low, w = b.get("lower_threshold"), b.get("weighted_examples")
        if not (_finite(low) and _finite(w)) or w <= 0:
            continue
        i = min(bins - 1, max(0, int(low * bins + 1e-9)))
        weight[i] += w
        label[i] += float(b.get("total_weighted_label") or 0.0)
        mean = b.get("total_weighted_refined_prediction")
        if not _finite(mean):
            up = b.get("upper_threshold")
            mean = w * (low + up) / 2 if _finite(up) else w * low
        pred[i] += float(mean)
    return [
        [pred[i] / weight[i], label[i] / weight[i], weight[i]] for i in range(bins) if weight[i] > 0
    ]


def curves(plots) -> list[dict]:
    """Per slice of ``plots.json``: ``{"slice", "roc", "calibration", "baseline_roc",
    "baseline_calibration"}`` (lists of points, empty when the plot is not there)."""
    out = []
    for entry in plots if isinstance(plots, list) else []:
        if not isinstance(entry, dict):
            continue
        slice_ = entry.get("slice") or {}
        row = {"slice": ", ".join(f"{k}={v}" for k, v in slice_.items()) or "Overall"}
        for prefix, key in (("", "plots"), ("baseline_", "baseline_plots")):
            p = entry.get(key) if isinstance(entry.get(key), dict) else {}
            row[prefix + "roc"] = roc_points(p.get("roc_curve"))
            calibration = next((v for v in p.values() if _is_calibration(v)), [])
            row[prefix + "calibration"] = calibration_points(calibration) if calibration else []
        if row["roc"] or row["calibration"]:
            out.append(row)
    return out


def _xy(x: float, y: float) -> str:
    span = SIZE - 2 * PAD
    return f"{PAD + x * span:.1f},{SIZE - PAD - y * span:.1f}"


def _frame(css: str, title: str, x_label: str, y_label: str) -> list[str]:
    e = html.escape
    parts = [
        f'<svg class="plot {css}" xmlns="http://www.w3.org/2000/svg" width="{SIZE}" '
        f'height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}"><title>{e(title)}</title>',
        f'<rect x="{PAD}" y="{PAD}" width="{SIZE - 2 * PAD}" height="{SIZE - 2 * PAD}" '
        'fill="#fff" stroke="#999"/>',
        f'<line class="diagonal" x1="{PAD}" y1="{SIZE - PAD}" x2="{SIZE - PAD}" y2="{PAD}" '
        'stroke="#bbb" stroke-dasharray="4 3"/>',
    ]
    for t in (0, 0.5, 1):
        x, y = _xy(t, 0).split(",")
        parts.append(
            f'<text x="{x}" y="{float(y) + 14:.1f}" font-size="10" text-anchor="middle">{t:g}</text>'
        )
        x, y = _xy(0, t).split(",")
        parts.append(
            f'<text x="{float(x) - 4:.1f}" y="{float(y) + 3:.1f}" font-size="10" '
            f'text-anchor="end">{t:g}</text>'
        )
    parts.append(
        f'<text x="{SIZE / 2:.0f}" y="{SIZE - 6}" font-size="11" text-anchor="middle">'
        f"{e(x_label)}</text>"
        f'<text x="12" y="{SIZE / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {SIZE / 2:.0f})">{e(y_label)}</text>'
        f'<text x="{SIZE / 2:.0f}" y="16" font-size="12" text-anchor="middle">{e(title)}</text>'
    )
    return parts


def roc_svg(points: list, title: str, baseline: list | None = None) -> str:
    """An inline SVG of a ROC curve (``[[fpr, tpr], ...]``), the baseline's dashed beside it."""
    parts = _frame("roc", title, "false positive rate", "true positive rate")
    for css, pts, color in (("baseline", baseline or [], "#999"), ("curve", points, "#3949ab")):
        if pts:
            line = " ".join(_xy(x, y) for x, y in pts)
            dash = ' stroke-dasharray="5 3"' if css == "baseline" else ""
            parts.append(
                f'<polyline class="{css}" points="{line}" fill="none" stroke="{color}" '
                f'stroke-width="2"{dash}/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def calibration_svg(points: list, title: str, baseline: list | None = None) -> str:
    """An inline SVG of a calibration plot: one dot a bin at (mean prediction, mean label),
    its weight in its tooltip; the baseline's bins as hollow dots."""
    parts = _frame("calibration", title, "mean prediction", "mean label")
    for css, pts in (("baseline", baseline or []), ("bin", points)):
        if len(pts) > 1:
            line = " ".join(_xy(x, y) for x, y, _ in pts)
            color = "#999" if css == "baseline" else "#e65100"
            parts.append(
                f'<polyline class="{css}-line" points="{line}" fill="none" stroke="{color}"/>'
            )
        for x, y, w in pts:
            cx, cy = _xy(x, y).split(",")
            fill = "none" if css == "baseline" else "#e65100"
            parts.append(
                f'<circle class="{css}" cx="{cx}" cy="{cy}" r="4" fill="{fill}" stroke="#e65100">'
                f"<title>prediction {x:.3f}, label {y:.3f}, weight {w:g}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
