"""Validation, blessing, and the files an evaluation writes.

Under the output directory:

* ``metrics.json``: a list with one entry per slice, the overall slice (``{}``)
  first: ``{"slice": {"carrier": "UA"}, "metrics": {"example_count": ...,
  "auc": ...}}`` plus, where they apply, ``problems`` (rows left out, by
  reason), ``confidence_intervals``, ``baseline_metrics`` and ``diff``
  (candidate minus baseline), and ``"empty": true`` for a configured slice
  without examples;
* ``cross_slice_metrics.json`` (with ``cross_slicing_specs``): per cross slice,
  ``baseline_slice``, ``comparison_slice`` and ``metrics`` (the baseline
  slice's value minus the comparison slice's, TFMA's cross-slice metric; and
  ``baseline_metrics`` for the baseline model);
* ``plots.json``: per slice, the confusion matrices at thresholds, the
  calibration plot buckets and the ROC curve points;
* ``validation.json``: ``blessed``, one failure per (metric, slice,
  threshold) that did not hold, naming the value (and the baseline's), and
  ``skipped_change_thresholds``: the change thresholds not checked because
  there was no baseline model (each with its metric, threshold, per-slice
  ``slices`` if any, and ``"reason": "no baseline model"``), as TFX's Evaluator
  skips them on the first run of a continuous pipeline;
* ``blessing/BLESSED`` or ``blessing/NOT_BLESSED`` (empty files, as TFX's
  Evaluator writes);
* ``index.html``: a sortable table of the slices, the failures, and
  ``plots/<slice>_roc.png`` / ``plots/<slice>_calibration.png``.

Besides the configured thresholds, a candidate is not blessed when any of its
predictions were NaN or outside [0, 1] for a probability metric, or when
inference failed on some examples: those rows are not in the metrics, and
metrics over the rest would misstate the model.
"""

from __future__ import annotations

import html
import io
import json
import math
import posixpath
import re

from conveyor.components.evaluation.config import NO_BASELINE, EvalSettings, ThresholdRule
from conveyor.components.evaluation.metrics import PREDICTION_PROBLEMS
from conveyor.dsl.layout import BLESSED, NOT_BLESSED

#: The folder of the output that holds the BLESSED or NOT_BLESSED marker.
BLESSING_DIR = "blessing"
#: The cross-slice metrics (with ``cross_slicing_specs``), beside ``metrics.json``.
CROSS_SLICE_FILE = "cross_slice_metrics.json"


def slice_entry(key: tuple, rows: int, outputs: dict) -> dict:
    """One slice's result as the combine produces it."""
    return {
        "slice": {k: v for k, v in key},
        "slice_key": [list(kv) for kv in key],
        "example_count": int(rows),
        "models": outputs,
    }


def _find(fixed: tuple, keys) -> tuple | None:
    """The key among ``keys`` of the slice a ``feature_values`` spec fixes (its values are
    text; the data's may be numbers: ``("g", "0")`` is the slice ``("g", 0)``), or None."""
    if fixed in keys:
        return fixed
    text = tuple((k, str(v)) for k, v in fixed)
    for key in keys:
        if len(key) == len(fixed) and tuple((k, str(v)) for k, v in key) == text:
            return key
    return None


def _key(entry: dict) -> tuple:
    return tuple(tuple(kv) for kv in entry["slice_key"])


def _order(settings: EvalSettings, key: tuple) -> tuple:
    for i, spec in enumerate(settings.slices):
        if (spec.is_overall() and not key) or (key and spec.matches(key)):
            return (i, [(k, str(type(v)), v) for k, v in key])
    return (len(settings.slices), [(k, str(type(v)), v) for k, v in key])


