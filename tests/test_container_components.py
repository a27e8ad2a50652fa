"""Container components (``create_container_component``) with TFX's placeholders, in a pipeline with a
``@component`` and a custom artifact type: local runners (in-process and child processes), caching,
ML Metadata, the Kubeflow spec run as Kubeflow would, and the Airflow DAG."""

import json
import os
import subprocess
import sys

import pytest
from orchestration_components import Produce
from test_conditions import run_kubeflow_spec
from test_exporters import (
    AIRFLOW_BIN,
    _airflow,
    _airflow_env,
    airflow_home,  # noqa: F401  (a fixture: an initialised Airflow home)
    compile_kubeflow_spec,
    compile_pipeline,
    needs_airflow,
)

from conveyor.dsl import Cond, Pipeline, PipelineDefinitionError, RuntimeParameter
from conveyor.dsl.artifact_types import Examples, Integer, Model
from conveyor.dsl.artifacts import Artifact, Property, PropertyType
from conveyor.dsl.container_component import (
    ConcatPlaceholder,
    ContainerComponent,
    InputUriPlaceholder,
    InputValuePlaceholder,
    OutputUriPlaceholder,
    create_container_component,
    exec_property,
    render_command,
)
from conveyor.dsl.container_component import input as ph_input
from conveyor.dsl.container_component import output as ph_output
from conveyor.dsl.function_component import (
    InputArtifact,
    OutputArtifact,
    OutputDict,
    component,
)
from conveyor.orchestration import LocalDagRunner, Metadata, PipelineRunError


class Summary(Artifact):
    """A custom artifact type: a histogram of Produce's numbers."""

    TYPE_NAME = "test_cc.Summary"
    PROPERTIES = {
        "bins": Property(type=PropertyType.INT),
        "mean": Property(type=PropertyType.FLOAT),
    }


@component
def Score(examples: InputArtifact[Examples], summary: OutputArtifact[Summary]) -> OutputDict(
    accuracy=float, rows=int
):
    """Reads Produce's numbers; a Summary artifact, an accuracy and a row count."""
    with open(os.path.join(examples.uri, "data.json")) as f:
        data = json.load(f)
    summary.bins, summary.mean = 2, sum(data) / len(data)
    with open(os.path.join(summary.uri, "hist.json"), "w") as f:
        json.dump([sum(1 for x in data if x % 2 == b) for b in (0, 1)], f)
    return {"accuracy": len(data) / 10, "rows": len(data)}


@component
def Double(count: int) -> OutputDict(double=int):
    """A value the container component wrote, read by a function component."""
    return {"double": 2 * count}


REPORT_SCRIPT = """
import json, os, sys
examples, summary, rows, threshold, report_file, count_file, label, bins = sys.argv[1:9]
with open(os.path.join(examples, "data.json")) as f:
    data = json.load(f)
with open(os.path.join(summary, "hist.json")) as f:
    hist = json.load(f)
if label == "fail":
    print("a line before", file=sys.stderr)
    print("the command broke on purpose", file=sys.stderr)
    sys.exit(3)
with open(report_file, "w") as f:
    json.dump({"rows": int(rows), "threshold": float(threshold), "label": label,
               "bins": int(bins), "hist": hist}, f)
with open(count_file, "w") as f:
    f.write(str(len(data) + int(rows)))
"""

IMAGE = "registry.test/report:1"

Report = create_container_component(
    name="Report",
    image=IMAGE,
    command=[
        "python3",
        "-c",
        REPORT_SCRIPT,
        InputUriPlaceholder("examples"),
        ph_input("summary").uri,
        InputValuePlaceholder("rows"),
        exec_property("threshold"),
        ph_output("report").uri + "/report.json",
        OutputUriPlaceholder("count"),
        InputValuePlaceholder("label"),
        ph_input("summary")[0].property("bins"),
    ],
    inputs={"examples": Examples, "summary": Summary, "rows": Integer},
    outputs={"report": Model, "count": Integer},
    parameters={"threshold": float, "label": str},
)


