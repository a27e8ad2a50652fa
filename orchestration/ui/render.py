"""HTML of an artifact's view (:mod:`conveyor.orchestration.ui.views`): tables, and inline SVG
histograms for statistics (rendered by the statistics component's ``statistics_html``, the
same page ``statistics.html`` shows)."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

from conveyor.components.statistics import (
    format_number,
    statistics_html,
    table_cell,
)
from conveyor.orchestration.ui import plots

__all__ = ["MAX_PLOTTED_SLICES", "render_view"]

e = html.escape


_num = format_number
_td = table_cell


def _schema(view: dict, css: str = "schema") -> str:
    rows = "".join(
        f"<tr><td>{e(f['feature'])}</td><td>{e(f['type'])}</td><td>{e(f['presence'])}</td>"
        f"<td>{e(f['valency'])}</td><td>{e(f['domain'])}</td>"
        f"<td>{e(', '.join(map(str, f['domain_values'])))}</td></tr>"
        for f in view["features"]
    )
    return (
        f'<table class="sortable {css}"><thead><tr><th>Feature</th><th>Type</th><th>Presence</th>'
        "<th>Valency</th><th>Domain</th><th>Values</th></tr></thead><tbody>"
        + rows
        + "</tbody></table>"
    )


def _anomalies(view: dict) -> str:
    out = []
    for split, data in view["splits"].items():
        rows = "".join(
            f'<tr class="bad"><td>{e(a["feature"])}</td><td>{e(a["severity"])}</td>'
            f"<td>{e(a['short_description'])}</td><td>{e(a['description'])}</td></tr>"
            for a in data["anomalies"]
        )
        out.append(
            f"<h2>Split {e(split or '(none)')}</h2>"
            + (
                '<table class="anomalies"><thead><tr><th>Feature</th><th>Severity</th><th>Anomaly</th>'
                f"<th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
                if rows
                else "<p>No anomalies.</p>"
            )
        )
    return "".join(out)


def _slice_table(view: dict) -> str:
    """The sortable slice table; with a baseline, each metric's baseline value and the
    difference (candidate minus baseline) beside it."""
    names = view["metric_names"]
    baseline = any("baseline_metrics" in s for s in view["slices"])
    head = "".join(
        f"<th>{e(n)}</th>" + (f"<th>{e(n)} (baseline)</th><th>{e(n)} diff</th>" if baseline else "")
        for n in names
    )
    rows = []
    for s in view["slices"]:
        cells = []
        for n in names:
            cells.append(_td(s["metrics"].get(n)))
            if baseline:
                cells.append(_td((s.get("baseline_metrics") or {}).get(n)))
                cells.append(_td((s.get("diff") or {}).get(n)))
        rows.append(f"<tr><td>{e(s['slice'])}</td>{''.join(cells)}</tr>")
    return (
        f'<h2>Slices</h2><table class="sortable slices{" baseline" if baseline else ""}">'
        f"<thead><tr><th>Slice</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _curves(view: dict) -> str:
    """Each slice's ROC and calibration plots, drawn here as inline SVG."""
    figures = []
    for c in (view.get("curves") or [])[:MAX_PLOTTED_SLICES]:
        parts = []
        if c["roc"]:
            parts.append(plots.roc_svg(c["roc"], f"ROC · {c['slice']}", c.get("baseline_roc")))
        if c["calibration"]:
            parts.append(
                plots.calibration_svg(
                    c["calibration"], f"Calibration · {c['slice']}", c.get("baseline_calibration")
                )
            )
        figures.append(
            f'<figure class="curves" data-slice="{e(c["slice"])}">{"".join(parts)}'
            f"<figcaption>{e(c['slice'])}</figcaption></figure>"
        )
    return "<h2>Plots</h2>" + "".join(figures) if figures else ""