def build_report(settings: EvalSettings, entries: list, inference_failures: int = 0) -> dict:
    """Orders the slices, adds empty ones, checks thresholds: the whole report."""
    by_key = {_key(e): e for e in entries}
    suppressed = []
    kept = {}
    for key, e in by_key.items():
        if key and e["example_count"] < settings.min_slice_size:
            suppressed.append(key)
        else:
            kept[key] = e
    empty = set()
    for spec in settings.slices:
        fixed = () if spec.is_overall() else spec.fixed_key()
        if fixed is not None and _find(fixed, kept) is None and _find(fixed, suppressed) is None:
            kept[fixed] = slice_entry(fixed, 0, {})
            empty.add(fixed)
    ordered = sorted(kept, key=lambda k: _order(settings, k))

    cand = settings.candidate.name
    base = settings.baseline.name if settings.baseline else None
    metrics_out, plots_out = [], []
    for key in ordered:
        e = kept[key]
        row = {"slice": e["slice"]}
        if key in empty:
            row["metrics"] = {"example_count": 0}
            row["empty"] = True
            metrics_out.append(row)
            continue
        c = e["models"][cand]
        row["metrics"] = c["metrics"]
        for field in ("problems", "confidence_intervals", "notes"):
            if c.get(field):
                row[field] = c[field]
        if base:
            b = e["models"][base]
            row["baseline_metrics"] = b["metrics"]
            if b.get("problems"):
                row["baseline_problems"] = b["problems"]
            row["diff"] = {
                name: (v - b["metrics"][name])
                for name, v in c["metrics"].items()
                if isinstance(v, (int, float)) and isinstance(b["metrics"].get(name), (int, float))
            }
        metrics_out.append(row)
        if c.get("plots"):
            p = {"slice": e["slice"], "plots": c["plots"]}
            if base and e["models"][base].get("plots"):
                p["baseline_plots"] = e["models"][base]["plots"]
            plots_out.append(p)

    cross = cross_slice_entries(settings, kept, empty, ordered)
    validation = validate(settings, kept, empty, inference_failures, cross)
    validation["suppressed_slices"] = len(suppressed)
    out = {
        "metrics": metrics_out,
        "plots": plots_out,
        "validation": validation,
        "blessed": validation["blessed"],
    }
    if settings.cross_slices:
        out["cross_slice_metrics"] = cross
    return out


def _differences(base: dict, comparison: dict) -> dict:
    """``base - comparison`` for every scalar metric both have (TFMA's cross-slice value)."""
    return {
        name: v - comparison[name]
        for name, v in base.items()
        if isinstance(v, (int, float)) and isinstance(comparison.get(name), (int, float))
    }


def cross_slice_entries(settings: EvalSettings, entries: dict, empty: set, ordered) -> list:
    """One entry per cross slice of ``settings.cross_slices`` over the slices with examples.

    Each is ``{"baseline_slice", "comparison_slice", "metrics"}`` (and
    ``baseline_metrics`` for the baseline model): the baseline slice's metric
    minus the comparison slice's, per scalar metric, as TFMA computes them. A
    pair two specs share is listed once.
    """
    cand = settings.candidate.name
    base = settings.baseline.name if settings.baseline else None
    keys = [k for k in ordered if k not in empty]
    out, seen = [], set()
    for spec in settings.cross_slices:
        for b in keys:
            for c in keys:
                if (b, c) in seen or not spec.matches(b, c):
                    continue
                seen.add((b, c))
                be, ce = entries[b]["models"], entries[c]["models"]
                row = {
                    "baseline_slice": _describe_key(b),
                    "comparison_slice": _describe_key(c),
                    "slice_keys": [[list(kv) for kv in b], [list(kv) for kv in c]],
                    "metrics": _differences(be[cand]["metrics"], ce[cand]["metrics"]),
                }
                if base:
                    row["baseline_metrics"] = _differences(be[base]["metrics"], ce[base]["metrics"])
                out.append(row)
    return out


def _describe_key(key: tuple) -> dict:
    return {k: v for k, v in key}