def mixed(root, n=6, label="ok", name="cc"):
    """Produce -> Score (@component) -> Report (container, under a Cond on Score's accuracy, its
    threshold read from it) -> Double (@component reading the container's value output)."""
    produce = Produce(n=n)
    score = Score(examples=produce.outputs["examples"])
    accuracy = score.outputs["accuracy"].future()[0].value
    with Cond(accuracy > 0.5):
        report = Report(
            examples=produce.outputs["examples"],
            summary=score.outputs["summary"],
            rows=score.outputs["rows"],
            threshold=accuracy,
            label=label,
        )
        double = Double(count=report.outputs["count"])
    return Pipeline(name, str(root), [produce, score, report, double])


STATES = {"Produce": "COMPLETE", "Score": "COMPLETE", "Report": "COMPLETE", "Double": "COMPLETE"}


def _states(result):
    return {cid: s["state"] for cid, s in result["components"].items()}


def _check_outputs(md, name, run_id, n=6):
    report = md.latest_outputs(name, run_id, "Report")
    with open(os.path.join(report["report"].uri, "report.json")) as f:
        assert json.load(f) == {
            "rows": n,
            "threshold": n / 10,
            "label": "ok",
            "bins": 2,
            "hist": [n // 2, n - n // 2],
        }
    count = report["count"]
    assert (
        isinstance(count, Integer) and count.value == 2 * n and count.properties["value"] == 2 * n
    )
    assert md.latest_outputs(name, run_id, "Double")["double"].value == 4 * n
    summary = md.latest_outputs(name, run_id, "Score")["summary"]
    [raw] = md.store.get_artifacts_by_id([summary.id])
    [mlmd_type] = md.store.get_artifact_types_by_id([raw.type_id])
    assert mlmd_type.name == "test_cc.Summary" and set(mlmd_type.properties) == {"bins", "mean"}
    assert raw.properties["bins"].int_value == 2
    [ex] = [
        e
        for e in md.executions_of_run(name, run_id)
        if e.properties["component_id"].string_value == "Report"
    ]
    params = json.loads(ex.custom_properties["parameters"].string_value)
    assert params["container_image"] == IMAGE and params["threshold"] == n / 10
    assert params["container_command"][:2] == ["python3", "-c"]
    assert params["container_command"][3:5] == [
        "InputUriPlaceholder('examples')",
        "input('summary')[0].uri",
    ]


# -- definition ---------------------------------------------------------------------------


def test_the_container_component_class():
    assert issubclass(Report, ContainerComponent) and Report.__name__ == "Report"
    assert Report.__module__ == __name__ and Report.IMAGE == IMAGE
    assert {k: s.type_name for k, s in Report.INPUTS.items()} == {
        "examples": "Examples",
        "summary": "test_cc.Summary",
        "rows": "Integer",
    }
    assert Report.OUTPUTS == {"report": "Model", "count": "Integer"}
    produce = Produce()
    score = Score(examples=produce.outputs["examples"])
    node = Report(
        examples=produce.outputs["examples"],
        summary=score.outputs["summary"],
        rows=score.outputs["rows"],
        threshold=RuntimeParameter("threshold", float, default=0.5),
        label="x",
    )
    assert node.id == "Report" and node.outputs["count"].type_name == "Integer"
    assert node.parameters["container_image"] == IMAGE
    with pytest.raises(
        PipelineDefinitionError, match=r"parameter 'threshold' is Parameter\[float\]"
    ):
        Report(
            examples=produce.outputs["examples"],
            summary=score.outputs["summary"],
            rows=score.outputs["rows"],
            threshold="high",
            label="x",
        )
    with pytest.raises(PipelineDefinitionError, match="missing required parameter 'label'"):
        Report(
            examples=produce.outputs["examples"],
            summary=score.outputs["summary"],
            rows=score.outputs["rows"],
            threshold=0.1,
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"image": None}, "image must be an image name"),
        ({"command": []}, "command must be a non-empty list"),
        ({"command": ["echo", 3]}, "a command's pieces are strings and placeholders"),
        (
            {"command": ["cat", InputUriPlaceholder("nothing")]},
            r"InputUriPlaceholder\('nothing'\) names 'nothing', which is not one of its inputs \(data\)",
        ),
        (
            {"command": ["cat", ph_output("data").uri]},
            "names 'data', which is not one of its outputs",
        ),
        ({"command": ["echo", exec_property("n")]}, "which is not one of its parameters"),
        ({"parameters": {"n": list}}, "parameters are int, float, str or bool"),
        ({"outputs": {"data": Model}}, "'data' names more than one"),
        ({"parameters": {"container_image": str}}, "the name 'container_image' is taken"),
        ({"inputs": {"data": "NoSuchType"}}, "unknown artifact type 'NoSuchType'"),
    ],
)
def test_bad_definitions_name_what_is_wrong(kwargs, message):
    args = {
        "name": "Cat",
        "image": "busybox",
        "command": ["cat", InputUriPlaceholder("data")],
        "inputs": {"data": Examples},
        **kwargs,
    }
    with pytest.raises(PipelineDefinitionError, match=message):
        create_container_component(**args)


