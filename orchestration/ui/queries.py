"""The data every page and API route shows, read from a pipeline's ML Metadata.

Each function takes a :class:`~conveyor.orchestration.ui.store.PipelineRef` and its open
:class:`~conveyor.orchestration.Metadata` and returns plain JSON-ready dicts.
"""

from __future__ import annotations

import json
import os

from conveyor.orchestration.metadata import RUNNING, get_value
from conveyor.orchestration.ui.store import NotFound


def _run_contexts(md, pipeline: str, limit: int | None = None) -> list:
    """The pipeline's run contexts, newest first (the ``limit`` newest: one filtered query)."""
    from ml_metadata.metadata_store import metadata_store as ms

    from conveyor.orchestration.metadata import RUN_CONTEXT

    if limit is not None and "'" not in pipeline and "\\" not in pipeline:
        query = (
            f"type = '{RUN_CONTEXT}' AND "
            f"custom_properties.pipeline_name.string_value = '{pipeline}'"
        )
        options = ms.ListOptions(
            limit=limit, order_by=ms.OrderByField.ID, is_asc=False, filter_query=query
        )
        return list(md._call(md.store.get_contexts, list_options=options))
    newest = sorted(md._run_contexts_of(pipeline), key=lambda c: c.id, reverse=True)
    return newest if limit is None else newest[:limit]


def pipeline_row(ref, md) -> dict:
    """A pipeline as the pipelines list shows it: name, engine, root, its last run."""
    contexts = _run_contexts(md, ref.name, 1) if md is not None else []
    last = None
    if contexts:
        run_id = contexts[0].custom_properties["run_id"].string_value
        summary = md.run_summary(ref.name, run_id, context=contexts[0])
        last = {k: summary[k] for k in ("run_id", "state", "create_time", "reason")}
    return {
        "name": ref.name,
        "engine": ref.engine,
        "registered": ref.record is not None,
        "startable": ref.startable,
        "root": ref.root,
        "pipeline_path": ref.record.get("pipeline_path") if ref.record else None,
        "last_run": last,
    }


def runs_of(ref, md, limit: int = 100, offset: int = 0) -> dict:
    """``{"offset", "has_more", "runs"}``: a page of the pipeline's runs, newest first, each
    with its state, duration, component counts by state and runtime parameters."""
    contexts = _run_contexts(md, ref.name, offset + limit + 1) if md is not None else []
    out = []
    types = None
    for c in contexts[offset : offset + limit]:
        run_id = c.custom_properties["run_id"].string_value
        summary = md.run_summary(ref.name, run_id, context=c)
        counts: dict[str, int] = {}
        for row in summary["components"]:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        executions = md._call(md.store.get_executions_by_context, c.id)
        timings = _timings(md, ref.name, run_id, executions=executions)
        types = types or _type_names(md)
        starts = [t[0] for t in timings.values() if t[0]]
        ends = [t[1] for t in timings.values() if t[1]]
        duration = round(max(ends) - min(starts), 2) if starts and ends else None
        params = c.custom_properties.get("runtime_parameters")
        out.append(
            {
                "run_id": run_id,
                "create_time": summary["create_time"],
                "state": summary["state"],
                "reason": summary["reason"],
                "duration_seconds": duration if summary["state"] != RUNNING else None,
                "components": counts,
                "runtime_parameters": json.loads(params.string_value) if params else {},
                "spans": input_spans(md, executions, types),
            }
        )
    return {"offset": offset, "has_more": len(contexts) > offset + limit, "runs": out}


def _type_names(md) -> tuple[dict[int, str], dict[int, str]]:
    """``({artifact type id: name}, {execution type id: name})``."""
    artifact_types = md._call(md.store.get_artifact_types)
    execution_types = md._call(md.store.get_execution_types)
    return {t.id: t.name for t in artifact_types}, {t.id: t.name for t in execution_types}