def _skipped(skipped: list) -> str:
    """The change thresholds not checked (no baseline model yet), as ``validation.json`` lists them."""
    rows = "".join(
        f"<tr><td>{e(str(t.get('metric')))}</td>"
        f"<td><code>{e(json.dumps(t.get('threshold', ''), default=str))}</code></td>"
        f"<td>{e(str(t.get('reason', '')))}</td></tr>"
        for t in skipped
        if isinstance(t, dict)
    )
    if not rows:
        return ""
    return (
        "<h2>Change thresholds skipped</h2>"
        '<table class="skipped"><thead><tr><th>Metric</th><th>Threshold</th><th>Why</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


#: Slices whose plots the evaluation view draws (the first ones of ``plots.json``).
MAX_PLOTTED_SLICES = 12


def _evaluation(view: dict, files: str | None) -> str:
    v = view.get("validation") or {}
    failures = "".join(
        f'<tr class="bad"><td>{e(str(f.get("metric")))}</td><td>{e(json.dumps(f.get("slice", {})))}</td>'
        f"<td>{_num(f.get('value'))}</td><td>{e(json.dumps(f.get('threshold', ''), default=str))}</td></tr>"
        for f in v.get("failures", [])
    )
    blessed = v.get("blessed")
    out = (
        f"<h2>Validation: {'BLESSED' if blessed else 'NOT BLESSED' if blessed is not None else '-'}</h2>"
        f"<p>thresholds checked: {e(str(v.get('thresholds_checked', '-')))}</p>"
        + (
            '<table class="failures"><thead><tr><th>Metric</th><th>Slice</th><th>Value</th>'
            f"<th>Threshold</th></tr></thead><tbody>{failures}</tbody></table>"
            if failures
            else ""
        )
        + _skipped(v.get("skipped_change_thresholds") or [])
        + _slice_table(view)
        + _curves(view)
    )
    if files and view["plots"]:
        out += (
            "<h2>The Evaluator's images</h2><ul class=images>"
            + "".join(
                f'<li><a href="{files}/{e(quote(p))}">{e(p)}</a></li>' for p in view["plots"][:48]
            )
            + "</ul>"
        )
    return out


def _blessing(view: dict) -> str:
    text = "BLESSED" if view["blessed"] else "NOT BLESSED"
    out = f"<h2>{text}</h2><p>markers: {e(', '.join(view['markers']) or 'none')}</p>"
    if view.get("infra_validation"):
        out += _json_table(view["infra_validation"])
    return out


def _json_table(data) -> str:
    if not isinstance(data, dict):
        return f"<pre>{e(json.dumps(data, indent=2, default=str))}</pre>"
    rows = "".join(
        f"<tr><td>{e(k)}</td><td><code>{e(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in data.items()
    )
    return f'<table class="summary"><tbody>{rows}</tbody></table>'


def _sample(sample: dict) -> str:
    out = []
    for split, rows in sample.items():
        if not rows:
            continue
        names = list(rows[0])
        out.append(
            f"<h2>First rows of {e(split)}</h2>"
            '<table class="sortable sample"><thead><tr>'
            + "".join(f"<th>{e(n)}</th>" for n in names)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(_td(r.get(n)) for n in names) + "</tr>" for r in rows)
            + "</tbody></table>"
        )
    return "".join(out)


def _transform(view: dict) -> str:
    """The summary, then the input (raw) and output (transformed) features."""
    out = "<h2>Summary</h2>" + _json_table(view["summary"]) if view.get("summary") else ""
    for title, key in (
        ("Input features", "input_features"),
        ("Output features", "output_features"),
    ):
        if view.get(key):
            out += f"<h2>{title}</h2>" + _schema({"features": view[key]}, key.replace("_", "-"))
    return out


def _inference(view: dict) -> str:
    """The counts, then the first predictions: one row each, a column per output."""
    out = ""
    if view.get("skipped"):
        out += "<p class=bad>Skipped: the model was not blessed (SKIPPED_NOT_BLESSED).</p>"
    if view.get("summary") is not None:
        out += "<h2>Summary</h2>" + _json_table(view["summary"])
    sample = view.get("sample") or {}
    if sample.get("error"):
        out += f'<pre class="error">could not read the predictions: {e(sample["error"])}</pre>'
    rows = sample.get("predictions") or []
    if rows:
        names = []
        for r in rows:
            names += [n for n in r["outputs"] if n not in names]
        body = "".join(
            f"<tr>{_td(i)}<td>{e(r['kind'])}</td>"
            + "".join(_prediction_cell(r["outputs"].get(n)) for n in names)
            + "</tr>"
            for i, r in enumerate(rows)
        )
        out += (
            f"<h2>First predictions</h2><p class=muted>from {e(sample['file'])}</p>"
            '<table class="sortable predictions"><thead><tr><th>#</th><th>Log</th>'
            + "".join(f"<th>{e(n)}</th>" for n in names)
            + f"</tr></thead><tbody>{body}</tbody></table>"
        )
    return out


def _prediction_cell(value) -> str:
    if not isinstance(value, list):
        return _td(value)
    if value and all(isinstance(c, list) and len(c) == 2 for c in value):  # classes
        text = ", ".join(f"{label}: {_plain(score)}" for label, score in value)
    else:
        text = ", ".join(_plain(v) for v in value)
    return f"<td>{e(text)}</td>"


def _plain(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render_view(view: dict | None, pipeline: str, files: str | None) -> str:
    """The HTML of a view (empty without one); ``files`` is the URL of the artifact's folder."""
    if view is None:
        return ""
    kind = view["kind"]
    if kind == "error":
        return f'<pre class="error">could not read this artifact: {e(view["error"])}</pre>'
    if kind == "statistics":
        return statistics_html(view)
    if kind == "schema":
        return _schema(view)
    if kind == "anomalies":
        return _anomalies(view)
    if kind == "evaluation":
        return _evaluation(view, files)
    if kind == "blessing":
        return _blessing(view)
    if kind == "inference_result":
        return _inference(view)
    if kind == "transform_graph":
        return _transform(view)
    summary = view.get("summary")
    if kind == "examples" and isinstance(summary, dict):
        splits = "".join(
            f"<tr><td>{e(k)}</td>{_td(v)}</tr>" for k, v in (summary.get("splits") or {}).items()
        )
        return (
            f'<h2>Splits</h2><table class="splits"><tbody>{splits}</tbody></table>'
            + _json_table({k: v for k, v in summary.items() if k not in ("splits", "features")})
            + _sample(view.get("sample") or {})
        )
    return "<h2>Summary</h2>" + _json_table(summary) if summary is not None else ""
