"""RuntimeParameter: values given when a run starts, on every runner; checked, cached, recorded."""

import json
import os

import pytest
from orchestration_components import Join, Produce, Sum
from test_conditions import run_kubeflow_spec
from test_exporters import compile_kubeflow_spec
from test_orchestration_cli import component_command

from conveyor.dsl import Pipeline, PipelineDefinitionError, RuntimeParameter, RuntimeParameterError
from conveyor.dsl.runtime import parse_assignments, resolve_runtime_parameters
from conveyor.orchestration import LocalDagRunner, Metadata
from conveyor.orchestration.beam_runner import BeamDagRunner


def _pipeline(root, name="rt"):
    """Produce(n=RuntimeParameter n) -> Sum; Other's n has a default; Join after both."""
    p = Produce(n=RuntimeParameter("n", int, description="how many numbers"))
    s = Sum(examples=p.outputs["examples"])
    other = Produce(id="Other", n=RuntimeParameter("other_n", int, default=2))
    j = Join(a=s.outputs["statistics"], b=other.outputs["examples"])
    return Pipeline(name, str(root), [p, s, other, j])


def _sum(md, name, run_id):
    uri = md.latest_outputs(name, run_id, "Sum")["statistics"].uri
    with open(os.path.join(uri, "sum.json")) as f:
        return json.load(f)


def _execution(md, name, run_id, component_id):
    [ex] = [
        e
        for e in md.executions_of_run(name, run_id)
        if e.properties["component_id"].string_value == component_id
    ]
    return ex


def test_types_values_and_their_errors():
    n = RuntimeParameter("n", int, default=3, description="numbers")
    assert (n.name, n.ptype, n.default, n.description) == ("n", int, 3, "numbers")
    assert n.parse("12") == 12 and n.check("7") == 7 and n.check(5) == 5
    assert RuntimeParameter("x", float, default=1).default == 1.0
    flag = RuntimeParameter("flag", bool)
    assert [flag.parse(t) for t in ("true", "False", "1", "no")] == [True, False, True, False]
    assert RuntimeParameter("s", str).parse(" a b ") == " a b "
    with pytest.raises(
        RuntimeParameterError, match=r"runtime parameter 'n' \(int\): 'abc' is not an int"
    ):
        n.parse("abc")
    with pytest.raises(RuntimeParameterError, match=r"'flag' \(bool\): 'maybe' is not a bool"):
        flag.parse("maybe")
    with pytest.raises(RuntimeParameterError, match=r"'n' \(int\): True is a bool, not a int"):
        n.check(True)
    with pytest.raises(RuntimeParameterError, match="'n' .* 2.5 is a float"):
        RuntimeParameter("n", int, default=2.5)
    with pytest.raises(TypeError, match="ptype must be one of int, float, str, bool"):
        RuntimeParameter("n", list)
    with pytest.raises(ValueError, match="must be a Python identifier"):
        RuntimeParameter("two words", int)
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(RuntimeParameterError, match="expected NAME=VALUE"):
        parse_assignments(["oops"])