def input_spans(md, executions: list, types=None) -> list[int]:
    """The spans a run ingested: the ``span`` property of the Examples its executions output
    where they read no Examples themselves (ExampleGen, an Importer of examples), sorted.

    Resolvers (which pick earlier spans) and components that turn Examples into Examples
    (Transform) do not count. Two queries a run: the events, then their artifacts.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    from conveyor.orchestration.launcher import RESOLVER_TYPE

    if not executions:
        return []
    artifact_types, execution_types = types or _type_names(md)
    ingesting = {ex.id for ex in executions if execution_types.get(ex.type_id) != RESOLVER_TYPE}
    events = md._call(md.store.get_events_by_execution_ids, sorted(ingesting))
    if not events:
        return []
    artifacts = {
        a.id: a
        for a in md._call(md.store.get_artifacts_by_id, sorted({ev.artifact_id for ev in events}))
    }

    def examples(ev) -> bool:
        a = artifacts.get(ev.artifact_id)
        return a is not None and artifact_types.get(a.type_id) == "Examples"

    for ev in events:
        if ev.type == pb.Event.INPUT and examples(ev):
            ingesting.discard(ev.execution_id)
    spans = set()
    for ev in events:
        if ev.type == pb.Event.OUTPUT and ev.execution_id in ingesting and examples(ev):
            a = artifacts[ev.artifact_id]
            for props in (a.properties, a.custom_properties):
                value = get_value(props["span"]) if "span" in props else None
                if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
                    spans.add(int(value))
    return sorted(spans)


def _timings(md, pipeline: str, run_id: str, context=None, executions=None) -> dict[int, tuple]:
    """``{execution id: (start, end or None)}`` of a run's executions (epoch seconds)."""
    out = {}
    if executions is None and context is not None:
        executions = md._call(md.store.get_executions_by_context, context.id)
    elif executions is None:
        executions = md.executions_of_run(pipeline, run_id)
    for ex in executions:
        props = ex.custom_properties
        start = props["start_time"].double_value if "start_time" in props else None
        end = props["end_time"].double_value if "end_time" in props else None
        out[ex.id] = (start, end)
    return out


def artifact_row(art, pipeline: str) -> dict:
    """An artifact as a link shows it: id, type, uri, its properties."""
    return {
        "id": art.id,
        "type": art.type_name,
        "uri": art.uri,
        "properties": _jsonable(art.properties),
        "pipeline": pipeline,
    }


def _jsonable(props: dict) -> dict:
    return json.loads(json.dumps(props, default=str))


def run_detail(ref, md, run_id: str) -> dict:
    """A run: its state and, per component, state, timings, parameters, inputs, outputs, the
    edges between components (an input produced by another component of the run), the log."""
    summary = md.run_summary(ref.name, run_id)
    if summary is None:
        raise NotFound(f"no run {run_id!r} of pipeline {ref.name!r}")
    timings = _timings(md, ref.name, run_id)
    executions = {ex.id: ex for ex in md.executions_of_run(ref.name, run_id)}
    producers: dict[int, str] = {}  # artifact id -> component of this run that output it
    components = []
    for row in summary["components"]:
        ex_id = row["execution_id"]
        inputs, outputs, params = {}, {}, {}
        start = end = beam_args = None
        if ex_id is not None:
            inputs = md.input_lists_of_execution(ex_id)
            outputs = md.output_lists_of_execution(ex_id)
            for arts in outputs.values():
                for a in arts:
                    producers.setdefault(a.id, row["component_id"])
            ex = executions[ex_id]
            if "parameters" in ex.custom_properties:
                params = json.loads(ex.custom_properties["parameters"].string_value)
            beam_args = _beam_args(ex)
            start, end = timings.get(ex_id, (None, None))
        components.append(
            {
                "component_id": row["component_id"],
                "state": row["state"],
                "cached": row["cached"],
                "execution_id": ex_id,
                "start_time": start,
                "end_time": end,
                "seconds": row["seconds"],
                "error": row["error"],
                "reason": row.get("reason", ""),
                "parameters": params,
                "beam_args": beam_args,
                "inputs": {
                    k: [artifact_row(a, ref.name) for a in arts] for k, arts in inputs.items()
                },
                "outputs": {
                    k: [artifact_row(a, ref.name) for a in arts] for k, arts in outputs.items()
                },
                "log": log_path(ref, run_id, row["component_id"]),
            }
        )
    edges = []
    for c in components:
        for key, arts in c["inputs"].items():
            for a in arts:
                src = producers.get(a["id"]) or md.producer_of(a["id"])
                if src and src != c["component_id"]:
                    edges.append(
                        {"from": src, "to": c["component_id"], "key": key, "artifact": a["id"]}
                    )
    unrun = {c["component_id"] for c in components if c["execution_id"] is None}
    if unrun:
        edges += _earlier_edges(md, ref.name, run_id, unrun)
    return {
        "pipeline": ref.name,
        "run_id": run_id,
        "state": summary["state"],
        "reason": summary["reason"],
        "create_time": summary["create_time"],
        "runtime_parameters": md.runtime_parameters(ref.name, run_id) or {},
        "runner": summary["runner"],
        "components": components,
        "edges": _unique(edges),
    }