def test_render_command_fills_tfx_placeholders(tmp_path):
    Echo = create_container_component(
        name="Echo",
        image="busybox",
        command=[
            "echo",
            InputUriPlaceholder("examples"),
            ph_input("examples")[1].uri,
            ph_input("examples").property("span"),
            InputValuePlaceholder("count"),
            ph_input("count").value,
            InputValuePlaceholder("n"),
            exec_property("flag"),
            ConcatPlaceholder(["--out=", OutputUriPlaceholder("model"), "/m"]),
            "--n=" + exec_property("n") + "!",
            ph_output("total").uri,
        ],
        inputs={"examples": Examples, "count": Integer},
        outputs={"model": Model, "total": Integer},
        parameters={"n": int, "flag": bool},
    )
    count = Integer(uri=str(tmp_path / "count"))
    count.value = 7
    inputs = {
        "examples": [Artifact("Examples", "/e1", 1, {"span": 3}), Artifact("Examples", "/e2", 2)],
        "count": [Artifact("Integer", count.uri, 3)],
    }
    outputs = {"model": Artifact("Model", "/out/model"), "total": Artifact("Integer", "/out/total")}
    node = Echo.__new__(Echo)
    node.id = "echo"
    argv = render_command(node, inputs, outputs, {"n": 5, "flag": True})
    assert argv == [
        "echo",
        "/e1",
        "/e2",
        "3",
        "7",
        "7",
        "5",
        "True",
        "--out=/out/model/m",
        "--n=5!",
        "/out/total/value",  # a value artifact's uri is its value file, as in TFX
    ]


# -- local runners -----------------------------------------------------------------------


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "child_processes"])
def test_a_mixed_pipeline_runs_locally_and_reruns_cached(tmp_path, in_process):
    pipeline = mixed(tmp_path / "root")
    result = LocalDagRunner(in_process=in_process, quiet=True).run(pipeline)
    assert _states(result) == STATES
    _check_outputs(Metadata(pipeline.metadata_path), "cc", result["run_id"])
    again = LocalDagRunner(in_process=in_process, quiet=True).run(mixed(tmp_path / "root"))
    assert _states(again) == {k: "CACHED" for k in STATES}
    # accuracy 0.4: the Cond is false, the container component and what follows are skipped
    low = LocalDagRunner(in_process=in_process, quiet=True).run(mixed(tmp_path / "root", n=4))
    assert _states(low) == {
        "Produce": "COMPLETE",
        "Score": "COMPLETE",
        "Report": "SKIPPED",
        "Double": "SKIPPED",
    }


def test_the_beam_dag_runner_runs_it_too(tmp_path):
    from conveyor.orchestration import BeamDagRunner

    pipeline = mixed(tmp_path / "root")
    result = BeamDagRunner(quiet=True).run(pipeline)
    assert _states(result) == STATES
    _check_outputs(Metadata(pipeline.metadata_path), "cc", result["run_id"])


def test_a_failing_command_fails_the_node_with_the_end_of_its_stderr(tmp_path):
    pipeline = mixed(tmp_path / "root", label="fail")
    with pytest.raises(PipelineRunError) as err:
        LocalDagRunner(in_process=True, quiet=True).run(pipeline)
    message = str(err.value)
    assert "the command exited with status 3" in message
    assert "a line before\nthe command broke on purpose" in message
    md = Metadata(pipeline.metadata_path)
    rows = md.run_status("cc", md.runs("cc")[0]["run_id"])
    assert {r["component_id"]: r["state"] for r in rows}["Report"] == "FAILED"
    assert not [d for d in os.listdir(tmp_path / "root" / "Report" / "count") if d.startswith(".")]


