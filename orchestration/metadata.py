"""Recording pipelines in ML Metadata: artifacts, executions, contexts, events.

Uses the real ``ml-metadata`` library; SQLite at ``<root>/metadata.sqlite`` by
default, any MLMD ``ConnectionConfig`` otherwise. Every pipeline run is a
context (``conveyor.PipelineRun``) inside the pipeline's context
(``conveyor.Pipeline``); every component is a ``conveyor.Node`` context; every
execution links its input and output artifacts by events, so lineage can be
walked both ways.

SQLite allows one writer at a time and MLMD reports a busy database as an
error, so calls on a SQLite store are serialized across processes with a lock
file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable

from conveyor.orchestration.artifacts import ARTIFACT_TYPES, Artifact

PIPELINE_CONTEXT = "conveyor.Pipeline"
RUN_CONTEXT = "conveyor.PipelineRun"
NODE_CONTEXT = "conveyor.Node"

# Execution states as recorded (MLMD's Execution.State names).
RUNNING, COMPLETE, FAILED, CACHED = "RUNNING", "COMPLETE", "FAILED", "CACHED"


def sqlite_config(path: str):
    """An MLMD ``ConnectionConfig`` for a SQLite file (created if missing)."""
    from ml_metadata.proto import metadata_store_pb2

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


class Metadata:
    """A pipeline's ML Metadata store.

    Args:
      connection_config: an MLMD ``ConnectionConfig``, or a path to a SQLite file.
    """

    def __init__(self, connection_config):
        from ml_metadata.metadata_store import metadata_store

        if isinstance(connection_config, (str, os.PathLike)):
            connection_config = sqlite_config(str(connection_config))
        self.config = connection_config
        self._lock_path = None
        if connection_config.HasField("sqlite"):
            self._lock_path = connection_config.sqlite.filename_uri + ".lock"
        with self._locked():
            self.store = metadata_store.MetadataStore(connection_config)
            self._types = self._register_types()

    # -- locking ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        if self._lock_path is None:
            yield
            return
        with open(self._lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _call(self, fn, *args, **kwargs):
        """One store call under the lock, retried briefly if the database is busy."""
        for attempt in range(20):
            try:
                with self._locked():
                    return fn(*args, **kwargs)
            except Exception as e:  # MLMD raises its own errors for a busy database
                if "locked" not in str(e).lower() and "busy" not in str(e).lower() or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))

    # -- types ------------------------------------------------------------------

    def _register_types(self) -> dict:
        from ml_metadata.proto import metadata_store_pb2 as pb

        types = {}
        for name in ARTIFACT_TYPES:
            t = pb.ArtifactType(name=name)
            t.properties["split_names"] = pb.STRING
            types[name] = self.store.put_artifact_type(t, can_add_fields=True)
        for name in (PIPELINE_CONTEXT, RUN_CONTEXT, NODE_CONTEXT):
            types[name] = self.store.put_context_type(pb.ContextType(name=name))
        return types

    def _execution_type(self, type_name: str) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        key = "exec:" + type_name
        if key not in self._types:
            t = pb.ExecutionType(name=type_name)
            for prop in ("component_id", "run_id", "pipeline_name", "cache_key", "state"):
                t.properties[prop] = pb.STRING
            self._types[key] = self._call(self.store.put_execution_type, t, can_add_fields=True)
        return self._types[key]

    # -- contexts ---------------------------------------------------------------

    def _context(self, type_name: str, name: str, properties: dict | None = None) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        def get_or_put():
            found = self.store.get_context_by_type_and_name(type_name, name)
            if found is not None:
                return found.id
            ctx = pb.Context(type_id=self._types[type_name], name=name)
            for k, v in (properties or {}).items():
                ctx.custom_properties[k].string_value = str(v)
            return self.store.put_contexts([ctx])[0]

        return self._call(get_or_put)

    def run_contexts(self, pipeline_name: str, run_id: str, component_id: str) -> list[int]:
        """Context ids (pipeline, run, node) an execution of a component belongs to."""
        p = self._context(PIPELINE_CONTEXT, pipeline_name)
        r = self._context(RUN_CONTEXT, f"{pipeline_name}.{run_id}",
                          {"pipeline_name": pipeline_name, "run_id": run_id,
                           "create_time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        n = self._context(NODE_CONTEXT, f"{pipeline_name}.{component_id}",
                          {"pipeline_name": pipeline_name, "component_id": component_id})
        return [p, r, n]

    # -- executions ---------------------------------------------------------------

    def start_execution(self, type_name: str, pipeline_name: str, run_id: str, component_id: str,
                        inputs: dict[str, Artifact], cache_key: str, parameters: dict | None = None) -> int:
        """Records a RUNNING execution with its input events and parameters; returns its id."""
        import json

        from ml_metadata.proto import metadata_store_pb2 as pb

        contexts = self.run_contexts(pipeline_name, run_id, component_id)
        ex = pb.Execution(type_id=self._execution_type(type_name))
        ex.last_known_state = pb.Execution.RUNNING
        for k, v in (("component_id", component_id), ("run_id", run_id),
                     ("pipeline_name", pipeline_name), ("cache_key", cache_key), ("state", RUNNING)):
            ex.properties[k].string_value = v
        ex.custom_properties["start_time"].double_value = time.time()
        ex.custom_properties["parameters"].string_value = json.dumps(parameters or {}, sort_keys=True, default=str)
        events = [self._event(pb.Event.INPUT, key, art) for key, art in inputs.items()]
        ex_id, _, _ = self._call(self.store.put_execution, ex, [], self._contexts_by_id(contexts))
        if events:
            pairs = []
            for ev in events:
                ev.execution_id = ex_id
                pairs.append(ev)
            self._call(self.store.put_events, pairs)
        return ex_id

    def _contexts_by_id(self, ids):
        return self._call(self.store.get_contexts_by_id, ids)

    @staticmethod
    def _event(kind, key: str, art: Artifact):
        from ml_metadata.proto import metadata_store_pb2 as pb

        ev = pb.Event(type=kind, artifact_id=art.id)
        step = ev.path.steps.add()
        step.key = key
        return ev

    def finish_execution(self, execution_id: int, state: str, outputs: dict[str, Artifact] | None = None,
                         error: str | None = None) -> dict[str, Artifact]:
        """Marks an execution COMPLETE, CACHED or FAILED and records its outputs (LIVE)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        outputs = outputs or {}
        [ex] = self._call(self.store.get_executions_by_id, [execution_id])
        ex.last_known_state = {COMPLETE: pb.Execution.COMPLETE, CACHED: pb.Execution.CACHED,
                               FAILED: pb.Execution.FAILED}[state]
        ex.properties["state"].string_value = state
        ex.custom_properties["end_time"].double_value = time.time()
        if error:
            ex.custom_properties["error"].string_value = error[-4000:]
        new = {k: a for k, a in outputs.items() if a.id is None}
        arts = []
        for a in new.values():
            art = pb.Artifact(type_id=self._types[a.type_name], uri=a.uri, state=pb.Artifact.LIVE)
            for pk, pv in a.properties.items():
                if pk == "split_names":
                    art.properties["split_names"].string_value = str(pv)
                else:
                    art.custom_properties[pk].string_value = str(pv)
            arts.append(art)
        with self._locked():
            self.store.put_executions([ex])
            ids = self.store.put_artifacts(arts) if arts else []
            for a, i in zip(new.values(), ids):
                a.id = i
            events = [self._event(pb.Event.OUTPUT, key, a) for key, a in outputs.items()]
            for ev in events:
                ev.execution_id = execution_id
            if events:
                self.store.put_events(events)
            contexts = [c.id for c in self.store.get_contexts_by_execution(execution_id)]
            if outputs:
                attributions = [pb.Attribution(context_id=c, artifact_id=a.id)
                                for c in contexts for a in outputs.values()]
                self.store.put_attributions_and_associations(attributions, [])
        return outputs

    # -- queries ------------------------------------------------------------------

    def find_cached(self, cache_key: str, type_name: str) -> dict[str, Artifact] | None:
        """Outputs of the latest COMPLETE execution with this cache key whose files still exist."""
        executions = self._call(self.store.get_executions_by_type, type_name)
        for ex in sorted(executions, key=lambda e: e.id, reverse=True):
            if ex.properties["cache_key"].string_value != cache_key:
                continue
            if ex.properties["state"].string_value not in (COMPLETE,):
                continue
            outputs = self.outputs_of_execution(ex.id)
            if outputs and all(os.path.exists(a.uri) for a in outputs.values() if "://" not in a.uri):
                return outputs
        return None

    def outputs_of_execution(self, execution_id: int) -> dict[str, Artifact]:
        return self._artifacts_by_event(execution_id, output=True)

    def inputs_of_execution(self, execution_id: int) -> dict[str, Artifact]:
        return self._artifacts_by_event(execution_id, output=False)

    def _artifacts_by_event(self, execution_id: int, output: bool) -> dict[str, Artifact]:
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_execution_ids, [execution_id])
        wanted = pb.Event.OUTPUT if output else pb.Event.INPUT
        chosen = [e for e in events if e.type == wanted]
        if not chosen:
            return {}
        arts = {a.id: a for a in self._call(self.store.get_artifacts_by_id, [e.artifact_id for e in chosen])}
        type_names = self._type_names()
        out = {}
        for e in chosen:
            a = arts[e.artifact_id]
            props = {k: v.string_value for k, v in a.custom_properties.items()}
            if a.properties["split_names"].string_value:
                props["split_names"] = a.properties["split_names"].string_value
            out[e.path.steps[0].key] = Artifact(type_names[a.type_id], a.uri, a.id, props)
        return out

    def _type_names(self) -> dict[int, str]:
        return {t.id: t.name for t in self._call(self.store.get_artifact_types)}

    def executions_of_run(self, pipeline_name: str, run_id: str):
        """The executions recorded in one run, oldest first."""
        ctx = self._call(self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}")
        if ctx is None:
            return []
        return sorted(self._call(self.store.get_executions_by_context, ctx.id), key=lambda e: e.id)

    def latest_outputs(self, pipeline_name: str, run_id: str, component_id: str) -> dict[str, Artifact] | None:
        """Outputs of a component's successful (or cached) execution in a run."""
        for ex in reversed(self.executions_of_run(pipeline_name, run_id)):
            if ex.properties["component_id"].string_value != component_id:
                continue
            if ex.properties["state"].string_value in (COMPLETE, CACHED):
                return self.outputs_of_execution(ex.id)
        return None

    def runs(self, pipeline_name: str) -> list[dict]:
        """Runs of a pipeline, newest first: ``{run_id, create_time, states}``."""
        ctx = self._call(self.store.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
        if ctx is None:
            return []
        runs = [c for c in self._call(self.store.get_contexts_by_type, RUN_CONTEXT)
                if c.custom_properties["pipeline_name"].string_value == pipeline_name]
        out = []
        for c in sorted(runs, key=lambda c: c.id, reverse=True):
            run_id = c.custom_properties["run_id"].string_value
            states = [e.properties["state"].string_value for e in self.executions_of_run(pipeline_name, run_id)]
            out.append({"run_id": run_id, "create_time": c.custom_properties["create_time"].string_value,
                        "states": states})
        return out

    def run_status(self, pipeline_name: str, run_id: str) -> list[dict]:
        """Each execution of a run: component, state, seconds, cached or not, error."""
        out = []
        for ex in self.executions_of_run(pipeline_name, run_id):
            start = ex.custom_properties["start_time"].double_value
            end = ex.custom_properties["end_time"].double_value if "end_time" in ex.custom_properties else None
            out.append({
                "component_id": ex.properties["component_id"].string_value,
                "state": ex.properties["state"].string_value,
                "seconds": round(end - start, 2) if end else None,
                "cached": ex.properties["state"].string_value == CACHED,
                "execution_id": ex.id,
                "error": ex.custom_properties["error"].string_value if "error" in ex.custom_properties else "",
            })
        return out

    def lineage(self, artifact_id: int) -> list[tuple[str, Artifact]]:
        """Every artifact upstream of one, with the component that produced it.

        Returns ``[(producer component id, artifact), ...]``: for a Model, the
        Examples, Schema and TransformGraph it was trained from, and theirs.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        seen: set[int] = {artifact_id}
        out = []
        frontier = [artifact_id]
        while frontier:
            events = self._call(self.store.get_events_by_artifact_ids, frontier)
            producers = sorted({e.execution_id for e in events if e.type == pb.Event.OUTPUT})
            frontier = []
            for ex_id in producers:
                for art in self.inputs_of_execution(ex_id).values():
                    if art.id in seen:
                        continue
                    seen.add(art.id)
                    out.append((self.producer_of(art.id), art))
                    frontier.append(art.id)
        return out

    def producing_execution(self, artifact_id: int):
        """``(component id, parameters dict)`` of the execution that first output an artifact."""
        import json

        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_artifact_ids, [artifact_id])
        outs = sorted(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
        if not outs:
            return None, {}
        [ex] = self._call(self.store.get_executions_by_id, [outs[0]])
        params = ex.custom_properties["parameters"].string_value if "parameters" in ex.custom_properties else "{}"
        return ex.properties["component_id"].string_value, json.loads(params)

    def producer_of(self, artifact_id: int) -> str | None:
        """The component id of the first execution that output an artifact."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_artifact_ids, [artifact_id])
        outs = sorted(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
        if not outs:
            return None
        [ex] = self._call(self.store.get_executions_by_id, [outs[0]])
        return ex.properties["component_id"].string_value

    def artifacts_of_type(self, type_name: str) -> list[Artifact]:
        arts = self._call(self.store.get_artifacts_by_type, type_name)
        return [Artifact(type_name, a.uri, a.id) for a in arts]


def ids(artifacts: Iterable[Artifact]) -> list[int]:
    return [a.id for a in artifacts]
