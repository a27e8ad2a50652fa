"""``AirflowDagRunner``: writes a pipeline as a DAG file for Apache Airflow.

The DAG has one task per component, wired as the pipeline is. Each task is a
``BashOperator`` running ``conveyor component run`` on the pipeline, pickled
beside the DAG file, so Airflow's workers need only the ``conveyor`` package and
parsing the DAG imports nothing but Airflow (no TensorFlow, no Beam). The tasks
of one DAG run share a Conveyor run id made from Airflow's ``{{ run_id }}``.

A component that is skipped (its ``Cond`` is false, or a producer it needs was
skipped) ends its task "skipped": ``conveyor component run`` records it SKIPPED
and exits with :data:`SKIPPED_EXIT_CODE`, the operator's ``skip_on_exit_code``.
Every task runs once its upstream tasks succeeded or were skipped (trigger rule
``none_failed``), so the command, not Airflow, decides whether a component
downstream of a skipped one runs (an optional input left out) or is skipped too.

A container component (``create_container_component``) is a task like the
others: ``conveyor component run`` runs its command as a subprocess on the
worker with its placeholders filled (its image is recorded, not pulled: the
command's programs must be on the workers). The DAG's ``CONTAINERS`` table and
the task's documentation show its image and command.

The pipeline's runtime parameters are the DAG's params (typed, with their
defaults; one without default must be given), so a DAG run's conf
(``{"epochs": 5}``, ``airflow dags trigger --conf``) sets them; each task passes
their values to ``conveyor component run --runtime-parameter``.

Example::

    from conveyor.orchestration.airflow import AirflowDagConfig, AirflowDagRunner

    AirflowDagRunner(AirflowDagConfig(output="dags/flights.py")).run(pipeline)

or ``conveyor pipeline compile --engine airflow --pipeline-path FILE --output dags/flights.py``.

This module does not import Airflow: only the file it writes does.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

from conveyor.dsl import Pipeline
from conveyor.dsl.container_component import ContainerComponent
from conveyor.dsl.runtime import runtime_parameters_of
from conveyor.orchestration.loader import captured_by_loader, save_pipeline

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

#: The exit status of ``conveyor component run`` for a skipped component in the DAG's tasks:
#: BashOperator's ``skip_on_exit_code`` (99, Airflow's default for it too).
SKIPPED_EXIT_CODE = 99

#: A runtime parameter's type as a DAG param's JSON-schema type.
_PARAM_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def safe_id(name: str) -> str:
    """``name`` with the characters Airflow refuses in DAG and task ids replaced by ``_``."""
    return _UNSAFE.sub("_", name)


@dataclass
class AirflowDagConfig:
    """How to write the DAG.

    Attributes:
      output: the DAG file to write (in Airflow's DAG folder, or copied there). The
        pickled pipeline goes beside it as ``<stem>.pipeline.pkl``.
      dag_id: default: the pipeline's name.
      schedule: an Airflow schedule (``"@daily"``, a cron string); ``None``: runs only
        when triggered.
      start_date: the DAG's start date.
      retries: Airflow retries per task (a retried component starts over; published
        outputs are never half-written).
      conveyor: the ``conveyor`` executable on the workers.
      beam_args: Beam flags for every component, after the pipeline's own.
      tags: Airflow tags of the DAG.
    """

    output: str
    dag_id: str | None = None
    schedule: str | None = None
    start_date: datetime.date = datetime.date(2024, 1, 1)
    retries: int = 0
    conveyor: str = "conveyor"
    beam_args: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=lambda: ["conveyor"])


class AirflowDagRunner:
    """Writes a pipeline as an Airflow DAG file (it does not run anything itself)."""

    def __init__(self, config: AirflowDagConfig):
        self.config = config

    def run(self, pipeline: Pipeline) -> str:
        """Writes the DAG file and the pickled pipeline; returns the DAG file's path (None, and
        nothing written, when a pipeline file is being loaded: :func:`captured_by_loader`)."""
        if captured_by_loader(pipeline):
            return None
        cfg = self.config
        output = os.path.abspath(cfg.output)
        if not output.endswith(".py"):
            raise ValueError(f"{cfg.output}: an Airflow DAG file must end in .py")
        task_ids = {c.id: safe_id(c.id) for c in pipeline.components}
        clashes = sorted({t for t in task_ids.values() if list(task_ids.values()).count(t) > 1})
        if clashes:
            raise ValueError(
                f"component ids map to the same Airflow task id(s) {clashes}; rename them"
            )
        os.makedirs(os.path.dirname(output), exist_ok=True)
        pickle_path = save_pipeline(pipeline, output[: -len(".py")] + ".pipeline.pkl")
        text = render_dag(pipeline, cfg, pickle_path, task_ids)
        from conveyor.beam_utils.outputs import staged_output

        with staged_output(output, is_file=True) as staged, open(staged, "w") as f:
            f.write(text)
        return output


def render_dag(
    pipeline: Pipeline, cfg: AirflowDagConfig, pickle_path: str, task_ids: dict[str, str]
) -> str:
    """The DAG file's source."""
    rows = []
    for c in pipeline.components:
        ups = [task_ids[u.id] for u in c.upstream]
        rows.append(f"    ({task_ids[c.id]!r}, {c.id!r}, {ups!r}),")
    params = {}
    for name, p in runtime_parameters_of(pipeline).items():
        spec = {"type": _PARAM_TYPES[p.ptype]}
        if p.default is not None:
            spec["default"] = p.default
        if p.description:
            spec["description"] = p.description
        params[name] = spec
    containers = {
        task_ids[c.id]: {
            "image": c.IMAGE,
            "command": [str(a) if isinstance(a, str) else repr(a) for a in c.COMMAND],
        }
        for c in pipeline.components
        if isinstance(c, ContainerComponent)
    }
    start = cfg.start_date
    return _TEMPLATE.format(
        containers="".join(f"    {k!r}: {v!r},\n" for k, v in containers.items()),
        name=pipeline.name,
        pickle_path=pickle_path,
        conveyor=cfg.conveyor,
        beam_args=list(cfg.beam_args),
        components="\n".join(rows),
        runtime_parameters="".join(f"    {k!r}: {v!r},\n" for k, v in params.items()),
        skipped_exit_code=SKIPPED_EXIT_CODE,
        dag_id=cfg.dag_id or safe_id(pipeline.name),
        schedule=cfg.schedule,
        start_date=f"datetime.datetime({start.year}, {start.month}, {start.day})",
        retries=int(cfg.retries),
        tags=list(cfg.tags),
    )