def _check(rule: ThresholdRule, value, baseline) -> str | None:
    """None when the threshold holds, else why not."""
    t = rule.threshold
    if value is None:
        return "the metric is undefined on this slice"
    if t.lower is not None and not value >= t.lower:
        return f"value {value:.6g} is below the lower bound {t.lower:.6g}"
    if t.upper is not None and not value <= t.upper:
        return f"value {value:.6g} is above the upper bound {t.upper:.6g}"
    if t.has_change:
        if baseline is None:
            return "the baseline's value is undefined on this slice"
        diff = value - baseline
        higher = t.direction == "HIGHER_IS_BETTER"
        if t.absolute is not None:
            ok = diff >= t.absolute if higher else diff <= t.absolute
            if not ok:
                return (
                    f"change {diff:+.6g} (candidate {value:.6g}, baseline {baseline:.6g}) "
                    f"is {'below' if higher else 'above'} the absolute bound {t.absolute:+.6g}"
                )
        if t.relative is not None:
            ratio = diff / baseline if not math.isclose(baseline, 0.0) else math.nan
            ok = (
                (ratio >= t.relative if higher else ratio <= t.relative)
                if ratio == ratio
                else False
            )
            if not ok:
                return (
                    f"relative change {ratio:+.6g} (candidate {value:.6g}, baseline {baseline:.6g}) "
                    f"is {'below' if higher else 'above'} the relative bound {t.relative:+.6g}"
                )
    return None


def _validate_cross(settings: EvalSettings, cross: list) -> tuple[int, list]:
    """Checks the cross-slice thresholds on the cross slices they apply to: (checked, failures).

    A rule that applies to no cross slice (their slices had no examples) fails.
    """
    checked, failures = 0, []
    for rule in settings.thresholds:
        if rule.cross_slices is None:
            continue
        hits = 0
        for row in cross:
            b, c = (tuple(tuple(kv) for kv in k) for k in row["slice_keys"])
            if not rule.applies_to_cross(b, c):
                continue
            hits += 1
            value = row["metrics"].get(rule.metric)
            reason = _check(rule, value, None)
            if reason:
                failures.append(
                    {
                        "metric": rule.metric,
                        "cross_slice": {
                            "baseline_slice": row["baseline_slice"],
                            "comparison_slice": row["comparison_slice"],
                        },
                        "threshold": rule.threshold.describe(),
                        "value": value,
                        "reason": reason,
                    }
                )
        checked += hits
        if not hits:
            failures.append(
                {
                    "metric": rule.metric,
                    "cross_slices": [c.describe() for c in rule.cross_slices],
                    "threshold": rule.threshold.describe(),
                    "value": None,
                    "reason": "no cross slice it applies to has examples",
                }
            )
    return checked, failures


def validate(
    settings: EvalSettings,
    entries: dict,
    empty: set,
    inference_failures: int = 0,
    cross: list | None = None,
) -> dict:
    """Checks every threshold on every slice (or cross slice, from
    :func:`cross_slice_entries`) it applies to; returns the validation result."""
    cand = settings.candidate.name
    base = settings.baseline.name if settings.baseline else None
    checked, failures = _validate_cross(settings, cross or [])
    missing_slices = []
    for rule in settings.thresholds:
        if rule.cross_slices is not None:
            continue
        if rule.slices is not None:
            for spec in rule.slices:
                fixed = () if spec.is_overall() else spec.fixed_key()
                found = _find(fixed, entries) if fixed is not None else None
                if fixed is not None and (found is None or found in empty):
                    missing_slices.append(_describe_key(fixed))
                    failures.append(
                        {
                            "metric": rule.metric,
                            "slice": _describe_key(fixed),
                            "threshold": rule.threshold.describe(),
                            "value": None,
                            "reason": "the slice has no examples",
                        }
                    )
        for key, e in entries.items():
            if key in empty or not rule.applies_to(key):
                continue
            checked += 1
            value = e["models"][cand]["metrics"].get(rule.metric)
            baseline = e["models"][base]["metrics"].get(rule.metric) if base else None
            reason = _check(rule, value, baseline)
            if reason:
                failure = {
                    "metric": rule.metric,
                    "slice": e["slice"],
                    "threshold": rule.threshold.describe(),
                    "value": value,
                    "reason": reason,
                }
                if base:
                    failure["baseline_value"] = baseline
                failures.append(failure)
    overall = entries.get(())
    if overall is not None and () not in empty:
        problems = overall["models"][cand].get("problems", {})
        for name in PREDICTION_PROBLEMS:
            if problems.get(name):
                failures.append(
                    {
                        "metric": f"{name}_count",
                        "slice": {},
                        "threshold": {"value_threshold": {"upper_bound": 0}},
                        "value": problems[name],
                        "reason": f"{problems[name]} examples had a {name.replace('_', ' ')}; "
                        "they are left out of every metric",
                    }
                )
    if inference_failures:
        failures.append(
            {
                "metric": "inference_failure_count",
                "slice": {},
                "threshold": {"value_threshold": {"upper_bound": 0}},
                "value": int(inference_failures),
                "reason": f"inference failed on {inference_failures} examples; they are not evaluated",
            }
        )
    return {
        "blessed": not failures,
        "thresholds_checked": checked,
        "failures": failures,
        "missing_slices": missing_slices,
        "inference_failures": int(inference_failures),
        "skipped_change_thresholds": [
            {**rule.describe(), "reason": NO_BASELINE}
            for rule in settings.skipped_change_thresholds
        ],
    }


