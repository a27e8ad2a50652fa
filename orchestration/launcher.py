"""Runs one component of a pipeline: resolve inputs, check the cache, execute, publish.

This is the unit every runner calls, in-process or as
``python -m conveyor.orchestration.launcher PIPELINE_PICKLE COMPONENT_ID RUN_ID``
(what ``conveyor component run`` and external orchestrators run).

Outputs are written to ``<root>/<component>/<key>/.<execution>.tmp`` and renamed
to ``<root>/<component>/<key>/<execution>`` only when the component succeeds, so
a failed or killed component leaves nothing published.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import traceback

from conveyor.orchestration.artifacts import Artifact
from conveyor.orchestration.dsl import Component, ExecutionContext, Pipeline
from conveyor.orchestration.metadata import CACHED, COMPLETE, FAILED, Metadata


class ComponentError(RuntimeError):
    """A component failed; the message leads with the user's error and where it came from."""


def metadata_for(pipeline: Pipeline) -> Metadata:
    return Metadata(pipeline.metadata_connection_config or pipeline.metadata_path)


def execution_type(component: Component) -> str:
    return f"conveyor.{type(component).__name__}"


def cache_key(component: Component, inputs: dict[str, Artifact], beam_args: list[str]) -> str:
    h = hashlib.sha256(component.fingerprint().encode())
    h.update(component.id.encode())  # two nodes never share an execution, even if configured alike
    for key in sorted(inputs):
        h.update(f"{key}={inputs[key].id}".encode())
    h.update(" ".join(beam_args).encode())
    return h.hexdigest()


def resolve_inputs(md: Metadata, pipeline: Pipeline, component: Component, run_id: str) -> dict[str, Artifact]:
    inputs = {}
    for key, channel in component.inputs.items():
        produced = md.latest_outputs(pipeline.name, run_id, channel.producer.id)
        if not produced or channel.key not in produced:
            raise ComponentError(
                f"{component.id}: input {key!r} needs {channel.producer.id}.outputs[{channel.key!r}], "
                f"which run {run_id!r} has not produced (run {channel.producer.id} first)"
            )
        inputs[key] = produced[channel.key]
    return inputs


def user_error_summary(exc: BaseException) -> str:
    """The exception's message and the innermost frame outside Conveyor and Beam, first."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "/apache_beam/" not in f.filename and "/site-packages/" not in f.filename]
    where = f" (at {own[-1].filename}:{own[-1].lineno} in {own[-1].name})" if own else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_component(pipeline: Pipeline, component_id: str, run_id: str, enable_cache: bool | None = None,
                  md: Metadata | None = None, log=print) -> dict:
    """Runs one component of ``pipeline`` in run ``run_id``; returns its status.

    The status is ``{"component_id", "state" (COMPLETE|CACHED), "seconds",
    "outputs": {key: uri}}``. Raises :class:`ComponentError` if it fails.
    """
    component = pipeline.component(component_id)
    md = md or metadata_for(pipeline)
    start = time.time()
    inputs = resolve_inputs(md, pipeline, component, run_id)
    beam_args = pipeline.beam_pipeline_args + component.beam_args
    key = cache_key(component, inputs, beam_args)
    use_cache = pipeline.enable_cache if enable_cache is None else enable_cache
    type_name = execution_type(component)
    if use_cache:
        cached = md.find_cached(key, type_name)
        if cached is not None:
            ex_id = md.start_execution(type_name, pipeline.name, run_id, component_id, inputs, key,
                                       component.parameters)
            md.finish_execution(ex_id, CACHED, cached)
            return {"component_id": component_id, "state": CACHED, "seconds": time.time() - start,
                    "outputs": {k: a.uri for k, a in cached.items()}}
    ex_id = md.start_execution(type_name, pipeline.name, run_id, component_id, inputs, key,
                               component.parameters)
    final = {k: Artifact(t, f"{pipeline.root}/{component_id}/{k}/{ex_id}") for k, t in component.OUTPUTS.items()}
    staging = {k: Artifact(a.type_name, f"{pipeline.root}/{component_id}/{k}/.{ex_id}.tmp") for k, a in final.items()}
    for a in staging.values():
        if os.path.exists(a.uri):
            shutil.rmtree(a.uri)
        os.makedirs(a.uri)
    ctx = ExecutionContext(inputs, staging, dict(component.parameters), beam_args, run_id, pipeline.root)
    try:
        props = component.execute(ctx) or {}
    except BaseException as e:
        summary = user_error_summary(e)
        md.finish_execution(ex_id, FAILED, error=summary + "\n" + traceback.format_exc())
        for a in staging.values():
            shutil.rmtree(a.uri, ignore_errors=True)
        raise ComponentError(f"{component_id} failed: {summary}") from e
    for k, a in final.items():
        os.replace(staging[k].uri, a.uri)
        a.properties.update(props.get(k, {}))
    md.finish_execution(ex_id, COMPLETE, final)
    return {"component_id": component_id, "state": COMPLETE, "seconds": time.time() - start,
            "outputs": {k: a.uri for k, a in final.items()}}


def main(argv=None) -> int:
    """``launcher PIPELINE_PICKLE_OR_PY COMPONENT_ID RUN_ID [--no-cache]``."""
    import json
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from conveyor.orchestration.loader import load_pipeline

    argv = list(sys.argv[1:] if argv is None else argv)
    no_cache = "--no-cache" in argv
    argv = [a for a in argv if a != "--no-cache"]
    if len(argv) != 3:
        print("usage: launcher PIPELINE COMPONENT_ID RUN_ID [--no-cache]", file=sys.stderr)
        return 2
    path, component_id, run_id = argv
    pipeline = load_pipeline(path)
    try:
        status = run_component(pipeline, component_id, run_id, enable_cache=False if no_cache else None)
    except ComponentError as e:
        print(f"ERROR {e}", file=sys.stderr)
        traceback.print_exc()
        return 1
    print("STATUS " + json.dumps(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
