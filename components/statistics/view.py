"""Conveyor's own view of statistics: per-feature rows, drift, and self-contained HTML.

One rendering serves ``statistics.html`` (written next to ``FeatureStats.pb``), the
notebook's display and ``conveyor ui``'s statistics view. Nothing is loaded from the
network: the histograms are inline SVG, the style and the sorting script are inlined.

Example::

    from conveyor.components.statistics import statistics_page, statistics_view

    view = statistics_view({"train": train_stats, "eval": eval_stats})
    open("statistics.html", "w").write(statistics_page(view))
"""

from __future__ import annotations

import html
from collections.abc import Mapping

e = html.escape

#: Top values kept per string feature (its rank histogram keeps four times as many).
TOP_VALUES = 5

#: The columns of a split's table after the feature name (``missing_pct`` shows as "missing %").
COLUMNS = ("type", "count", "missing_pct", "mean", "std", "min", "median", "max", "zeros", "unique")

#: The style of the tables and histograms (the UI's stylesheet includes it).
TABLE_CSS = """
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eceff1; cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg.hist { vertical-align: middle; }
"""

#: Sortable tables: a click on a header of ``table.sortable`` sorts by that column.
SORT_JS = """
document.addEventListener('click', function (ev) {
  var th = ev.target.closest('th'); if (!th) return;
  var table = th.closest('table.sortable'); if (!table) return;
  var i = Array.prototype.indexOf.call(th.parentNode.children, th);
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
  rows.sort(function (a, b) {
    var x = a.cells[i].dataset.v || a.cells[i].textContent, y = b.cells[i].dataset.v || b.cells[i].textContent;
    var nx = parseFloat(x), ny = parseFloat(y);
    if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
    return dir * x.localeCompare(y);
  });
  rows.forEach(function (r) { body.appendChild(r); });
});
"""


def statistics_view(stats_by_split: Mapping[str, object]) -> dict:
    """The view of ``{split: DatasetFeatureStatisticsList}`` (split ``""``: no split).

    Returns ``{"kind": "statistics", "splits": {split: {"num_examples", "features",
    "slices"}}, "drift"}``: one row per feature of the unsliced dataset (type, count,
    missing %, mean, std, min, median, max, zeros, unique, top values, histogram buckets
    ``[low, high, count]``), the slices' names and example counts, and :func:`drift`.

    Example::

        view = statistics_view({"train": read_stats("out/Split-train/FeatureStats.pb")})
        view["splits"]["train"]["features"][0]["mean"]
    """
    splits = {}
    for split, stats in stats_by_split.items():
        if not hasattr(stats, "datasets"):
            raise TypeError(
                f"stats_by_split[{split!r}]: a DatasetFeatureStatisticsList, not "
                f"{type(stats).__name__}"
            )
        datasets = list(stats.datasets)
        first = datasets[0] if datasets else None
        splits[split] = {
            "num_examples": first.num_examples if first is not None else 0,
            "features": [feature_row(f, first.num_examples) for f in first.features]
            if first is not None
            else [],
            "slices": [[d.name, d.num_examples] for d in datasets[1:]],
        }
    return {"kind": "statistics", "splits": splits, "drift": drift(splits)}


def drift(splits: Mapping[str, dict]) -> dict | None:
    """Between the first two splits, per feature both have: ``l_infinity`` (a string feature:
    the largest difference of a value's share among the top values) or
    ``mean_shift_in_std`` (a number: the difference of the means over the larger std).

    Returns ``{"between": [a, b], "features": [{"feature", "measure", "value"}]}``, None
    with fewer than two splits.
    """
    if len(splits) < 2:
        return None
    a, b = list(splits)[:2]
    right = {f["feature"]: f for f in splits[b]["features"]}
    rows = []
    for fa in splits[a]["features"]:
        fb = right.get(fa["feature"])
        if fb is None:
            continue
        if "top_values" in fa and "top_values" in fb:
            pa, pb = _shares(fa["top_values"]), _shares(fb["top_values"])
            value = max(
                (abs(pa.get(v, 0.0) - pb.get(v, 0.0)) for v in set(pa) | set(pb)), default=0.0
            )
            rows.append(
                {"feature": fa["feature"], "measure": "l_infinity", "value": round(value, 4)}
            )
        elif "mean" in fa and "mean" in fb:
            scale = max(fa.get("std") or 0.0, fb.get("std") or 0.0)
            diff = abs(fa["mean"] - fb["mean"])
            value = diff / scale if scale else (0.0 if diff == 0 else float("inf"))
            rows.append(
                {"feature": fa["feature"], "measure": "mean_shift_in_std", "value": round(value, 4)}
            )
    return {"between": [a, b], "features": rows}