_TEMPLATE = '''\
"""Apache Airflow DAG of the Conveyor pipeline {name!r}: one task per component.

Written by Conveyor (conveyor pipeline compile --engine airflow): compile the
pipeline again rather than edit this file. Each task runs ``conveyor component
run`` on the pickled pipeline beside this file; the tasks of one DAG run share a
Conveyor run id made from Airflow's run id. A skipped component (its condition
false, or a producer it needs skipped) ends its task "skipped"; the pipeline's
runtime parameters are this DAG's params, set by a DAG run's conf.
"""

import datetime
import re
import shlex

from airflow import DAG

try:  # Airflow 3 keeps the operator in the standard provider.
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:
    from airflow.operators.bash import BashOperator
try:
    from airflow.sdk import Param
except ImportError:
    from airflow.models.param import Param

PIPELINE = {pickle_path!r}
CONVEYOR = {conveyor!r}
BEAM_ARGS = {beam_args!r}
# (task id, component id, upstream task ids), in the pipeline's order.
COMPONENTS = [
{components}
]
# Container components (task id: image and command): the task runs the command with its
# placeholders filled, here on the worker (the image is recorded, not pulled).
CONTAINERS = {{
{containers}}}
# The pipeline's runtime parameters (name: JSON schema): the DAG's params, which a DAG run's
# conf ({{"name": value}}) sets.
RUNTIME_PARAMETERS = {{
{runtime_parameters}}}
# What `conveyor component run` exits with when it skips the component: the task is "skipped".
SKIPPED_EXIT_CODE = {skipped_exit_code}


def conveyor_run_id(airflow_run_id):
    """Airflow's run id (manual__2024-05-01T10:00:00+00:00) as a Conveyor run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", airflow_run_id).strip("-.")


def shell_quote(value):
    return shlex.quote(str(value))


def container_doc(task_id):
    if task_id not in CONTAINERS:
        return None
    spec = CONTAINERS[task_id]
    command = " ".join(spec["command"])
    return f"Container component: image `{{spec['image']}}`, command `{{command}}`"


def component_command(component_id):
    args = [CONVEYOR, "component", "run", "--pipeline-path", PIPELINE,
            "--component", component_id, "--run-id", "{{{{ run_id | conveyor_run_id }}}}",
            "--skipped-exit-code", str(SKIPPED_EXIT_CODE)]
    command = " ".join(shlex.quote(a) for a in args)
    for name in RUNTIME_PARAMETERS:  # each value as this DAG run has it, quoted when rendered
        command += f" --runtime-parameter {{name}}={{{{{{{{ params[{{name!r}}] | shell_quote }}}}}}}}"
    if BEAM_ARGS:
        command += " -- " + " ".join(shlex.quote(a) for a in BEAM_ARGS)
    return command


with DAG(
    dag_id={dag_id!r},
    schedule={schedule!r},
    start_date={start_date},
    catchup=False,
    default_args={{"retries": {retries}}},
    user_defined_filters={{"conveyor_run_id": conveyor_run_id, "shell_quote": shell_quote}},
    params={{name: Param(**schema) for name, schema in RUNTIME_PARAMETERS.items()}},
    tags={tags!r},
) as dag:
    tasks = {{}}
    for task_id, component_id, upstream in COMPONENTS:
        tasks[task_id] = BashOperator(
            task_id=task_id,
            bash_command=component_command(component_id),
            doc_md=container_doc(task_id),
            skip_on_exit_code=SKIPPED_EXIT_CODE,
            # Upstream tasks skipped too: the command decides whether this one runs.
            trigger_rule="none_failed",
        )
        for up in upstream:
            tasks[up] >> tasks[task_id]
'''
