"""Airflow DAG files and Kubeflow pipeline specs, checked with Airflow and kfp themselves.

Airflow lives in its own virtual environment (``make airflow-env`` makes
``.venv-airflow/``; its pins clash with ours), so the Airflow checks run its
``python`` and ``airflow`` in subprocesses, with ``AIRFLOW_HOME`` in a temporary
directory and this venv's ``conveyor`` first on PATH, as a worker would have it.
"""

import ast
import json
import os
import subprocess
import sys

import pytest
import yaml

from conveyor.orchestration.metadata import Metadata

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRFLOW_BIN = os.path.join(REPO, ".venv-airflow", "bin")
needs_airflow = pytest.mark.skipif(
    not os.path.exists(os.path.join(AIRFLOW_BIN, "airflow")),
    reason=f"Apache Airflow is not installed in {os.path.dirname(AIRFLOW_BIN)} (run 'make airflow-env')",
)


def _pipeline_file(tmp_path, name="toy"):
    """Produce -> Sum, plus a Join after both (an edge without an artifact too)."""
    path = tmp_path / f"{name}_pipeline.py"
    path.write_text(
        "from orchestration_components import Join, Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        "p = Produce(n=4)\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        "j = Join(a=s.outputs['statistics'], b=p.outputs['examples'])\n"
        f"pipeline = Pipeline({name!r}, {str(tmp_path / 'root')!r}, [p, s, j])\n"
    )
    return str(path)


def compile_pipeline(conveyor, engine, pipeline_path, output, *more):
    """``conveyor pipeline compile --engine ENGINE`` of a pipeline file to ``output``."""
    args = ["--engine", engine, "--pipeline-path", str(pipeline_path), "--output", str(output)]
    return conveyor("pipeline", "compile", *args, *more)


def compile_kubeflow_spec(conveyor, pipeline_path, spec_path, *more) -> dict:
    """Compiles a pipeline file for Kubeflow to ``spec_path``; returns the spec it wrote."""
    compile_pipeline(conveyor, "kubeflow", pipeline_path, spec_path, *more)
    return yaml.safe_load(spec_path.read_text())


EDGES = {"Produce": [], "Sum": ["Produce"], "Join": ["Produce", "Sum"]}


# -- Airflow --------------------------------------------------------------------