def test_a_missing_program_says_there_is_no_container_engine(tmp_path):
    Missing = create_container_component(
        name="Missing",
        image="registry.test/tool:2",
        command=["no-such-tool-here", OutputUriPlaceholder("out")],
        outputs={"out": Model},
    )
    pipeline = Pipeline("missing", str(tmp_path / "root"), [Missing()])
    with pytest.raises(
        PipelineRunError, match=r"without its image 'registry.test/tool:2'.*no container engine"
    ):
        LocalDagRunner(in_process=True, quiet=True).run(pipeline)


# -- Kubeflow and Airflow -------------------------------------------------------------


def _pipeline_file(tmp_path, name="cc"):
    path = tmp_path / f"{name}_pipeline.py"
    path.write_text(
        "from test_container_components import mixed\n"
        f"pipeline = mixed({str(tmp_path / 'root')!r}, name={name!r})\n"
    )
    return str(path)


def test_kubeflow_runs_the_command_in_its_image_between_conveyors_steps(
    tmp_path, conveyor, monkeypatch
):
    path = _pipeline_file(tmp_path)
    spec_path = tmp_path / "cc.yaml"
    image = ["--image", "registry.test/conveyor:1", "--image-pipeline-path", path]
    spec = compile_kubeflow_spec(conveyor, path, spec_path, *image)
    executors = spec["deploymentSpec"]["executors"]
    container = executors["exec-conveyor-report"]["container"]
    assert container["image"] == IMAGE and "args" not in container
    command = container["command"]
    assert command[:3] == ["python3", "-c", REPORT_SCRIPT]
    assert command[3:] == [
        "{{$.inputs.parameters['conveyor_arg_" + str(i) + "']}}" for i in range(3, 11)
    ]
    prepare = executors["exec-conveyor-report-prepare"]["container"]
    assert prepare["image"] == "registry.test/conveyor:1"
    assert prepare["command"] == ["python"]
    assert prepare["args"][:3] == ["-m", "conveyor.orchestration.container_steps", "prepare"]
    publish = executors["exec-conveyor-report-publish"]["container"]
    assert publish["args"][2] == "publish"

    # run it as Kubeflow's backend would, this venv's python as the images' python
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    ran = run_kubeflow_spec(spec, tmp_path / "kfp1", "job-1")
    assert ran.index("Report: prepare") < ran.index("Report") < ran.index("Report: publish")
    assert ran.index("Report: publish") < ran.index("Double")
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    rows = md.run_status("cc", "job-1")
    assert {r["component_id"]: r["state"] for r in rows} == STATES
    _check_outputs(md, "cc", "job-1")
    # a second run: prepare finds it cached, the command does not run
    ran = run_kubeflow_spec(spec, tmp_path / "kfp2", "job-2")
    assert "Report" not in ran and "Report: done already" in ran
    rows = md.run_status("cc", "job-2")
    assert {r["component_id"]: r["state"] for r in rows} == {k: "CACHED" for k in STATES}


def test_airflow_dag_has_the_container_task(tmp_path, conveyor):
    out = tmp_path / "dags" / "cc.py"
    compile_pipeline(conveyor, "airflow", _pipeline_file(tmp_path), out)
    text = out.read_text()
    assert "('Report', 'Report', ['Produce', 'Score'])," in text
    assert f"'Report': {{'image': {IMAGE!r}, 'command': ['python3', '-c'," in text


@needs_airflow
def test_airflow_runs_the_container_pipeline(tmp_path, conveyor, airflow_home):  # noqa: F811
    dags = tmp_path / "dags"
    compile_pipeline(conveyor, "airflow", _pipeline_file(tmp_path), dags / "cc.py")
    env = _airflow_env(airflow_home, dags)
    script = (
        "import sys\nfrom airflow.models import DagBag\n"
        "dag = DagBag(sys.argv[1], include_examples=False).dags['cc']\n"
        "print(dag.get_task('Report').doc_md)\n"
    )
    doc = subprocess.run(
        [os.path.join(AIRFLOW_BIN, "python"), "-c", script, str(dags)],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    ).stdout  # fmt: skip
    assert f"image `{IMAGE}`" in doc and "command `python3 -c" in doc
    _airflow(env, "dags", "test", "cc", "2024-01-05")
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    run_id = "manual__2024-01-05T00-00-00-00-00"
    assert {r["component_id"]: r["state"] for r in md.run_status("cc", run_id)} == STATES
    _check_outputs(md, "cc", run_id)
