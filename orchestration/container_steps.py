"""A container component in three steps, for orchestrators that run its command in its own image.

Kubeflow runs a container component's command in the component's image, which
has no Conveyor in it. So Conveyor's bookkeeping runs around it, in Conveyor's
image:

1. ``prepare``: decides as the launcher does (skipped, cached, or it runs),
   records the execution RUNNING, makes its temporary output folders and
   writes the command line's filled placeholders, one file each;
2. the command, in the component's image, with those values;
3. ``publish``: moves the outputs into place and records the execution
   COMPLETE with its outputs (a value artifact's value as its property).

Run as ``python -m conveyor.orchestration.container_steps prepare|publish ...``
(``--help`` lists the flags).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from conveyor.dsl import Pipeline
from conveyor.dsl.artifacts import Artifact, make_artifact
from conveyor.dsl.container_component import ContainerComponent, render_command
from conveyor.dsl.function_component import recorded_properties
from conveyor.orchestration.launcher import (
    ComponentError,
    EmptyInputError,
    cache_key,
    check_root,
    execution_type,
    metadata_for,
    resolve_input_lists,
)
from conveyor.orchestration.metadata import CACHED, COMPLETE, FAILED, RUNNING, Metadata

#: What ``prepare`` decides: the command runs, or the component is done (cached or skipped).
RUN, DONE = "true", "false"


def _container(pipeline: Pipeline, component_id: str) -> ContainerComponent:
    component = pipeline.component(component_id)
    if not isinstance(component, ContainerComponent):
        raise ComponentError(f"{component_id} is not a container component")
    return component


def _outputs(pipeline: Pipeline, component: ContainerComponent, ex_id: int, staging: bool):
    tmp = "." if staging else ""
    suffix = ".tmp" if staging else ""
    return {
        k: Artifact(t, f"{pipeline.root}/{component.id}/{k}/{tmp}{ex_id}{suffix}")
        for k, t in component.OUTPUTS.items()
    }


def prepare_container(
    pipeline: Pipeline,
    component_id: str,
    run_id: str,
    runtime_parameters: dict | None = None,
    enable_cache: bool | None = None,
    md: Metadata | None = None,
) -> dict:
    """Step 1: ``{"decision": RUN or DONE, "state", "execution_id", "command": [...]}``.

    DONE: the component was recorded SKIPPED (``reason`` says why) or CACHED;
    RUN: its execution is recorded RUNNING and ``command`` is its command line,
    placeholders filled (outputs in their temporary folders).
    """
    from conveyor.orchestration.parameter_values import with_placeholder_values
    from conveyor.orchestration.skipping import prepare

    component = _container(pipeline, component_id)
    check_root(pipeline.root)
    md = md or metadata_for(pipeline)
    md.note_components(pipeline.name, run_id, [c.id for c in pipeline.components])
    component, skipped = prepare(md, pipeline, component, run_id, runtime_parameters)
    if skipped is None:
        component, skipped = with_placeholder_values(md, pipeline, component, run_id)
    type_name = execution_type(component)
    ids = (pipeline.name, run_id, component_id)
    if skipped is not None:
        md.record_skipped(type_name, *ids, component.parameters, skipped)
        return {"decision": DONE, "state": "SKIPPED", "reason": skipped}
    try:
        input_lists = resolve_input_lists(md, pipeline, component, run_id)
    except EmptyInputError as e:
        ex_id = md.start_execution(type_name, *ids, {}, "", component.parameters)
        md.finish_execution(ex_id, FAILED, error=str(e))
        raise
    key = cache_key(component, input_lists, pipeline.beam_pipeline_args + component.beam_args)
    use_cache = pipeline.enable_cache if enable_cache is None else enable_cache
    cached = md.find_cached(key, type_name, pipeline_name=pipeline.name) if use_cache else None
    ex_id = md.start_execution(type_name, *ids, input_lists, key, component.parameters)
    if cached is not None:
        md.finish_execution(ex_id, CACHED, cached)
        return {"decision": DONE, "state": CACHED, "execution_id": ex_id}
    staging = _outputs(pipeline, component, ex_id, staging=True)
    md.set_staging(ex_id, [a.uri for a in staging.values()])
    for a in staging.values():
        shutil.rmtree(a.uri, ignore_errors=True)
        os.makedirs(a.uri)
    try:
        command = render_command(component, input_lists, staging, component.parameters)
    except Exception as e:
        md.end_if_running(ex_id, FAILED, f"{component_id}: {e}")
        raise ComponentError(f"{component_id} failed: {e}") from e
    return {"decision": RUN, "state": RUNNING, "execution_id": ex_id, "command": command}


def publish_container(
    pipeline: Pipeline, component_id: str, execution_id: int, md: Metadata | None = None
) -> dict:
    """Step 3, after the command succeeded: publishes the outputs of the RUNNING execution and
    records it COMPLETE; returns ``{"state", "outputs": {key: uri}}``."""
    component = _container(pipeline, component_id)
    md = md or metadata_for(pipeline)
    [ex] = md._call(md.store.get_executions_by_id, [int(execution_id)])
    state = ex.properties["state"].string_value
    if state != RUNNING:
        raise ComponentError(
            f"{component_id}: execution {execution_id} is {state}, not RUNNING: nothing to publish"
        )
    staging = _outputs(pipeline, component, execution_id, staging=True)
    final = _outputs(pipeline, component, execution_id, staging=False)
    missing = [a.uri for a in staging.values() if not os.path.isdir(a.uri)]
    if missing:
        md.end_if_running(int(execution_id), FAILED, f"temporary outputs gone: {missing}")
        raise ComponentError(f"{component_id}: its temporary outputs are gone: {missing}")
    for k, a in final.items():
        os.replace(staging[k].uri, a.uri)
        a.properties.update(recorded_properties(make_artifact(a.type_name, a.uri)))
    md.finish_execution(int(execution_id), COMPLETE, final)
    return {"state": COMPLETE, "outputs": {k: a.uri for k, a in final.items()}}


# -- the command line ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conveyor.orchestration.container_steps",
        description="A container component's Conveyor steps around its command (Kubeflow).",
    )
    p.add_argument("step", choices=["prepare", "publish"])
    p.add_argument("--pipeline-path", required=True, metavar="FILE")
    p.add_argument("--component", required=True, metavar="ID")
    p.add_argument("--run-id", required=True, metavar="ID")
    p.add_argument("--pipeline-root", metavar="DIR", help="instead of the pipeline's own root")
    p.add_argument("--runtime-parameter", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--decision-file", metavar="PATH", help=f"prepare: {RUN} (it runs) or {DONE}")
    p.add_argument("--execution-file", metavar="PATH", help="prepare: the execution id")
    p.add_argument(
        "--arg-file",
        action="append",
        default=[],
        metavar="INDEX=PATH",
        help="prepare: write the command's argument INDEX (placeholders filled) to PATH",
    )
    p.add_argument("--execution-id", metavar="N", help="publish: the execution prepare recorded")
    p.add_argument("--state-file", metavar="PATH", help="publish: write COMPLETE to PATH")
    return p


def _write(path: str | None, text: str) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def main(argv=None) -> int:
    """The steps' command line; exit 0, 1 when the step fails, 2 for a usage error."""
    from conveyor.dsl.runtime import (
        RuntimeParameterError,
        parse_assignments,
        resolve_runtime_parameters,
    )
    from conveyor.orchestration.loader import load_pipeline

    args = _parser().parse_args(argv)
    pipeline = load_pipeline(args.pipeline_path)
    if args.pipeline_root:
        root = args.pipeline_root
        pipeline.root = root if "://" in root else os.path.abspath(root)
    try:
        pipeline.component(args.component)
        values = resolve_runtime_parameters(pipeline, parse_assignments(args.runtime_parameter))
        files = dict(item.split("=", 1) for item in args.arg_file)
    except (KeyError, RuntimeParameterError, ValueError) as e:
        print(f"error: {str(e).strip(chr(34))}", file=sys.stderr)
        return 2
    try:
        if args.step == "publish":
            if not args.execution_id:
                print("error: publish needs --execution-id", file=sys.stderr)
                return 2
            status = publish_container(pipeline, args.component, int(args.execution_id))
            _write(args.state_file, status["state"])
        else:
            md = metadata_for(pipeline)
            if values:
                md.record_runtime_parameters(pipeline.name, args.run_id, values)
            status = prepare_container(
                pipeline, args.component, args.run_id, values, False if args.no_cache else None, md
            )
            _write(args.decision_file, status["decision"])
            _write(args.execution_file, str(status.get("execution_id", "")))
            command = status.get("command") or []
            for index, path in files.items():
                _write(path, command[int(index)] if int(index) < len(command) else "")
    except ComponentError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    print(
        f"{args.component}: {status['state']}"
        + (f" ({status['reason']})" if "reason" in status else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
