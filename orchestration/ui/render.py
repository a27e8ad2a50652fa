"""HTML of an artifact's view (:mod:`conveyor.orchestration.ui.views`): tables, and inline SVG
histograms for statistics."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

e = html.escape


def _num(v) -> str:
    if isinstance(v, bool) or v is None:
        return e(str(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    return e(str(v))


def _td(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class=num data-v="{v}">{_num(v)}</td>'
    return f"<td>{e('' if v is None else str(v))}</td>"


def histogram(buckets: list, width: int = 120, height: int = 28) -> str:
    """An inline SVG bar chart of ``[[low, high, count], ...]``."""
    if not buckets:
        return ""
    top = max(b[2] for b in buckets) or 1
    w = width / len(buckets)
    bars = "".join(
        f'<rect x="{i * w:.1f}" y="{height - height * b[2] / top:.1f}" width="{max(w - 1, 1):.1f}" '
        f'height="{height * b[2] / top:.1f}" fill="#5c6bc0"><title>{e(str(b[0]))}–{e(str(b[1]))}: '
        f"{b[2]:g}</title></rect>"
        for i, b in enumerate(buckets)
    )
    return f'<svg class="hist" width="{width}" height="{height}">{bars}</svg>'


def _statistics(view: dict) -> str:
    cols = [
        "type",
        "count",
        "missing_pct",
        "mean",
        "std",
        "min",
        "median",
        "max",
        "zeros",
        "unique",
    ]
    out = []
    for split, data in view["splits"].items():
        rows = []
        for f in data["features"]:
            top = ", ".join(f"{e(str(v))} ({c:g})" for v, c in f.get("top_values", []))
            rows.append(
                f"<tr><td>{e(f['feature'])}</td>"
                + "".join(_td(f.get(c)) for c in cols)
                + f"<td>{top}</td><td>{histogram(f.get('histogram', []))}</td></tr>"
            )
        out.append(
            f"<h2>Split {e(split or '(none)')} · {data['num_examples']} examples</h2>"
            '<table class="sortable statistics"><thead><tr><th>Feature</th>'
            + "".join(f"<th>{c.replace('_pct', ' %')}</th>" for c in cols)
            + "<th>Top values</th><th>Histogram</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    d = view.get("drift")
    if d and d["features"]:
        rows = "".join(
            f"<tr><td>{e(f['feature'])}</td><td>{e(f['measure'])}</td>{_td(f['value'])}</tr>"
            for f in d["features"]
        )
        out.append(
            f"<h2>Drift between {e(d['between'][0])} and {e(d['between'][1])}</h2>"
            '<table class="sortable drift"><thead><tr><th>Feature</th><th>Measure</th>'
            f"<th>Value</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(out) or "<p>No statistics file in this artifact.</p>"


def _schema(view: dict) -> str:
    rows = "".join(
        f"<tr><td>{e(f['feature'])}</td><td>{e(f['type'])}</td><td>{e(f['presence'])}</td>"
        f"<td>{e(f['valency'])}</td><td>{e(f['domain'])}</td>"
        f"<td>{e(', '.join(map(str, f['domain_values'])))}</td></tr>"
        for f in view["features"]
    )
    return (
        '<table class="sortable schema"><thead><tr><th>Feature</th><th>Type</th><th>Presence</th>'
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


def _evaluation(view: dict, files: str | None) -> str:
    names = view["metric_names"]
    rows = "".join(
        f"<tr><td>{e(s['slice'])}</td>" + "".join(_td(s["metrics"].get(n)) for n in names) + "</tr>"
        for s in view["slices"]
    )
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
        + '<h2>Slices</h2><table class="sortable slices"><thead><tr><th>Slice</th>'
        + "".join(f"<th>{e(n)}</th>" for n in names)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    if files and view["plots"]:
        out += "<h2>Plots</h2>" + "".join(
            f'<figure class="plot"><img src="{files}/{e(quote(p))}" width="280" '
            f'alt="{e(p)}"><figcaption>{e(p)}</figcaption></figure>'
            for p in view["plots"][:24]
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


def render_view(view: dict | None, pipeline: str, files: str | None) -> str:
    """The HTML of a view (empty without one); ``files`` is the URL of the artifact's folder."""
    if view is None:
        return ""
    kind = view["kind"]
    if kind == "error":
        return f'<pre class="error">could not read this artifact: {e(view["error"])}</pre>'
    if kind == "statistics":
        return _statistics(view)
    if kind == "schema":
        return _schema(view)
    if kind == "anomalies":
        return _anomalies(view)
    if kind == "evaluation":
        return _evaluation(view, files)
    if kind == "blessing":
        return _blessing(view)
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