# --- writing ---------------------------------------------------------------------


def _json(obj) -> str:
    return json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n"


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def slice_name(slice_: dict) -> str:
    """A readable file-name-safe name of a slice: ``overall``, ``carrier=UA``."""
    if not slice_:
        return "overall"
    text = "__".join(f"{k}={v}" for k, v in sorted(slice_.items()))
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)[:120]


def _write_bytes(path: str, data: bytes) -> None:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    parent = posixpath.dirname(path)
    if parent and "://" not in path:
        import os

        os.makedirs(parent, exist_ok=True)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def write_report(report: dict, output_dir: str, html: bool = True, images: bool = True) -> None:
    """Writes every file of an evaluation (see the module docstring)."""
    from apache_beam.io.filesystems import FileSystems

    join = FileSystems.join
    _write_bytes(join(output_dir, "metrics.json"), _json(report["metrics"]).encode())
    _write_bytes(join(output_dir, "plots.json"), _json(report["plots"]).encode())
    _write_bytes(join(output_dir, "validation.json"), _json(report["validation"]).encode())
    if "cross_slice_metrics" in report:
        _write_bytes(
            join(output_dir, CROSS_SLICE_FILE), _json(report["cross_slice_metrics"]).encode()
        )
    blessing_dir = join(output_dir, BLESSING_DIR)
    stale = join(blessing_dir, NOT_BLESSED if report["blessed"] else BLESSED)
    if FileSystems.exists(stale):
        FileSystems.delete([stale])
    _write_bytes(join(blessing_dir, BLESSED if report["blessed"] else NOT_BLESSED), b"")
    images_written = {}
    if images:
        images_written = write_plots(report["plots"], join(output_dir, "plots"))
    if html:
        _write_bytes(
            join(output_dir, "index.html"), render_html(report, images_written).encode("utf-8")
        )


def write_plots(plots: list, folder: str) -> dict:
    """ROC and calibration PNGs per slice; returns ``{slice name: [file names]}``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    written: dict = {}
    for entry in plots:
        name = slice_name(entry["slice"])
        title = (
            "overall"
            if not entry["slice"]
            else ", ".join(f"{k}={v}" for k, v in entry["slice"].items())
        )
        p = entry["plots"]
        bp = entry.get("baseline_plots", {})
        files = []
        if "roc_curve" in p:
            fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=90)
            ax.plot(p["roc_curve"]["fpr"], p["roc_curve"]["tpr"], label="candidate", lw=1.6)
            if "roc_curve" in bp:
                ax.plot(
                    bp["roc_curve"]["fpr"],
                    bp["roc_curve"]["tpr"],
                    label="baseline",
                    lw=1.2,
                    ls="--",
                )
                ax.legend(loc="lower right")
            ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
            ax.set(
                xlabel="false positive rate",
                ylabel="true positive rate",
                title=f"ROC: {title}",
                xlim=(0, 1),
                ylim=(0, 1.01),
            )
            files.append(_save(fig, folder, f"{name}_roc.png"))
            plt.close(fig)
        cal = next(
            (v for k, v in p.items() if k != "roc_curve" and v and "weighted_examples" in v[0]),
            None,
        )
        if cal:
            fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=90)
            xs = [b["total_weighted_refined_prediction"] / b["weighted_examples"] for b in cal]
            ys = [b["total_weighted_label"] / b["weighted_examples"] for b in cal]
            sizes = [b["weighted_examples"] for b in cal]
            biggest = max(sizes) or 1.0
            ax.scatter(xs, ys, s=[4 + 60 * s / biggest for s in sizes], alpha=0.6, lw=0)
            ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
            ax.set(
                xlabel="mean prediction (bucket)",
                ylabel="mean label (bucket)",
                title=f"Calibration: {title}",
                xlim=(0, 1),
                ylim=(-0.01, 1.01),
            )
            files.append(_save(fig, folder, f"{name}_calibration.png"))
            plt.close(fig)
        if files:
            written[name] = files
    return written


def _save(fig, folder: str, file_name: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    _write_bytes(FileSystems.join(folder, file_name), buf.getvalue())
    return file_name


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}
td.s{text-align:left}
.ok{color:#176f2c}.bad{color:#b3261e}
.fail td{background:#fdecea}
img{border:1px solid #eee;margin:2px}
"""