def test_airflow_dag_file_is_plain_python_without_conveyor_imports(tmp_path, conveyor):
    path = _pipeline_file(tmp_path)
    out = tmp_path / "dags" / "toy.py"
    missing = conveyor(
        "pipeline", "compile", "--engine", "airflow", "--pipeline-path", path, check=False
    )
    assert missing.returncode == 2 and "needs --output" in missing.stderr
    res = compile_pipeline(conveyor, "airflow", path, out)
    assert str(out) in res.stdout
    assert (tmp_path / "dags" / "toy.pipeline.pkl").exists()
    tree = ast.parse(out.read_text())
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"airflow", "datetime", "re", "shlex"}
    table = next(
        n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "COMPONENTS"
    )
    assert {t: sorted(ups) for t, _, ups in ast.literal_eval(table)} == EDGES


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """An initialised Airflow home (SQLite), shared by the Airflow tests of this module."""
    home = tmp_path_factory.mktemp("airflow_home")
    proc = subprocess.run(
        [os.path.join(AIRFLOW_BIN, "airflow"), "db", "migrate"],
        capture_output=True,
        text=True,
        env=_airflow_env(home, home / "dags"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def _airflow_env(home, dags, conveyor_home=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONPATH"}
    e.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PATH=os.pathsep.join([BIN, AIRFLOW_BIN, e.get("PATH", "/usr/bin:/bin")]),
    )
    if conveyor_home:
        e["CONVEYOR_HOME"] = str(conveyor_home)
    return e


def _airflow(env, *args, timeout: float = 900):
    # A guard against a hang, not a time limit: 'dags test' of the TFX acceptance pipeline (a
    # task process per component, each importing TensorFlow) took over 300 s in CI, its two
    # pytest workers both running whole pipelines on the 2 cores.
    proc = subprocess.run(
        [os.path.join(AIRFLOW_BIN, "airflow"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, (args, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout + proc.stderr


DAGBAG_SCRIPT = """
import json, sys
from airflow.models import DagBag
bag = DagBag(sys.argv[1], include_examples=False)
dags = {d: {t.task_id: {"upstream": sorted(t.upstream_task_ids), "command": t.bash_command}
            for t in dag.tasks} for d, dag in bag.dags.items()}
heavy = [m for m in ("tensorflow", "apache_beam", "conveyor") if m in sys.modules]
print("RESULT " + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                              "dags": dags, "heavy": heavy}))
"""


@needs_airflow
def test_airflow_loads_the_dag_and_runs_its_tasks(tmp_path, conveyor, airflow_home):
    dags = tmp_path / "dags"
    path = _pipeline_file(tmp_path)
    compile_pipeline(conveyor, "airflow", path, dags / "toy.py")
    aenv = _airflow_env(airflow_home, dags)

    proc = subprocess.run(
        [os.path.join(AIRFLOW_BIN, "python"), "-c", DAGBAG_SCRIPT, str(dags)],
        capture_output=True,
        text=True,
        env=aenv,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(
        next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:]
    )
    assert result["errors"] == {}
    assert result["heavy"] == []  # parsing the DAG imports neither TensorFlow, Beam nor Conveyor
    tasks = result["dags"]["toy"]
    assert {t: v["upstream"] for t, v in tasks.items()} == EDGES
    assert (
        "component run" in tasks["Sum"]["command"] and "--component Sum" in tasks["Sum"]["command"]
    )
    assert "{{ run_id | conveyor_run_id }}" in tasks["Sum"]["command"]

    # One task on its own, as a worker runs it: `conveyor` from this venv, on PATH.
    log = _airflow(aenv, "tasks", "test", "toy", "Produce", "2024-01-02")
    assert '"state": "COMPLETE"' in log
    # The whole DAG run: its tasks share one (sanitized) Conveyor run id.
    _airflow(aenv, "dags", "test", "toy", "2024-01-03")
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    run_id = "manual__2024-01-03T00-00-00-00-00"
    rows = md.run_status("toy", run_id)
    # Produce's output from the `tasks test` run is reused: Conveyor's cache works across DAG runs.
    assert {r["component_id"]: r["state"] for r in rows} == {
        "Produce": "CACHED",
        "Sum": "COMPLETE",
        "Join": "COMPLETE",
    }
    summed = md.latest_outputs("toy", run_id, "Sum")["statistics"].uri
    with open(os.path.join(summed, "sum.json")) as f:
        assert json.load(f) == 6


@needs_airflow
def test_run_create_triggers_airflow(tmp_path, conveyor, conveyor_env, airflow_home):
    dags = tmp_path / "dags"
    aenv = _airflow_env(airflow_home, dags, conveyor_home=tmp_path / "home")
    path = _pipeline_file(tmp_path, name="trig")
    # The pipeline file imports the tests' components: only compiling needs them on the path.
    created = conveyor(
        "pipeline",
        "create",
        "--engine",
        "airflow",
        "--pipeline-path",
        path,
        env=dict(aenv, PYTHONPATH=conveyor_env["PYTHONPATH"]),
    )
    assert str(dags / "trig.py") in created.stdout  # the DAG folder (AIRFLOW__CORE__DAGS_FOLDER)
    _airflow(aenv, "dags", "reserialize")
    res = conveyor("run", "create", "--pipeline-name", "trig", env=aenv)
    assert "trig" in res.stdout + res.stderr
    runs = _airflow(aenv, "dags", "list-runs", "-d", "trig", "-o", "json")
    assert "manual__" in runs


def test_run_create_without_airflow_says_how_to_install(tmp_path, conveyor, conveyor_env):
    conveyor_env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    path = _pipeline_file(tmp_path)
    conveyor("pipeline", "create", "--engine", "airflow", "--pipeline-path", path)
    assert (tmp_path / "airflow" / "dags" / "toy.py").exists()
    conveyor_env["PATH"] = "/usr/bin:/bin"
    res = conveyor("run", "create", "--pipeline-name", "toy", check=False)
    assert res.returncode == 2
    assert "airflow command is not on PATH" in res.stderr and "make airflow-env" in res.stderr


# -- Kubeflow -------------------------------------------------------------------


def test_kubeflow_spec_has_a_container_task_per_component(tmp_path, conveyor):
    path = _pipeline_file(tmp_path)
    spec_path = tmp_path / "toy.yaml"
    image = [
        "--image",
        "registry.test/conveyor:1",
        "--image-pipeline-path",
        "pipelines/toy_pipeline.py",
    ]
    spec = compile_kubeflow_spec(conveyor, path, spec_path, *image)
    assert spec["pipelineInfo"]["name"] == "toy"
    root_param = spec["root"]["inputDefinitions"]["parameters"]["pipeline_root"]
    assert root_param["defaultValue"] == str(tmp_path / "root")
    tasks = spec["root"]["dag"]["tasks"]
    by_component = {t["taskInfo"]["name"]: name for name, t in tasks.items()}
    assert sorted(by_component) == sorted(EDGES)
    for component, ups in EDGES.items():
        task = tasks[by_component[component]]
        assert sorted(task.get("dependentTasks", [])) == sorted(by_component[u] for u in ups)
        assert task["inputs"]["parameters"]["pipeline_root"] == {
            "componentInputParameter": "pipeline_root"
        }
        assert (
            task["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"]
            == "{{$.pipeline_job_uuid}}"
        )
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        container = spec["deploymentSpec"]["executors"][executor]["container"]
        assert container["image"] == "registry.test/conveyor:1"
        assert container["command"] == ["conveyor"]
        args = container["args"]
        assert args[:4] == ["component", "run", "--pipeline-path", "pipelines/toy_pipeline.py"]
        assert args[args.index("--component") + 1] == component

    # kfp's own loader reads it back.
    from kfp import components

    loaded = components.load_component_from_file(str(spec_path))
    assert loaded.name == "toy"
    assert "pipeline_root" in loaded.component_spec.inputs


def test_kubeflow_container_commands_run_the_components(tmp_path, conveyor):
    """Each task's command line, placeholders filled as Kubeflow would, runs its component."""
    path = _pipeline_file(tmp_path)
    spec_path = tmp_path / "toy.yaml"
    spec = compile_kubeflow_spec(conveyor, path, spec_path)
    other_root = tmp_path / "kfp_root"
    values = {
        "{{$.inputs.parameters['run_id']}}": "job-1234",
        "{{$.inputs.parameters['pipeline_root']}}": str(other_root),
    }
    tasks = spec["root"]["dag"]["tasks"]
    for component in EDGES:  # a topological order
        task = next(t for t in tasks.values() if t["taskInfo"]["name"] == component)
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        args = [
            values.get(a, a)
            for a in spec["deploymentSpec"]["executors"][executor]["container"]["args"]
        ]
        conveyor(*args)
    rows = Metadata(str(other_root / "metadata.sqlite")).run_status("toy", "job-1234")
    assert sorted(r["component_id"] for r in rows if r["state"] == "COMPLETE") == sorted(EDGES)
    assert not (tmp_path / "root").exists()


def test_run_create_for_kubeflow_prints_how_to_submit(tmp_path, conveyor, conveyor_env):
    path = _pipeline_file(tmp_path)
    created = conveyor("pipeline", "create", "--engine", "kubeflow", "--pipeline-path", path)
    spec = os.path.join(conveyor_env["CONVEYOR_HOME"], "pipelines", "toy.kubeflow.yaml")
    assert spec in created.stdout and os.path.exists(spec)
    res = conveyor("run", "create", "--pipeline-name", "toy")
    assert spec in res.stdout
    assert (
        f"kfp --endpoint URL run create --experiment-name toy --package-file {spec}" in res.stdout
    )


# -- notebook export: the whole file it writes ---------------------------------

_RICH_NOTEBOOK = [
    ("markdown", "# A title"),
    (
        "code",
        [
            "%matplotlib inline\n",
            "import os\n",
            "from conveyor.orchestration.interactive import InteractiveContext as IC, render_html\n",
            "from orchestration_components import Produce, Sum\n",
        ],
    ),
    ("code", "   "),
    ("code", "# conveyor: skip\nprint('scratch')"),
    ("code", "%%bash\necho hi"),
    ("code", "x = 1\n%%skip\n"),
    ("code", "ctx = IC('nb_name', '/data/root', None,\n         ['--direct_num_workers=2'])"),
    ("code", "!pip list\nproduce = Produce(n=3)\nctx.run(produce)"),
    ("code", "ctx.show(produce.outputs['examples'])"),
    ("code", "display(render_html)"),
    (
        "code",
        "result = ctx.run(Sum(examples=produce.outputs['examples']))\nprint(result.component)",
    ),
    ("code", "again = other = ctx.run(produce)"),
]

_RICH_BODY = """\
import os
from types import SimpleNamespace

from conveyor.dsl import Pipeline

# -- code cell 1 -------------------------------------------------------
import os
from conveyor.orchestration.interactive import render_html
from orchestration_components import Produce, Sum

# -- code cell 6 -------------------------------------------------------
PIPELINE_NAME = 'nb_name'
PIPELINE_ROOT = {root}
BEAM_PIPELINE_ARGS = ['--direct_num_workers=2']

# -- code cell 7 -------------------------------------------------------
produce = Produce(n=3)

# -- code cell 10 -------------------------------------------------------
_component_1 = Sum(examples=produce.outputs['examples'])
result = SimpleNamespace(component=_component_1)
print(result.component)

# -- code cell 11 -------------------------------------------------------
again = other = SimpleNamespace(component=produce)


# -- the pipeline ------------------------------------------------------------
pipeline = Pipeline(PIPELINE_NAME, PIPELINE_ROOT, components=[produce, _component_1], beam_pipeline_args=BEAM_PIPELINE_ARGS)


if __name__ == "__main__":
"""

_AIRFLOW_MAIN = """\
    from conveyor.orchestration.airflow import AirflowDagConfig, AirflowDagRunner

    import sys

    # The DAG file to write (default: beside this file); put it in Airflow's DAG folder.
    output = sys.argv[1] if len(sys.argv) > 1 else os.path.splitext(os.path.abspath(__file__))[0] + "_dag.py"
    print(AirflowDagRunner(AirflowDagConfig(output=output)).run(pipeline))
"""

_PLAIN_NOTEBOOK = [
    (
        "code",
        "import conveyor.orchestration.interactive\n"
        "from conveyor.orchestration.interactive import InteractiveContext",
    ),
    (
        "code",
        "context = InteractiveContext(pipeline_root=None)\nfrom orchestration_components import Produce",
    ),
    ("code", "context.run(Produce(n=2))\ncontext.run(Produce(id='b'))"),
]

_PLAIN_EXPORT = '''\
"""Pipeline exported from my nb!.ipynb on DATE.

Run it with ``python my nb!.py`` (local runner), or register it with
``conveyor pipeline create --pipeline-path my nb!.py``.
"""

import os

from conveyor.dsl import Pipeline

# -- code cell 1 -------------------------------------------------------
import conveyor.orchestration.interactive

# -- code cell 2 -------------------------------------------------------
PIPELINE_NAME = 'my_nb'
PIPELINE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), PIPELINE_NAME + "_root")
from orchestration_components import Produce

# -- code cell 3 -------------------------------------------------------
_component_1 = Produce(n=2)
_component_2 = Produce(id='b')


# -- the pipeline ------------------------------------------------------------
pipeline = Pipeline(PIPELINE_NAME, PIPELINE_ROOT, components=[_component_1, _component_2])


if __name__ == "__main__":
    from conveyor.orchestration.local_runner import LocalDagRunner

    LocalDagRunner().run(pipeline)
'''


def _write_notebook(path, cells) -> str:
    """A .ipynb file of ``(cell type, source)`` cells (a source may be a list of lines, as Jupyter saves it)."""
    code = {"outputs": [], "execution_count": None}
    nb = {
        "cells": [
            {
                "cell_type": kind,
                "source": source,
                "metadata": {},
                **(code if kind == "code" else {}),
            }
            for kind, source in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return str(path)


def _export(tmp_path, cells, name, **kwargs) -> str:
    """The exported file's text, its date and the temporary folder replaced by DATE and TMP."""
    import re

    from conveyor.orchestration.notebook_export import export_notebook

    notebook = _write_notebook(tmp_path / f"{name}.ipynb", cells)
    path = export_notebook(notebook, str(tmp_path / "out" / f"{name}.py"), **kwargs)
    assert path == str(tmp_path / "out" / f"{name}.py")
    text = open(path, encoding="utf-8").read()
    return re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d\.", "on DATE.", text).replace(str(tmp_path), "TMP")


def _header(name: str, runner: str) -> str:
    return (
        f'"""Pipeline exported from {name}.ipynb on DATE.\n\n'
        f"Run it with ``python {name}.py`` ({runner} runner), or register it with\n"
        f"``conveyor pipeline create --pipeline-path {name}.py``.\n"
        '"""\n\n'
    )


def test_notebook_export_writes_exactly_this_file(tmp_path):
    """Every rule of the export, on the whole file: skipped cells and magics, the context's
    import (aliased, beside other names) and construction (positional arguments, Beam flags),
    show/display cells, runs of a name, of an expression and assigned, each runner's ending."""
    assert _export(tmp_path, _RICH_NOTEBOOK, "rich", runner="airflow") == (
        _header("rich", "airflow") + _RICH_BODY.format(root="'/data/root'") + _AIRFLOW_MAIN
    )
    # A pipeline_root given to the export wins over the notebook's, as an absolute path.
    assert _export(
        tmp_path, _RICH_NOTEBOOK, "rich2", runner="beam", pipeline_root=str(tmp_path / "given")
    ) == (
        _header("rich2", "beam")
        + _RICH_BODY.format(root="'TMP/given'")
        + "    from conveyor.orchestration.beam_runner import BeamDagRunner\n\n"
        "    BeamDagRunner().run(pipeline)\n"
    )
    # No name or root in the notebook: the name from the file's, the root beside the export.
    assert _export(tmp_path, _PLAIN_NOTEBOOK, "my nb!") == _PLAIN_EXPORT


@pytest.mark.parametrize(
    "cells, message",
    [
        ([("code", "context = (")], "cell 1 does not parse"),
        (
            [
                (
                    "code",
                    "from conveyor.orchestration.interactive import InteractiveContext\n"
                    "a = b = InteractiveContext()",
                )
            ],
            "assign the InteractiveContext to one name",
        ),
        (
            [
                (
                    "code",
                    "from conveyor.orchestration.interactive import InteractiveContext\n"
                    "context = InteractiveContext()\ncontext.run()",
                )
            ],
            r"cell 1: context.run\(\) without a component",
        ),
        ([("code", "print(1)")], "no 'context = InteractiveContext"),
    ],
)
def test_notebook_export_refuses_with_the_cell(tmp_path, cells, message):
    from conveyor.orchestration.notebook_export import NotebookExportError, export_notebook

    with pytest.raises(NotebookExportError, match=message):
        export_notebook(_write_notebook(tmp_path / "nb.ipynb", cells), str(tmp_path / "out.py"))
    assert not (tmp_path / "out.py").exists()