def _shares(top_values: list) -> dict:
    total = sum(c for _, c in top_values) or 1.0
    return {v: c / total for v, c in top_values}


def feature_row(feature, num_examples: int) -> dict:
    """One ``FeatureNameStatistics`` as a row: ``{"feature", "type", "count", ...}``
    (the keys a feature's statistics have; see :func:`statistics_view`)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    row = {
        "feature": ".".join(feature.path.step) or feature.name,
        "type": statistics_pb2.FeatureNameStatistics.Type.Name(feature.type),
    }
    which = feature.WhichOneof("stats")
    stats = getattr(feature, which) if which else None
    if stats is not None and which != "custom_stats":
        common = stats.common_stats
        total = common.num_non_missing + common.num_missing
        row["count"] = common.num_non_missing
        row["missing_pct"] = round(100.0 * common.num_missing / total, 2) if total else 0.0
    if which == "num_stats":
        n = feature.num_stats
        row.update(
            mean=n.mean, std=n.std_dev, min=n.min, median=n.median, max=n.max, zeros=n.num_zeros
        )
        standard = [h for h in n.histograms if h.type == h.STANDARD]
        if standard:
            row["histogram"] = [
                [b.low_value, b.high_value, b.sample_count] for b in standard[0].buckets
            ]
    elif which == "string_stats":
        s = feature.string_stats
        row["unique"] = s.unique
        row["top_values"] = [[v.value, v.frequency] for v in s.top_values[:TOP_VALUES]]
        if s.rank_histogram.buckets:
            row["histogram"] = [
                [b.label, b.label, b.sample_count]
                for b in s.rank_histogram.buckets[: TOP_VALUES * 4]
            ]
    elif which == "bytes_stats":
        row["unique"] = feature.bytes_stats.unique
    return row


def format_number(v) -> str:
    """A number as a table shows it (floats to 4 significant digits), HTML-escaped."""
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.4g}"
    return e(str(v))


def table_cell(v) -> str:
    """A ``<td>``: numbers right-aligned with their exact value in ``data-v`` (for sorting)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class=num data-v="{v}">{format_number(v)}</td>'
    return f"<td>{e('' if v is None else str(v))}</td>"


def histogram_svg(buckets: list, width: int = 120, height: int = 28) -> str:
    """An inline SVG bar chart of ``[[low, high, count], ...]`` (empty without buckets)."""
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


def _split_table(split: str, data: dict) -> str:
    rows = []
    for f in data["features"]:
        top = ", ".join(f"{e(str(v))} ({c:g})" for v, c in f.get("top_values", []))
        rows.append(
            f"<tr><td>{e(f['feature'])}</td>"
            + "".join(table_cell(f.get(c)) for c in COLUMNS)
            + f"<td>{top}</td><td>{histogram_svg(f.get('histogram', []))}</td></tr>"
        )
    slices = "".join(
        f"<li>{e(name)}: {count} examples</li>" for name, count in data.get("slices", [])
    )
    return (
        f"<h2>Split {e(split or '(none)')} · {data['num_examples']} examples</h2>"
        '<table class="sortable statistics"><thead><tr><th>Feature</th>'
        + "".join(f"<th>{c.replace('_pct', ' %')}</th>" for c in COLUMNS)
        + "<th>Top values</th><th>Histogram</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (f'<p>Slices:</p><ul class="slices">{slices}</ul>' if slices else "")
    )


def statistics_html(view: dict) -> str:
    """The HTML fragment of a :func:`statistics_view`: a sortable table per split, then the
    drift between the first two splits."""
    out = [_split_table(split, data) for split, data in view["splits"].items()]
    d = view.get("drift")
    if d and d["features"]:
        rows = "".join(
            f"<tr><td>{e(f['feature'])}</td><td>{e(f['measure'])}</td>{table_cell(f['value'])}</tr>"
            for f in d["features"]
        )
        out.append(
            f"<h2>Drift between {e(d['between'][0])} and {e(d['between'][1])}</h2>"
            '<table class="sortable drift"><thead><tr><th>Feature</th><th>Measure</th>'
            f"<th>Value</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(out) or "<p>No statistics file in this artifact.</p>"


def statistics_page(view: dict, title: str = "Conveyor statistics") -> str:
    """A whole self-contained HTML page of :func:`statistics_html`: style and script inlined,
    no external URL, so it opens from disk with no network."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>body {{ font-family: system-ui, sans-serif; "
        f"margin: 12px 16px; color: #222; }}{TABLE_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1>{statistics_html(view)}<script>{SORT_JS}</script></body></html>"
    )