def _beam_args(ex) -> list[str] | None:
    """The Beam flags the execution ran with (its ``beam_args`` custom property, a JSON list
    of the pipeline's and the component's flags); None when the launcher recorded none."""
    prop = ex.custom_properties.get(BEAM_ARGS_PROPERTY)
    if prop is None:
        return None
    try:
        value = json.loads(prop.string_value)
    except ValueError:
        return [prop.string_value]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


#: The execution custom property holding its Beam flags (a JSON list).
BEAM_ARGS_PROPERTY = "beam_args"


def _earlier_edges(md, pipeline: str, run_id: str, components: set[str], runs: int = 5) -> list:
    """Edges into ``components`` (not run yet in ``run_id``) as the latest earlier runs that
    ran them recorded them (``"artifact": None``): the DAG of a live run is drawn whole."""
    out, left = [], set(components)
    for c in _run_contexts(md, pipeline)[: runs + 1]:
        other = c.custom_properties["run_id"].string_value
        if other == run_id or not left:
            continue
        for ex in md.executions_of_run(pipeline, other):
            cid = ex.properties["component_id"].string_value
            if cid not in left:
                continue
            for key, arts in md.input_lists_of_execution(ex.id).items():
                for a in arts:
                    src = md.producer_of(a.id)
                    if src and src != cid:
                        out.append({"from": src, "to": cid, "key": key, "artifact": None})
            left.discard(cid)
    return out


def _unique(edges: list[dict]) -> list[dict]:
    seen, out = set(), []
    for e in edges:
        key = (e["from"], e["to"], e["key"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def log_path(ref, run_id: str, component_id: str) -> str | None:
    """Where the local runner wrote a component's log (``<root>/.conveyor/runs/<run>/<id>.log``),
    if that file exists."""
    path = os.path.join(ref.root, ".conveyor", "runs", run_id, f"{component_id}.log")
    return path if os.path.isfile(path) else None


def tail(path: str, max_bytes: int = 64_000) -> str:
    """The end of a text file (at most ``max_bytes``), decoded leniently."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    return text if size <= max_bytes else text.split("\n", 1)[-1]


def artifact_detail(ref, md, artifact_id: int) -> dict:
    """An artifact: its type, uri, properties, the execution that produced it (component, run,
    parameters) and those that read it."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    found = md._call(md.store.get_artifacts_by_id, [artifact_id])
    if not found:
        raise NotFound(f"no artifact {artifact_id} in pipeline {ref.name!r}")
    [a] = found
    types = md._type_names()
    props = {k: get_value(v) for k, v in a.custom_properties.items()}
    props.update({k: get_value(v) for k, v in a.properties.items()})
    events = md._call(md.store.get_events_by_artifact_ids, [artifact_id])
    ex_ids = sorted({e.execution_id for e in events})
    executions = (
        {x.id: x for x in md._call(md.store.get_executions_by_id, ex_ids)} if ex_ids else {}
    )
    producer, consumers = None, []
    for e in sorted(events, key=lambda e: e.execution_id):
        row = _execution_row(executions.get(e.execution_id))
        if row is None:
            continue
        if e.type == pb.Event.OUTPUT and producer is None:
            producer = row
        elif e.type == pb.Event.INPUT:
            consumers.append(row)
    return {
        "id": a.id,
        "pipeline": ref.name,
        "type": types.get(a.type_id, str(a.type_id)),
        "uri": a.uri,
        "state": pb.Artifact.State.Name(a.state),
        "properties": _jsonable(props),
        "producer": producer,
        "consumers": consumers,
    }


def _execution_row(ex) -> dict | None:
    if ex is None:
        return None
    props = ex.properties
    return {
        "execution_id": ex.id,
        "component_id": props["component_id"].string_value if "component_id" in props else "",
        "run_id": props["run_id"].string_value if "run_id" in props else "",
        "state": props["state"].string_value if "state" in props else "",
    }


def list_files(uri: str, limit: int = 100) -> list[dict]:
    """The files in an artifact's folder (``{"path": relative, "bytes"}``, at most ``limit``),
    hidden ones left out; none for a remote uri or a folder not here."""
    if "://" in uri or not os.path.isdir(uri):
        return []
    out = []
    for dirpath, dirs, names in os.walk(uri):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = os.path.join(dirpath, name)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            out.append({"path": os.path.relpath(path, uri), "bytes": size})
            if len(out) >= limit:
                return out
    return out