_SCRIPT = """
document.querySelectorAll('th').forEach(function(th){th.addEventListener('click',function(){
 var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
 var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
 var rows=Array.prototype.slice.call(b.rows);
 rows.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;
  var fa=parseFloat(a),fc=parseFloat(c);
  if(!isNaN(fa)&&!isNaN(fc))return asc?fa-fc:fc-fa;return asc?a.localeCompare(c):c.localeCompare(a);});
 rows.forEach(function(r){b.appendChild(r);});});});
"""


def _fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"


def render_html(report: dict, images: dict) -> str:
    """The report page: blessing, failures, a sortable slice table, the plots."""
    rows = report["metrics"]
    names: list = []
    for r in rows:
        for k in r["metrics"]:
            if k not in names:
                names.append(k)
    failed = {slice_name(f["slice"]) for f in report["validation"]["failures"]}
    v = report["validation"]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Conveyor evaluation</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Model evaluation</h1>",
    ]
    status = "BLESSED" if report["blessed"] else "NOT BLESSED"
    out.append(
        f"<p class='{'ok' if report['blessed'] else 'bad'}'><b>{status}</b>: "
        f"{v['thresholds_checked']} threshold checks, {len(v['failures'])} failures.</p>"
    )
    skipped = v.get("skipped_change_thresholds") or []
    if skipped:
        names = ", ".join(sorted({html.escape(t["metric"]) for t in skipped}))
        out.append(
            f"<p>{len(skipped)} change thresholds not checked ({names}): "
            f"{html.escape(skipped[0]['reason'])}.</p>"
        )
    if v["failures"]:
        out.append(
            "<h2>Failures</h2><table><thead><tr><th>metric</th><th>slice</th><th>value</th>"
            "<th>threshold</th><th>reason</th></tr></thead><tbody>"
        )
        for f in v["failures"]:
            out.append(
                "<tr>" + f"<td class='s'>{html.escape(f['metric'])}</td>"
                f"<td class='s'>{html.escape(json.dumps(f['slice']))}</td>"
                f"<td>{_fmt(f['value'])}</td>"
                f"<td class='s'>{html.escape(json.dumps(f['threshold']))}</td>"
                f"<td class='s'>{html.escape(f['reason'])}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append(
        "<h2>Slices</h2><p>Click a column header to sort.</p><table><thead><tr><th>slice</th>"
    )
    out.extend(f"<th>{html.escape(n)}</th>" for n in names)
    out.append("<th>rows left out</th></tr></thead><tbody>")
    for r in rows:
        label = (
            "overall"
            if not r["slice"]
            else ", ".join(f"{k}={val}" for k, val in r["slice"].items())
        )
        cls = " class='fail'" if slice_name(r["slice"]) in failed else ""
        out.append(
            f"<tr{cls}><td class='s'>{html.escape(label)}{' (empty)' if r.get('empty') else ''}</td>"
        )
        for n in names:
            val = r["metrics"].get(n)
            data = "" if val is None else f" data-v='{val}'"
            out.append(f"<td{data}>{_fmt(val)}</td>")
        left_out = sum((r.get("problems") or {}).values())
        out.append(f"<td data-v='{left_out}'>{left_out:,}</td></tr>")
    out.append("</tbody></table>")
    if images:
        out.append("<h2>Plots</h2>")
        for name, files in images.items():
            out.append(f"<h3>{html.escape(name)}</h3><div>")
            out.extend(f"<img src='plots/{html.escape(f)}' alt='{html.escape(f)}'>" for f in files)
            out.append("</div>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out)
