"""The HTML pages: pipelines, a pipeline's runs, a run (its DAG), a node, an artifact, a
lineage graph. Plain HTML built here, the stylesheet and script from ``/static``."""

from __future__ import annotations

import html
import json
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse

from conveyor.orchestration.metadata import RUNNING
from conveyor.orchestration.ui import compare as comparing
from conveyor.orchestration.ui import graph, queries, views
from conveyor.orchestration.ui.render import render_view

e = html.escape


def _q(text) -> str:
    return quote(str(text), safe="")


def page(request: Request, title: str, body: str, refresh: int | None = None) -> HTMLResponse:
    """A whole page: the header, ``body``, the CSRF token; ``refresh`` reloads it every N s."""
    ui = request.app.state.ui
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    text = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{e(title)} · Conveyor</title>{meta}"
        f'<meta name="csrf-token" content="{e(ui.csrf)}">'
        '<link rel="stylesheet" href="/static/ui.css"></head><body>'
        '<header><a href="/"><b>Conveyor</b></a><a href="/">Pipelines</a>'
        '<a href="/api/openapi.json">API</a></header>'
        f"<main><h1>{e(title)}</h1>{body}</main>"
        '<script src="/static/ui.js"></script></body></html>'
    )
    return HTMLResponse(text)


def state(s: str | None) -> str:
    """A state as a coloured badge."""
    return f'<span class="state {e(s or "")}">{e(s or "-")}</span>' if s else "-"


def _time(epoch) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _secs(s) -> str:
    return f"{s:.1f} s" if isinstance(s, (int, float)) else "-"


def art_link(pipeline: str, a: dict) -> str:
    """A link to an artifact's page: ``Type #id``."""
    return f'<a href="/pipelines/{_q(pipeline)}/artifacts/{a["id"]}">{e(a["type"])} #{a["id"]}</a>'


def pipelines_page(request: Request) -> HTMLResponse:
    """``/``: the pipelines, their engine, last run and its state."""
    store = request.app.state.ui.store
    rows = []
    for ref in store.pipelines():
        with store.metadata(ref) as md:
            p = queries.pipeline_row(ref, md)
        last = p["last_run"] or {}
        run = (
            f'<a href="/pipelines/{_q(p["name"])}/runs/{_q(last["run_id"])}">{e(last["run_id"])}</a>'
            if last
            else "-"
        )
        rows.append(
            f'<tr><td><a href="/pipelines/{_q(p["name"])}">{e(p["name"])}</a></td>'
            f"<td>{e(p['engine'] or 'unregistered')}</td>"
            f"<td>{run}</td><td>{e(last.get('create_time', '-'))}</td>"
            f"<td>{state(last.get('state'))}</td><td class=muted>{e(p['root'])}</td></tr>"
        )
    body = (
        '<table class="sortable pipelines"><thead><tr><th>Pipeline</th><th>Engine</th>'
        "<th>Last run</th><th>Started</th><th>State</th><th>Root</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (
            ""
            if rows
            else "<p>No pipelines: register one (conveyor pipeline create) or give --root.</p>"
        )
    )
    return page(request, "Pipelines", body)