def test_resolution_names_what_is_wrong(tmp_path):
    pipeline = _pipeline(tmp_path)
    assert resolve_runtime_parameters(pipeline, {"n": "4"}) == {"n": 4, "other_n": 2}
    assert resolve_runtime_parameters(pipeline, {"n": 4, "other_n": 9}) == {"n": 4, "other_n": 9}
    with pytest.raises(
        RuntimeParameterError, match="runtime parameter 'n' has no value and no default"
    ):
        resolve_runtime_parameters(pipeline, {})
    with pytest.raises(
        RuntimeParameterError,
        match=r"unknown runtime parameter 'nn'; the pipeline's runtime parameters: n, other_n",
    ):
        resolve_runtime_parameters(pipeline, {"n": 1, "nn": 2})
    with pytest.raises(RuntimeParameterError, match=r"'n' \(int\): 'four' is not an int"):
        resolve_runtime_parameters(pipeline, {"n": "four"})
    twice = Pipeline(
        "x",
        str(tmp_path),
        [
            Produce(id="A", n=RuntimeParameter("n", int)),
            Produce(id="B", n=RuntimeParameter("n", float)),
        ],
    )
    with pytest.raises(PipelineDefinitionError, match="runtime parameter 'n' is defined twice"):
        resolve_runtime_parameters(twice, {"n": 1})


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "child_processes"])
def test_local_runner_gives_the_values_caches_by_them_and_records_them(tmp_path, in_process):
    pipeline = _pipeline(tmp_path / "root")
    runner = LocalDagRunner(in_process=in_process, quiet=True)
    md = Metadata(pipeline.metadata_path)

    first = runner.run(pipeline, runtime_parameters={"n": 5})
    assert _sum(md, "rt", first["run_id"]) == sum(range(5))
    assert md.runtime_parameters("rt", first["run_id"]) == {"n": 5, "other_n": 2}
    recorded = json.loads(
        _execution(md, "rt", first["run_id"], "Produce")
        .custom_properties["parameters"]
        .string_value
    )
    assert recorded["n"] == 5  # the value, not the RuntimeParameter
    # The same value: cached. Another value: Produce and what follows run again, Other is cached.
    again = runner.run(pipeline, runtime_parameters={"n": 5})
    assert {s["state"] for s in again["components"].values()} == {"CACHED"}
    other = runner.run(pipeline, runtime_parameters={"n": 6, "other_n": 2})
    states = {cid: s["state"] for cid, s in other["components"].items()}
    assert states == {
        "Produce": "COMPLETE",
        "Sum": "COMPLETE",
        "Other": "CACHED",
        "Join": "COMPLETE",
    }
    assert _sum(md, "rt", other["run_id"]) == sum(range(6))
    keys = {
        _execution(md, "rt", r["run_id"], "Produce").properties["cache_key"].string_value
        for r in (first, other)
    }
    assert len(keys) == 2


def test_errors_come_before_anything_runs(tmp_path):
    pipeline = _pipeline(tmp_path / "root")
    for runner in (LocalDagRunner(quiet=True), LocalDagRunner(in_process=True, quiet=True)):
        with pytest.raises(RuntimeParameterError, match="'n' has no value and no default"):
            runner.run(pipeline)
        with pytest.raises(RuntimeParameterError, match="unknown runtime parameter 'm'"):
            runner.run(pipeline, runtime_parameters={"n": 1, "m": 2})
        with pytest.raises(RuntimeParameterError, match="'x' is not an int"):
            runner.run(pipeline, runtime_parameters={"n": "x"})
    with pytest.raises(RuntimeParameterError, match="'n' has no value and no default"):
        BeamDagRunner(quiet=True).run(pipeline)
    assert not os.path.exists(pipeline.root)  # no run, no store, no folder


def test_beam_runner_gives_the_values(tmp_path):
    pipeline = _pipeline(tmp_path / "root")
    result = BeamDagRunner(quiet=True).run(pipeline, run_id="b1", runtime_parameters={"n": 7})
    assert {s["state"] for s in result["components"].values()} == {"COMPLETE"}
    md = Metadata(pipeline.metadata_path)
    assert _sum(md, "rt", "b1") == sum(range(7))
    assert md.runtime_parameters("rt", "b1") == {"n": 7, "other_n": 2}


def _pipeline_file(tmp_path):
    path = tmp_path / "rt_pipeline.py"
    path.write_text(
        "from test_runtime_parameters import _pipeline\n"
        f"pipeline = _pipeline({str(tmp_path / 'root')!r})\n"
    )
    return str(path)


def _values(*assignments: str) -> list[str]:
    """``--runtime-parameter NAME=VALUE`` for each assignment."""
    return [flag for a in assignments for flag in ("--runtime-parameter", a)]


def test_run_create_takes_runtime_parameters(tmp_path, conveyor):
    conveyor("pipeline", "create", "--pipeline-path", _pipeline_file(tmp_path))
    plan = conveyor("pipeline", "compile", "--pipeline-path", _pipeline_file(tmp_path)).stdout
    assert "runtime parameter n (int, required): how many numbers\n" in plan
    assert "runtime parameter other_n (int, default 2)\n" in plan
    created = conveyor("run", "create", "--pipeline-name", "rt", *_values("n=3", "other_n=4"))
    assert "4 done (0 cached)" in created.stdout
    status = conveyor("run", "status", "--pipeline-name", "rt").stdout
    assert "runtime parameters: n=3, other_n=4" in status
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    [run] = md.runs("rt")
    assert _sum(md, "rt", run["run_id"]) == 3
    for args, message in (
        (["--runtime-parameter", "n=three"], "runtime parameter 'n' (int): 'three' is not an int"),
        (_values("n=1", "nope=1"), "unknown runtime parameter 'nope'"),
        ([], "runtime parameter 'n' has no value and no default"),
        (["--runtime-parameter", "n"], "--runtime-parameter 'n': expected NAME=VALUE"),
    ):
        bad = conveyor("run", "create", "--pipeline-name", "rt", *args, check=False)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    assert len(md.runs("rt")) == 1  # none of them started a run


