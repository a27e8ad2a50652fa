"""The JSON API: every route the pages read, and the two actions (start a run, cancel one).

Routes take ``?pipeline=NAME`` where an id alone may be ambiguous (artifact ids are per
store; run ids are searched in every pipeline without it). :data:`OPENAPI` documents them;
``tests/test_ui_api.py`` checks that it lists every route of the app.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.orchestration.ui import compare as comparing
from conveyor.orchestration.ui import graph, queries, views
from conveyor.orchestration.ui.actions import ActionError, cancel_run, start_run


def _ui(request: Request):
    return request.app.state.ui


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ActionError(f"{name}: not an integer: {text!r}", 400) from None


def pipelines(request: Request) -> JSONResponse:
    """``GET /api/pipelines``: every known pipeline with its engine and last run."""
    store = _ui(request).store
    rows = []
    for ref in store.pipelines():
        with store.metadata(ref) as md:
            rows.append(queries.pipeline_row(ref, md))
    return JSONResponse({"pipelines": rows})


def pipeline(request: Request) -> JSONResponse:
    """``GET /api/pipelines/{name}``: one pipeline."""
    store = _ui(request).store
    ref = store.pipeline(request.path_params["name"])
    with store.metadata(ref) as md:
        return JSONResponse(queries.pipeline_row(ref, md))


def runs(request: Request) -> JSONResponse:
    """``GET /api/pipelines/{name}/runs?limit=&offset=``: a page of runs, newest first, each
    with the ``spans`` of the examples it ingested."""
    store = _ui(request).store
    ref = store.pipeline(request.path_params["name"])
    limit = _int(request.query_params.get("limit", "100"), "limit")
    offset = _int(request.query_params.get("offset", "0"), "offset")
    if limit < 1 or offset < 0:
        raise ActionError("limit must be >= 1 and offset >= 0", 400)
    with store.metadata(ref) as md:
        page = queries.runs_of(ref, md, limit, offset)
    return JSONResponse(dict(page, pipeline=ref.name))


async def create_run(request: Request) -> JSONResponse:
    """``POST /api/pipelines/{name}/runs``: starts a run (``{runtime_parameters, no_cache}``); 202."""
    store = _ui(request).store
    ref = store.pipeline(request.path_params["name"])
    body = await _body(request)
    started = start_run(ref, body.get("runtime_parameters"), bool(body.get("no_cache")))
    return JSONResponse(dict(started, pipeline=ref.name), status_code=202)


async def _body(request: Request) -> dict:
    """The request's JSON object (``{}`` for an empty body); 400 for anything else."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ActionError(f"request body: not JSON ({e})", 400) from None
    if not isinstance(body, dict):
        raise ActionError("request body: must be a JSON object", 400)
    return body


def compare_runs(request: Request) -> JSONResponse:
    """``GET /api/pipelines/{name}/compare?runs=a,b``: runs side by side."""
    store = _ui(request).store
    ref = store.pipeline(request.path_params["name"])
    run_ids = run_ids_of(request)
    with store.metadata(ref) as md:
        return JSONResponse(comparing.compare(ref, md, run_ids))


def run_ids_of(request: Request) -> list[str]:
    """``?runs=a,b`` or ``?runs=a&runs=b``: the run ids to compare, 400 without two."""
    ids = [r for v in request.query_params.getlist("runs") for r in v.split(",") if r]
    if not 2 <= len(ids) <= comparing.MAX_RUNS:
        raise ActionError(f"runs: give 2 to {comparing.MAX_RUNS} run ids, got {len(ids)}", 400)
    return ids


def run(request: Request) -> JSONResponse:
    """``GET /api/runs/{run_id}[?pipeline=]``: a run's components, timings, artifacts, edges."""
    store = _ui(request).store
    run_id = request.path_params["run_id"]
    ref = store.find_run(run_id, request.query_params.get("pipeline"))
    with store.metadata(ref) as md:
        return JSONResponse(queries.run_detail(ref, md, run_id))


def cancel(request: Request) -> JSONResponse:
    """``POST /api/runs/{run_id}/cancel``: SIGTERM to a running run's runner; 202."""
    store = _ui(request).store
    run_id = request.path_params["run_id"]
    ref = store.find_run(run_id, request.query_params.get("pipeline"))
    with store.metadata(ref) as md:
        return JSONResponse(cancel_run(md, ref, run_id), status_code=202)


