"""Runs side by side: their runtime parameters, each component's parameters, the spans of their
input examples and their evaluation's overall metrics, with what differs marked; and the
statistics of the first two runs, split by split, with the drift between them."""

from __future__ import annotations

import json
import os

from conveyor.orchestration.ui import queries, views
from conveyor.orchestration.ui.store import NotFound, read_json

#: Runs compared at most at once.
MAX_RUNS = 10


def compare(ref, md, run_ids: list[str]) -> dict:
    """``{"runs": [...], "rows": [{"section", "name", "values", "differs"}]}`` for 2+ runs.

    ``values`` holds one entry per run (None where a run has none). Sections:
    ``runtime_parameter``, ``parameter`` (``component.name``), ``span``
    (``component.input``: the spans of its Examples), ``metric`` (the overall slice
    of each ModelEvaluation's ``metrics.json``, ``component.metric``). ``"statistics"``:
    :func:`statistics_across` the first two runs.
    """
    if not 2 <= len(run_ids) <= MAX_RUNS:
        raise ValueError(f"runs: give 2 to {MAX_RUNS} run ids, got {len(run_ids)}")
    details = []
    for run_id in run_ids:
        if md is None:
            raise NotFound(f"no run {run_id!r} of pipeline {ref.name!r}")
        details.append(queries.run_detail(ref, md, run_id))
    tables = [_values(d) for d in details]
    rows = []
    keys: list[tuple[str, str]] = []
    for t in tables:
        keys += [k for k in t if k not in keys]
    for section, name in keys:
        values = [t.get((section, name)) for t in tables]
        rows.append(
            {
                "section": section,
                "name": name,
                "values": values,
                "differs": len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1,
            }
        )
    return {
        "pipeline": ref.name,
        "runs": [{k: d[k] for k in ("run_id", "state", "create_time")} for d in details],
        "rows": rows,
        "statistics": statistics_across(details[0], details[1]),
    }


def _statistics_outputs(detail: dict) -> dict[str, dict]:
    """``{component.output: artifact row}`` of a run's ExampleStatistics outputs on disk."""
    out = {}
    for c in detail["components"]:
        for key, arts in c["outputs"].items():
            for a in arts:
                if a["type"] == "ExampleStatistics" and "://" not in a["uri"]:
                    out.setdefault(f"{c['component_id']}.{key}", a)
    return out


def statistics_across(a: dict, b: dict) -> list[dict]:
    """Per statistics output both runs have and per split both have: a statistics view of
    that split in run ``a`` and in run ``b`` (the split names ``"<split> @ <run>"``), with
    the drift between them.

    Returns ``[{"output", "split", "artifacts": [id_a, id_b], "view"}]``.
    """
    from conveyor.components.statistics import drift

    mine, theirs = _statistics_outputs(a), _statistics_outputs(b)
    out = []
    for output in [k for k in mine if k in theirs]:
        left = views.statistics_view(mine[output]["uri"])["splits"]
        right = views.statistics_view(theirs[output]["uri"])["splits"]
        for split in [s for s in left if s in right]:
            name = split or "(none)"
            splits = {
                f"{name} @ {a['run_id']}": left[split],
                f"{name} @ {b['run_id']}": right[split],
            }
            if len(splits) < 2:  # the same run twice
                continue
            out.append(
                {
                    "output": output,
                    "split": split,
                    "artifacts": [mine[output]["id"], theirs[output]["id"]],
                    "view": {"kind": "statistics", "splits": splits, "drift": drift(splits)},
                }
            )
    return out


def _values(detail: dict) -> dict:
    out = {}
    for k, v in detail["runtime_parameters"].items():
        out[("runtime_parameter", k)] = v
    for c in detail["components"]:
        cid = c["component_id"]
        for k, v in sorted(c["parameters"].items()):
            out[("parameter", f"{cid}.{k}")] = v
        for key, arts in c["inputs"].items():
            spans = [a["properties"].get("span") for a in arts if a["type"] == "Examples"]
            if any(s is not None for s in spans):
                out[("span", f"{cid}.{key}")] = spans
        for arts in c["outputs"].values():
            for a in arts:
                if a["type"] == "ModelEvaluation" and "://" not in a["uri"]:
                    for name, value in _overall(a["uri"]).items():
                        out[("metric", f"{cid}.{name}")] = value
    return out


def _overall(uri: str) -> dict:
    metrics = read_json(os.path.join(uri, "metrics.json"))
    for entry in metrics if isinstance(metrics, list) else []:
        if not entry.get("slice"):
            return dict(entry.get("metrics") or {})
    return {}