def test_component_run_takes_runtime_parameters(tmp_path, conveyor):
    """What Airflow's and Kubeflow's tasks run: the values on the command line."""
    path = _pipeline_file(tmp_path)
    out = component_command(conveyor, "run", path, "Produce", "r1", "--runtime-parameter", "n=4")
    assert '"state": "COMPLETE"' in out.stdout
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    assert md.runtime_parameters("rt", "r1") == {"n": 4, "other_n": 2}
    missing = component_command(conveyor, "run", path, "Sum", "r1", check=False)
    assert missing.returncode == 2 and "'n' has no value and no default" in missing.stderr


def test_kubeflow_pipeline_takes_them_as_its_parameters(tmp_path, conveyor):
    spec_path = tmp_path / "rt.yaml"
    spec = compile_kubeflow_spec(conveyor, _pipeline_file(tmp_path), spec_path)
    params = spec["root"]["inputDefinitions"]["parameters"]
    # no default: required
    assert params["n"] == {"parameterType": "NUMBER_INTEGER", "description": "how many numbers"}
    assert params["other_n"]["parameterType"] == "NUMBER_INTEGER"
    assert params["other_n"]["defaultValue"] == 2 and params["other_n"]["isOptional"]
    for task in spec["root"]["dag"]["tasks"].values():
        assert task["inputs"]["parameters"]["n"] == {"componentInputParameter": "n"}
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        args = spec["deploymentSpec"]["executors"][executor]["container"]["args"]
        at = args.index("--runtime-parameter")
        assert json.loads(args[at + 1]) == {"Concat": ["n=", "{{$.inputs.parameters['n']}}"]}
    # Run as Kubeflow would: the values reach the components.
    run_kubeflow_spec(spec, tmp_path / "kfp", "job-7", {"n": 6})
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    assert _sum(md, "rt", "job-7") == sum(range(6))
    assert md.runtime_parameters("rt", "job-7") == {"n": 6, "other_n": 2}
    # Names the Kubeflow pipeline uses itself are refused.
    from conveyor.orchestration.kubeflow import KubeflowDagConfig, KubeflowDagRunner

    clash = Pipeline("c", str(tmp_path), [Produce(n=RuntimeParameter("run_id", int, default=1))])
    with pytest.raises(ValueError, match=r"runtime parameter\(s\) \['run_id'\] clash"):
        KubeflowDagRunner(KubeflowDagConfig(str(tmp_path / "c.yaml"), "p.py")).run(clash)


def test_run_create_for_kubeflow_and_airflow_passes_the_values(tmp_path, conveyor, conveyor_env):
    path = _pipeline_file(tmp_path)
    conveyor("pipeline", "create", "--engine", "kubeflow", "--pipeline-path", path)
    res = conveyor("run", "create", "--pipeline-name", "rt", "--runtime-parameter", "n=3")
    assert "pipeline_root=" in res.stdout and " n=3" in res.stdout
    bad = conveyor(
        "run", "create", "--pipeline-name", "rt", "--runtime-parameter", "n=x", check=False
    )
    assert bad.returncode == 2 and "'x' is not an int" in bad.stderr
    # Airflow: `airflow dags trigger --conf` with the typed values (a stand-in airflow records it).
    conveyor("pipeline", "delete", "--pipeline-name", "rt")
    conveyor_env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    conveyor("pipeline", "create", "--engine", "airflow", "--pipeline-path", path)
    fake = tmp_path / "bin" / "airflow"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "airflow-args"}\n')
    fake.chmod(0o755)
    conveyor_env["PATH"] = f"{fake.parent}{os.pathsep}{conveyor_env['PATH']}"
    conveyor("run", "create", "--pipeline-name", "rt", *_values("n=3", "other_n=5"))
    args = (tmp_path / "airflow-args").read_text().split(" ", 4)
    assert args[:4] == ["dags", "trigger", "rt", "--conf"]
    assert json.loads(args[4]) == {"n": 3, "other_n": 5}