def component_log(request: Request) -> JSONResponse:
    """``GET /api/runs/{run_id}/components/{component_id}/log?tail=N``: a log's end."""
    store = _ui(request).store
    run_id, cid = request.path_params["run_id"], request.path_params["component_id"]
    ref = store.find_run(run_id, request.query_params.get("pipeline"))
    with store.metadata(ref) as md:
        detail = queries.run_detail(ref, md, run_id)
    [component] = [c for c in detail["components"] if c["component_id"] == cid] or [None]
    if component is None:
        raise queries.NotFound(f"no component {cid!r} in run {run_id!r}")
    max_bytes = _int(request.query_params.get("tail", "64000"), "tail")
    text = queries.tail(component["log"], max(1, max_bytes)) if component["log"] else None
    return JSONResponse(
        {"run_id": run_id, "component_id": cid, "state": component["state"], "log": text}
    )


def artifact(request: Request) -> JSONResponse:
    """``GET /api/artifacts/{id}[?pipeline=]``: an artifact, its producer, consumers, view, files."""
    store = _ui(request).store
    artifact_id = _int(request.path_params["id"], "artifact id")
    ref = store.find_artifact(artifact_id, request.query_params.get("pipeline"))
    with store.metadata(ref) as md:
        detail = queries.artifact_detail(ref, md, artifact_id)
    detail["view"] = views.view_of(detail["type"], detail["uri"])
    detail["files"] = queries.list_files(detail["uri"])
    return JSONResponse(detail)


def lineage(request: Request) -> JSONResponse:
    """``GET /api/artifacts/{id}/lineage``: executions and artifacts up and downstream."""
    store = _ui(request).store
    artifact_id = _int(request.path_params["id"], "artifact id")
    ref = store.find_artifact(artifact_id, request.query_params.get("pipeline"))
    with store.metadata(ref) as md:
        return JSONResponse(dict(graph.lineage(md, artifact_id), pipeline=ref.name))


def csrf(request: Request) -> JSONResponse:
    """``GET /api/csrf``: the CSRF token (scripts send it as ``X-CSRF-Token``)."""
    return JSONResponse({"csrf_token": _ui(request).csrf})


def openapi(request: Request) -> JSONResponse:
    """``GET /api/openapi.json``: :data:`OPENAPI`."""
    return JSONResponse(OPENAPI)


def _op(summary: str, params: list[str] = (), query: list[str] = (), post: bool = False) -> dict:
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
    ]
    parameters += [
        {"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in query
    ]
    op = {
        "summary": summary,
        "parameters": parameters,
        "responses": {"200": {"description": "JSON"}},
    }
    if post:
        op["responses"] = {
            "202": {"description": "accepted"},
            "403": {"description": "no CSRF token"},
        }
        op["parameters"].append(
            {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}
        )
    return op


#: The OpenAPI 3 document of the API (served at ``/api/openapi.json``).
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Conveyor UI", "version": "1"},
    "paths": {
        "/api/openapi.json": {"get": _op("This document")},
        "/api/csrf": {"get": _op("The CSRF token POST requests send as X-CSRF-Token")},
        "/api/pipelines": {"get": _op("Pipelines: registered and in the --root stores, last run")},
        "/api/pipelines/{name}": {"get": _op("One pipeline", ["name"])},
        "/api/pipelines/{name}/runs": {
            "get": _op(
                "Runs of a pipeline, newest first (state, duration, components, spans)",
                ["name"],
                ["limit", "offset"],
            ),
            "post": dict(
                _op(
                    "Start a run ({runtime_parameters: {name: value}, no_cache})",
                    ["name"],
                    post=True,
                ),
                requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
            ),
        },
        "/api/pipelines/{name}/compare": {
            "get": _op("Runs side by side: parameters, input spans, metrics", ["name"], ["runs"])
        },
        "/api/runs/{run_id}": {
            "get": _op(
                "A run: components with state, timings, inputs, outputs; edges",
                ["run_id"],
                ["pipeline"],
            )
        },
        "/api/runs/{run_id}/cancel": {
            "post": _op(
                "Cancel a running run (SIGTERM to its runner)", ["run_id"], ["pipeline"], post=True
            )
        },
        "/api/runs/{run_id}/components/{component_id}/log": {
            "get": _op(
                "The tail of a component's log", ["run_id", "component_id"], ["pipeline", "tail"]
            )
        },
        "/api/artifacts/{id}": {
            "get": _op(
                "An artifact: type, uri, properties, producer, consumers, its view",
                ["id"],
                ["pipeline"],
            )
        },
        "/api/artifacts/{id}/lineage": {
            "get": _op("Executions and artifacts upstream and downstream", ["id"], ["pipeline"])
        },
    },
}