def runs_page(request: Request) -> HTMLResponse:
    """``/pipelines/{name}``: its runs (refreshing while one is live), a form to start one."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    try:
        offset = max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        offset = 0
    with store.metadata(ref) as md:
        listing = queries.runs_of(ref, md, RUNS_PER_PAGE, offset)
    runs = listing["runs"]
    rows = []
    for r in runs:
        counts = " ".join(f"{k.lower()}={v}" for k, v in sorted(r["components"].items()))
        params = ", ".join(f"{k}={v}" for k, v in r["runtime_parameters"].items())
        spans = ", ".join(str(x) for x in r.get("spans") or []) or "-"
        rows.append(
            f'<tr data-state="{e(r["state"])}"><td><input type="checkbox" name="runs" '
            f'value="{e(r["run_id"])}" form="compare"> '
            f'<a href="/pipelines/{_q(ref.name)}/runs/{_q(r["run_id"])}">'
            f"{e(r['run_id'])}</a></td><td>{e(r['create_time'])}</td>"
            f"<td class=num>{_secs(r['duration_seconds'])}</td><td>{state(r['state'])}"
            f" <span class=muted>{e(r['reason'])}</span></td><td>{e(counts)}</td>"
            f"<td class=spans>{e(spans)}</td><td>{e(params)}</td></tr>"
        )
    live = any(r["state"] == RUNNING for r in runs)
    last_params = runs[0]["runtime_parameters"] if runs else {}
    form = ""
    if ref.startable:
        form = (
            f'<form method="post" data-api="1" action="/api/pipelines/{_q(ref.name)}/runs" '
            f'class="start" data-runs-url="/api/pipelines/{_q(ref.name)}/runs?limit=1" '
            f'data-newest="{e(runs[0]["run_id"] if runs and offset == 0 else "")}">'
            "<h2>Start a run</h2><p>Runtime parameters (NAME=VALUE, one a line):</p>"
            f'<textarea name="runtime_parameters" rows="3" cols="50">'
            f"{e(chr(10).join(f'{k}={v}' for k, v in last_params.items()))}</textarea><br>"
            '<label><input type="checkbox" name="no_cache"> no cache</label> '
            '<button type="submit">Start</button> <span class="result"></span></form>'
        )
    body = (
        f"<p>Engine: {e(ref.engine or 'unregistered')} · root <code>{e(ref.root)}</code>"
        + (" · <b>a run is live: this page refreshes every 3 s</b>" if live else "")
        + "</p>"
        '<table class="sortable runs"><thead><tr><th>Run</th><th>Started</th><th>Duration</th>'
        "<th>State</th><th>Components</th><th>Spans</th><th>Runtime parameters</th></tr>"
        "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + _pager(ref.name, offset, len(runs), listing["has_more"])
        + f'<form id="compare" method="get" action="/pipelines/{_q(ref.name)}/compare">'
        '<button type="submit">Compare the runs ticked</button></form>' + form
    )
    return page(request, f"Runs of {ref.name}", body, refresh=3 if live else None)


#: Runs on one page of a pipeline's runs.
RUNS_PER_PAGE = 50


def _pager(name: str, offset: int, shown: int, has_more: bool) -> str:
    links = []
    if offset > 0:
        links.append(
            f'<a href="/pipelines/{_q(name)}?offset={max(0, offset - RUNS_PER_PAGE)}">newer</a>'
        )
    if has_more:
        links.append(f'<a href="/pipelines/{_q(name)}?offset={offset + RUNS_PER_PAGE}">older</a>')
    text = f"runs {offset + 1}-{offset + shown}" if shown else "no runs"
    return f"<p class=pager>{text} {' · '.join(links)}</p>"


def run_page(request: Request) -> HTMLResponse:
    """``/pipelines/{name}/runs/{run_id}``: the run's DAG and its components."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    run_id = request.path_params["run_id"]
    with store.metadata(ref) as md:
        if md is None:
            raise queries.NotFound(f"no run {run_id!r} of pipeline {ref.name!r}")
        run = queries.run_detail(ref, md, run_id)
    base = f"/pipelines/{_q(ref.name)}/runs/{_q(run_id)}"
    nodes = [
        {
            "id": c["component_id"],
            "label": c["component_id"],
            "sub": f"{c['state']}"
            + (f" · {c['seconds']:.1f}s" if c["seconds"] is not None else ""),
            "state": c["state"],
            "href": f"{base}/nodes/{_q(c['component_id'])}",
        }
        for c in run["components"]
    ]
    edges = [(x["from"], x["to"], x["key"]) for x in run["edges"]]
    rows = []
    for c in run["components"]:
        outs = " ".join(art_link(ref.name, a) for arts in c["outputs"].values() for a in arts)
        err = (c["error"] or c["reason"] or "").splitlines()
        rows.append(
            f'<tr><td><a href="{base}/nodes/{_q(c["component_id"])}">{e(c["component_id"])}</a></td>'
            f"<td>{state(c['state'])}</td><td>{'yes' if c['cached'] else ''}</td>"
            f"<td>{_time(c['start_time'])}</td><td class=num>{_secs(c['seconds'])}</td>"
            f"<td>{outs}</td><td class=muted>{e(err[0] if err else '')}</td></tr>"
        )
    live = run["state"] == RUNNING
    cancel = (
        f'<form method="post" data-api="1" action="/api/runs/{_q(run_id)}/cancel?pipeline={_q(ref.name)}">'
        '<button type="submit">Cancel run</button> <span class="result"></span></form>'
        if live
        else ""
    )
    params = ", ".join(f"{k}={v}" for k, v in run["runtime_parameters"].items()) or "none"
    body = (
        f'<p>Pipeline <a href="/pipelines/{_q(ref.name)}">{e(ref.name)}</a> · started '
        f"{e(run['create_time'])} · {state(run['state'])} <span class=muted>{e(run['reason'])}</span>"
        f" · runtime parameters: {e(params)}</p>{cancel}"
        + graph.svg(nodes, edges, "dag")
        + '<table class="sortable components"><thead><tr><th>Component</th><th>State</th><th>Cached</th>'
        "<th>Started</th><th>Duration</th><th>Outputs</th><th>Error / reason</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return page(request, f"Run {run_id}", body, refresh=3 if live else None)


def compare_page(request: Request) -> HTMLResponse:
    """``/pipelines/{name}/compare?runs=a&runs=b``: runs side by side."""
    from conveyor.orchestration.ui.api import run_ids_of

    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    run_ids = run_ids_of(request)
    with store.metadata(ref) as md:
        table = comparing.compare(ref, md, run_ids)
    head = "".join(
        f'<th><a href="/pipelines/{_q(ref.name)}/runs/{_q(r["run_id"])}">{e(r["run_id"])}</a>'
        f"<br>{state(r['state'])}</th>"
        for r in table["runs"]
    )
    rows = "".join(
        f"<tr{' class=bad' if row['differs'] else ''}><td>{e(row['section'])}</td>"
        f"<td>{e(row['name'])}</td>"
        + "".join(f"<td><code>{e(json.dumps(v, default=str))}</code></td>" for v in row["values"])
        + "</tr>"
        for row in table["rows"]
    )
    stats = "".join(
        f"<section class=compare-statistics><h2>Statistics {e(s['output'])}, split "
        f"{e(s['split'] or '(none)')}: "
        + " vs ".join(
            art_link(ref.name, {"id": i, "type": "ExampleStatistics"}) for i in s["artifacts"]
        )
        + "</h2>"
        + render_view(s["view"], ref.name, None)
        + "</section>"
        for s in table.get("statistics", [])
    )
    body = (
        "<p>Rows that differ between the runs are highlighted.</p>"
        '<table class="sortable compare"><thead><tr><th>What</th><th>Name</th>'
        f"{head}</tr></thead><tbody>{rows}</tbody></table>" + stats
    )
    return page(request, f"Compare runs of {ref.name}", body)


def node_page(request: Request) -> HTMLResponse:
    """``.../runs/{run_id}/nodes/{component_id}``: a component's error first, artifacts, parameters, log."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    run_id, cid = request.path_params["run_id"], request.path_params["component_id"]
    with store.metadata(ref) as md:
        if md is None:
            raise queries.NotFound(f"no run {run_id!r} of pipeline {ref.name!r}")
        run = queries.run_detail(ref, md, run_id)
    found = [c for c in run["components"] if c["component_id"] == cid]
    if not found:
        raise queries.NotFound(f"no component {cid!r} in run {run_id!r}")
    c = found[0]
    parts = []
    if c["error"]:
        parts.append(f'<h2>Error</h2><pre class="error">{e(c["error"])}</pre>')
    if c["reason"]:
        parts.append(f"<p>Reason: {e(c['reason'])}</p>")
    parts.append(
        f"<p>{state(c['state'])} · execution {c['execution_id'] or '-'} · started "
        f"{_time(c['start_time'])} · {_secs(c['seconds'])}{' · cached' if c['cached'] else ''}</p>"
    )
    for title, key in (("Inputs", "inputs"), ("Outputs", "outputs")):
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{art_link(ref.name, a)}</td><td><code>{e(a['uri'])}</code></td></tr>"
            for k, arts in c[key].items()
            for a in arts
        )
        parts.append(
            f"<h2>{title}</h2><table class={key}><tbody>{rows or '<tr><td>none</td></tr>'}</tbody></table>"
        )
    params = "".join(
        f"<tr><td>{e(k)}</td><td><code>{e(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in sorted(c["parameters"].items())
    )
    parts.append(f"<h2>Parameters</h2><table class=parameters><tbody>{params}</tbody></table>")
    if c["beam_args"]:
        flags = "".join(f"<li><code>{e(a)}</code></li>" for a in c["beam_args"])
        parts.append(f"<h2>Beam args</h2><ul class=beam-args>{flags}</ul>")
    elif c["execution_id"] is not None:
        parts.append("<h2>Beam args</h2><p class=muted>none recorded for this execution</p>")
    if c["log"]:
        url = f"/api/runs/{_q(run_id)}/components/{_q(cid)}/log?pipeline={_q(ref.name)}"
        following = run["state"] == RUNNING and c["state"] in (RUNNING, "NOT_STARTED")
        live = f' data-log-url="{e(url)}"' if following else ""
        parts.append(f'<h2>Log (tail)</h2><pre class="log"{live}>{e(queries.tail(c["log"]))}</pre>')
    else:
        parts.append(
            "<h2>Log</h2><p class=muted>No log file (the runner did not write one here).</p>"
        )
    back = f'<p><a href="/pipelines/{_q(ref.name)}/runs/{_q(run_id)}">run {e(run_id)}</a></p>'
    return page(request, f"{cid} in {run_id}", back + "".join(parts))


def artifact_page(request: Request) -> HTMLResponse:
    """``/pipelines/{name}/artifacts/{id}``: an artifact, its view and files."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    artifact_id = _artifact_id(request)
    with store.metadata(ref) as md:
        if md is None:
            raise queries.NotFound(f"no artifact {artifact_id} in pipeline {ref.name!r}")
        a = queries.artifact_detail(ref, md, artifact_id)
    view = views.view_of(a["type"], a["uri"])
    files = request.app.state.ui.file_url(ref, a["uri"])
    producer = a["producer"]
    made = (
        f'made by <a href="/pipelines/{_q(ref.name)}/runs/{_q(producer["run_id"])}/nodes/'
        f'{_q(producer["component_id"])}">{e(producer["component_id"])}</a> in run '
        f"{e(producer['run_id'])}"
        if producer
        else "no producer recorded"
    )
    props = "".join(
        f"<tr><td>{e(k)}</td><td><code>{e(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in sorted(a["properties"].items())
    )
    body = (
        f"<p>{made} · <code>{e(a['uri'])}</code> · "
        f'<a href="/pipelines/{_q(ref.name)}/artifacts/{artifact_id}/lineage">lineage</a></p>'
        f"<table class=properties><tbody>{props}</tbody></table>"
        + render_view(view, ref.name, files)
        + _files(a["uri"], files)
    )
    return page(request, f"{a['type']} #{artifact_id}", body)


def _files(uri: str, files_url: str | None) -> str:
    """The artifact folder's files, linked when the folder is inside the pipeline root."""
    rows = []
    for f in queries.list_files(uri):
        name = e(f["path"])
        link = f'<a href="{files_url}/{quote(f["path"])}">{name}</a>' if files_url else name
        rows.append(f"<tr><td>{link}</td><td class=num>{f['bytes']}</td></tr>")
    if not rows:
        return ""
    return f'<h2>Files</h2><table class="files"><tbody>{"".join(rows)}</tbody></table>'


def _artifact_id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except ValueError:
        raise queries.NotFound(f"no artifact {request.path_params['id']!r}") from None


def lineage_page(request: Request) -> HTMLResponse:
    """``/pipelines/{name}/artifacts/{id}/lineage``: what made it and what used it."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    artifact_id = _artifact_id(request)
    with store.metadata(ref) as md:
        if md is None:
            raise queries.NotFound(f"no artifact {artifact_id} in pipeline {ref.name!r}")
        queries.artifact_detail(ref, md, artifact_id)  # 404 for an unknown id
        g = graph.lineage(md, artifact_id)
    base = f"/pipelines/{_q(ref.name)}"
    nodes = []
    for n in g["nodes"]:
        if n["kind"] == "artifact":
            nodes.append(
                {
                    "id": n["id"],
                    "label": f"{n['type']} #{n['artifact_id']}",
                    "sub": "this artifact" if n["artifact_id"] == artifact_id else "artifact",
                    "state": "artifact",
                    "href": f"{base}/artifacts/{n['artifact_id']}",
                }
            )
        else:
            nodes.append(
                {
                    "id": n["id"],
                    "label": n["component_id"],
                    "sub": f"run {n['run_id']}",
                    "state": n["state"],
                    "href": f"{base}/runs/{_q(n['run_id'])}/nodes/{_q(n['component_id'])}",
                }
            )
    edges = [(x["from"], x["to"], x["key"]) for x in g["edges"]]
    note = "<p class=muted>(cut at 300 nodes)</p>" if g["truncated"] else ""
    body = (
        f'<p><a href="{base}/artifacts/{artifact_id}">artifact {artifact_id}</a>: what made it '
        "(left) and what used it (right).</p>" + note + graph.svg(nodes, edges, "lineage")
    )
    return page(request, f"Lineage of artifact {artifact_id}", body)
