"""Cond: predicates on a producer's artifacts, SKIPPED components and what follows them, on every runner."""

import json
import os

import pytest
from orchestration_components import Bless, Join, Produce, Sum
from test_exporters import (
    _airflow,
    _airflow_env,
    airflow_home,  # noqa: F401  (a fixture: an initialised Airflow home)
    compile_kubeflow_spec,
    compile_pipeline,
    needs_airflow,
)
from test_orchestration_cli import component_command

from conveyor.dsl import (
    Artifact,
    Component,
    Cond,
    Pipeline,
    Predicate,
    logical_and,
    logical_not,
    logical_or,
)
from conveyor.dsl.placeholders import ConditionError
from conveyor.orchestration import LocalDagRunner, Metadata, PipelineRunError


class Score(Component):
    """A simple-value output: its ``value`` property, and the ``value`` file in its folder."""

    OUTPUTS = {"score": "ModelEvaluation"}
    PARAMETERS = {"score": 0.5}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["score"].uri, "value"), "w") as f:
            f.write(json.dumps(ctx.parameters["score"]))
        return {"score": {"value": ctx.parameters["score"]}}


def _holds(predicate, artifacts, values=None):
    return predicate.evaluate(lambda channel: artifacts[channel.key], values)[0]


# -- predicates -----------------------------------------------------------------


def test_comparisons_read_the_artifacts_properties():
    bless = Bless()
    blessed = bless.outputs["blessing"].future()[0].custom_property("blessed")
    art = {"blessing": [Artifact("ModelBlessing", "/nowhere", 1, {"blessed": 1, "score": "0.75"})]}
    assert _holds(blessed == 1, art) and not _holds(blessed != 1, art)
    assert _holds(blessed >= 1, art) and _holds(blessed <= 1, art)
    assert not _holds(blessed > 1, art) and not _holds(blessed < 1, art)
    assert _holds(blessed < 2, art) and _holds(blessed > 0, art)
    # A property recorded as text compares as the number (or boolean) it reads as.
    score = bless.outputs["blessing"].future()[0].custom_property("score")
    assert _holds(score > 0.7, art) and _holds(score == 0.75, art) and not _holds(score < 0.5, art)
    as_text = {"blessing": [Artifact("ModelBlessing", "/nowhere", 1, {"blessed": "1"})]}
    assert _holds(blessed == 1, as_text) and _holds(blessed == True, as_text)  # noqa: E712
    assert _holds(blessed == "1", art) and not _holds(blessed == "yes please", art)
    # Not set: None, equal to nothing else, not ordered.
    missing = bless.outputs["blessing"].future()[0].custom_property("nope")
    assert not _holds(missing == 1, art) and _holds(missing != 1, art)
    with pytest.raises(ConditionError, match="cannot order None and 1"):
        _holds(missing > 1, art)
    # The text says what is read.
    assert repr(blessed == 1) == (
        "Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1"
    )


def test_logical_combinations_and_their_text():
    bless = Bless()
    blessed = bless.outputs["blessing"].future()[0].custom_property("blessed")
    art = {"blessing": [Artifact("ModelBlessing", "/x", 1, {"blessed": 1})]}
    yes, no = blessed == 1, blessed == 0
    assert _holds(yes & yes, art) and not _holds(yes & no, art)
    assert _holds(yes | no, art) and not _holds(no | no, art)
    assert _holds(~no, art) and not _holds(~yes, art)
    assert _holds(logical_and(yes, yes, ~no), art) and not _holds(logical_and(yes, no), art)
    assert _holds(logical_or(no, no, yes), art) and _holds(logical_not(no), art)
    assert _holds(yes.logical_and(~no), art) and _holds(no.logical_or(yes), art)
    assert not _holds(yes.logical_not(), art)
    assert logical_and(yes, logical_and(yes, no)).operands == (yes, yes, no)  # flattened
    assert repr(yes & ~no) == (
        "(Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1) & "
        "(~(Bless.outputs['blessing'].future()[0].custom_property('blessed') == 0))"
    )
    with pytest.raises(TypeError, match="no truth value"):
        bool(yes)
    with pytest.raises(TypeError, match="no truth value"):
        _ = yes and no
    with pytest.raises(TypeError, match="combines predicates"):
        logical_and(yes, True)


def test_value_index_uri_and_runtime_parameter_operands(tmp_path):
    from conveyor.dsl import RuntimeParameter

    score = Score()
    folder = tmp_path / "score"
    folder.mkdir()
    (folder / "value").write_text("0.25")
    future = score.outputs["score"].future()
    from_file = {"score": [Artifact("ModelEvaluation", str(folder), 1, {})]}
    assert _holds(future[0].value == 0.25, from_file) and _holds(future.value < 0.5, from_file)
    two = {
        "score": [
            Artifact("ModelEvaluation", "/a", 1, {"value": 1}),
            Artifact("ModelEvaluation", "/b", 2, {"value": 2}),
        ]
    }
    assert _holds(future[1].value == 2, two) and _holds(future[-1].uri == "/b", two)
    with pytest.raises(ConditionError, match=r"has 2 artifact\(s\) in this run"):
        _holds(future[2].value == 2, two)
    threshold = RuntimeParameter("threshold", float, default=0.5)
    assert _holds(future[0].value >= threshold, two, {"threshold": 1.0})
    assert not _holds(future[0].value >= threshold, two, {"threshold": 1.5})
    with pytest.raises(TypeError, match="artifact index"):
        future["x"]


def test_components_in_cond_blocks_carry_the_predicates_and_wait_for_their_producers():
    bless, score = Bless(), Score()
    blessed = bless.outputs["blessing"].future()[0].custom_property("blessed") == 1
    good = score.outputs["score"].future()[0].value > 0.3
    outside = Produce(id="Outside")
    with Cond(blessed):
        p = Produce()
        with Cond(good):
            s = Sum(examples=p.outputs["examples"])
        after = Produce(id="After")
    assert (
        outside.conditions == () and p.conditions == (blessed,) and after.conditions == (blessed,)
    )
    assert s.conditions == (blessed, good)  # nested blocks AND together
    assert {u.id for u in p.upstream} == {"Bless"}
    assert {u.id for u in s.upstream} == {"Produce", "Bless", "Score"}
    pipeline = Pipeline("c", "/tmp/unused", [s, after, p, outside, score, bless])
    order = [c.id for c in pipeline.components]
    assert order.index("Bless") < order.index("Produce") < order.index("Sum")
    assert order.index("Score") < order.index("Sum")
    with pytest.raises(Exception, match="'Bless', which is not in the pipeline"):
        Pipeline("c", "/tmp/unused", [p])
    with pytest.raises(TypeError, match="Cond takes a predicate"):
        Cond(True)
    assert isinstance(blessed, Predicate)


# -- runs --------------------------------------------------------------------------


def _gated(root, blessed: bool, name="gated"):
    """Bless -> [Cond blessed == 1: Produce -> Sum (required)] ; Join (Other's Sum; Produce's
    examples optional) ; Other and its Sum outside the block."""
    bless = Bless(blessed=blessed)
    with Cond(bless.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        produce = Produce(n=4)
        total = Sum(examples=produce.outputs["examples"])
    other = Produce(id="Other", n=3)
    other_sum = Sum(id="OtherSum", examples=other.outputs["examples"])
    join = Join(a=other_sum.outputs["statistics"], b=produce.outputs["examples"])
    return Pipeline(name, str(root), [bless, produce, total, other, other_sum, join])


SKIPPED_RUN = {
    "Bless": "COMPLETE",
    "Produce": "SKIPPED",
    "Sum": "SKIPPED",
    "Other": "COMPLETE",
    "OtherSum": "COMPLETE",
    "Join": "COMPLETE",
}


def _check_skipped_run(pipeline, run_id):
    md = Metadata(pipeline.metadata_path)
    summary = md.run_summary(pipeline.name, run_id)
    assert summary["state"] == "COMPLETE"
    assert {r["component_id"]: r["state"] for r in summary["components"]} == SKIPPED_RUN
    rows = {r["component_id"]: r for r in summary["components"]}
    assert rows["Produce"]["reason"] == (
        "skipped: condition false: "
        "Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1 (got 0)"
    )
    assert rows["Sum"]["reason"] == (
        "skipped: its input 'examples' comes from Produce, which was skipped"
    )
    # MLMD has no SKIPPED state: CANCELED there, SKIPPED in our state property; nothing output.
    from ml_metadata.proto import metadata_store_pb2 as pb

    by_id = {
        e.properties["component_id"].string_value: e
        for e in md.executions_of_run(pipeline.name, run_id)
    }
    for cid in ("Produce", "Sum"):
        ex = by_id[cid]
        assert ex.last_known_state == pb.Execution.CANCELED
        assert ex.properties["state"].string_value == "SKIPPED"
        assert ex.custom_properties["skip_reason"].string_value == rows[cid]["reason"]
        assert md.outputs_of_execution(ex.id) == {}
    assert not os.path.exists(os.path.join(pipeline.root, "Produce"))
    # The optional input from the skipped producer is left out; the required one is there.
    assert set(md.inputs_of_execution(by_id["Join"].id)) == {"a"}


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "child_processes"])
def test_local_runner_skips_a_false_condition_and_what_needs_it(tmp_path, in_process, capsys):
    pipeline = _gated(tmp_path / "root", blessed=False)
    result = LocalDagRunner(in_process=in_process).run(pipeline)
    states = {cid: s["state"] for cid, s in result["components"].items()}
    assert states == SKIPPED_RUN and result["failed"] == {}
    assert result["components"]["Produce"]["reason"].startswith("skipped: condition false")
    _check_skipped_run(pipeline, result["run_id"])
    out = capsys.readouterr().out
    assert "Produce: SKIPPED (condition false: " in out
    assert "Sum: SKIPPED (its input 'examples' comes from Produce, which was skipped)" in out
    if not in_process:
        assert "6 done (0 cached, 2 skipped)" in out

    # A true condition: everything runs (Join with both inputs), the rest of the cache reused.
    blessed = _gated(tmp_path / "root", blessed=True)
    again = LocalDagRunner(in_process=in_process, quiet=True).run(blessed)
    states = {cid: s["state"] for cid, s in again["components"].items()}
    assert states == {
        "Bless": "COMPLETE",
        "Produce": "COMPLETE",
        "Sum": "COMPLETE",
        "Other": "CACHED",
        "OtherSum": "CACHED",
        "Join": "COMPLETE",
    }
    md = Metadata(blessed.metadata_path)
    [join] = [
        e
        for e in md.executions_of_run("gated", again["run_id"])
        if e.properties["component_id"].string_value == "Join"
    ]
    assert set(md.inputs_of_execution(join.id)) == {"a", "b"}


def test_a_condition_that_cannot_be_evaluated_fails_the_component(tmp_path):
    score = Score(score=0.5)
    with Cond(score.outputs["score"].future()[3].value > 0.1):
        produce = Produce()
    pipeline = Pipeline("bad", str(tmp_path), [score, produce])
    with pytest.raises(
        PipelineRunError,
        match=r"Produce: cannot evaluate its condition: .*\[3\]: .* has 1 artifact",
    ):
        LocalDagRunner(in_process=True, quiet=True).run(pipeline)


def test_a_simple_value_output_gates_a_component(tmp_path):
    """TFX reads a custom component's output value with ``.future()[0].value``."""
    score = Score(score=0.8)
    with Cond(score.outputs["score"].future()[0].value >= 0.7):
        good = Produce(id="Good")
    with Cond(score.outputs["score"].future()[0].value < 0.7):
        bad = Produce(id="Bad")
    pipeline = Pipeline("values", str(tmp_path), [score, good, bad])
    result = LocalDagRunner(in_process=True, quiet=True).run(pipeline)
    assert {c: s["state"] for c, s in result["components"].items()} == {
        "Score": "COMPLETE",
        "Good": "COMPLETE",
        "Bad": "SKIPPED",
    }


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "child_processes"])
def test_beam_runner_skips_like_the_local_runner(tmp_path, in_process):
    from conveyor.orchestration.beam_runner import BeamDagRunner

    pipeline = _gated(tmp_path / "root", blessed=False)
    result = BeamDagRunner(in_process=in_process, quiet=True).run(pipeline, run_id="b1")
    assert {cid: s["state"] for cid, s in result["components"].items()} == SKIPPED_RUN
    assert result["failed"] == {}
    _check_skipped_run(pipeline, "b1")


def test_run_status_shows_skipped_components_and_why(tmp_path, conveyor):
    path = tmp_path / "gated_pipeline.py"
    path.write_text(
        "from test_conditions import _gated\n"
        f"pipeline = _gated({str(tmp_path / 'root')!r}, blessed=False)\n"
    )
    conveyor("pipeline", "create", "--pipeline-path", str(path))
    plan = conveyor("pipeline", "compile", "--pipeline-path", str(path)).stdout
    blessed = "Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1"
    assert f"Produce              after: Bless  if {blessed}\n" in plan
    assert f"Sum                  after: Produce, Bless  if {blessed}\n" in plan
    created = conveyor("run", "create", "--pipeline-name", "gated", "--workers", "2").stdout
    assert "Produce: SKIPPED (condition false" in created and "2 skipped" in created
    status = conveyor("run", "status", "--pipeline-name", "gated").stdout.splitlines()
    assert status[0].startswith("run ") and status[0].endswith(": COMPLETE")
    rows = {line.split()[0]: line.split(None, 3)[1:] for line in status[1:]}
    assert {cid: row[0] for cid, row in rows.items()} == SKIPPED_RUN
    assert rows["Sum"][2] == "skipped: its input 'examples' comes from Produce, which was skipped"
    listed = conveyor("run", "list", "--pipeline-name", "gated").stdout
    assert "COMPLETE  COMPLETE=4 SKIPPED=2" in listed


def test_component_run_and_check_as_orchestrators_call_them(tmp_path, conveyor):
    path = _gated_file(tmp_path)
    state = tmp_path / "state"

    def component(action, cid, *extra, check=True):
        return component_command(conveyor, action, path, cid, "r1", *extra, check=check)

    component("run", "Bless")
    decided = tmp_path / "decision"
    out = component("check", "Produce", "--decision-file", str(decided)).stdout
    assert out.startswith("Produce: SKIPPED (condition false: ") and decided.read_text() == "false"
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    assert [r["state"] for r in md.run_status("gated", "r1")] == ["COMPLETE", "SKIPPED"]
    skipped = component(
        "run", "Sum", "--skipped-exit-code", "99", "--state-file", str(state), check=False
    )
    assert skipped.returncode == 99 and state.read_text() == "SKIPPED"
    assert '"reason": "skipped: its input' in skipped.stdout
    assert component("run", "Other", "--state-file", str(state)).returncode == 0
    assert state.read_text() == "COMPLETE"
    component("check", "Join", "--decision-file", str(decided))
    assert decided.read_text() == "true"  # its optional input's producer was skipped: it runs
    early = component("check", "Produce", "--run-id", "r2", check=False)  # the last --run-id
    assert early.returncode == 1
    assert "its condition reads Bless.outputs['blessing'], which run 'r2' has not produced" in (
        early.stderr
    )


# -- Kubeflow: the spec carries the condition, and runs as Kubeflow would run it ----------


def _kfp_fill(arg: str, values: dict, outputs: dict, workdir) -> str:
    """One container argument with Kubeflow's placeholders filled."""
    import re

    if arg.startswith('{"Concat"'):
        return "".join(_kfp_fill(a, values, outputs, workdir) for a in json.loads(arg)["Concat"])
    m = re.fullmatch(r"\{\{\$\.inputs\.parameters\['(.+?)'\]\}\}", arg)
    if m:
        value = values[m.group(1)]
        return value if isinstance(value, str) else json.dumps(value)
    m = re.fullmatch(r"\{\{\$\.outputs\.parameters\['(.+?)'\]\.output_file\}\}", arg)
    if m:
        outputs[m.group(1)] = str(workdir / f"out-{len(os.listdir(workdir))}")
        open(outputs[m.group(1)], "w").close()
        return outputs[m.group(1)]
    return arg


def _kfp_condition(condition: str, values: dict) -> bool:
    import re

    m = re.fullmatch(r"(!\()?inputs\.parameter_values\['(.+?)'\] == '(.*?)'\)?", condition)
    assert m, condition
    return (values[m.group(2)] == m.group(3)) != bool(m.group(1))


def _kfp_run_dag(spec, dag, inputs, workdir, job_id, ran):
    """Runs a (sub-)DAG of a compiled spec as Kubeflow's backend would; returns its outputs."""
    import subprocess

    from conftest import CONVEYOR

    results, pending = {}, dict(dag["tasks"])
    while pending:
        ready = [
            n for n, t in pending.items() if not set(t.get("dependentTasks", [])) & set(pending)
        ]
        assert ready, pending
        for name in ready:
            task = pending.pop(name)
            values = {}
            for key, src in task.get("inputs", {}).get("parameters", {}).items():
                if "componentInputParameter" in src:
                    values[key] = inputs[src["componentInputParameter"]]
                elif "taskOutputParameter" in src:
                    p = src["taskOutputParameter"]
                    values[key] = results[p["producerTask"]][p["outputParameterKey"]]
                else:
                    constant = src["runtimeValue"]["constant"]
                    values[key] = job_id if constant == "{{$.pipeline_job_uuid}}" else constant
            condition = task.get("triggerPolicy", {}).get("condition")
            if condition and not _kfp_condition(condition, values):
                results[name] = None
                continue
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                results[name] = _kfp_run_dag(spec, component["dag"], values, workdir, job_id, ran)
                continue
            executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
            outputs = {}
            argv = [
                _kfp_fill(a, values, outputs, workdir)
                for a in executor["container"]["command"] + executor["container"].get("args", [])
            ]
            argv[0] = CONVEYOR if argv[0] == "conveyor" else argv[0]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-2000:])
            ran.append(task["taskInfo"]["name"])
            results[name] = {k: open(path).read() for k, path in outputs.items()}
    out = {}
    for key, src in dag.get("outputs", {}).get("parameters", {}).items():
        selectors = src.get("valueFromOneof", {}).get("parameterSelectors") or [
            src["valueFromParameter"]
        ]
        found = [
            results[s["producerSubtask"]][s["outputParameterKey"]]
            for s in selectors
            if results.get(s["producerSubtask"]) is not None
        ]
        assert len(found) == 1, (key, found)
        out[key] = found[0]
    return out


def run_kubeflow_spec(spec, workdir, job_id: str, parameters: dict | None = None) -> list[str]:
    """Runs every task of a compiled spec on this machine, in Kubeflow's order and with its
    conditions, placeholders filled as its backend fills them; returns the tasks run, by name."""
    inputs = {}
    for name, d in spec["root"]["inputDefinitions"]["parameters"].items():
        value = (parameters or {}).get(name, d.get("defaultValue"))
        inputs[name] = int(value) if d["parameterType"] == "NUMBER_INTEGER" else value
    ran: list[str] = []
    workdir.mkdir(parents=True, exist_ok=True)
    _kfp_run_dag(spec, spec["root"]["dag"], inputs, workdir, job_id, ran)
    return ran


def _gated_file(tmp_path, name="gated"):
    path = tmp_path / f"{name}_pipeline.py"
    path.write_text(
        "from conveyor.dsl import RuntimeParameter\n"
        "from test_conditions import _gated\n"
        f"pipeline = _gated({str(tmp_path / 'root')!r}, "
        "blessed=RuntimeParameter('bless', bool, default=False), "
        f"name={name!r})\n"
    )
    return str(path)


def test_kubeflow_spec_gates_the_tasks_with_the_condition(tmp_path, conveyor):
    spec_path = tmp_path / "gated.yaml"
    spec = compile_kubeflow_spec(conveyor, _gated_file(tmp_path), spec_path)
    tasks = spec["root"]["dag"]["tasks"]
    names = {t["taskInfo"]["name"]: n for n, t in tasks.items()}
    # Produce and Sum (which needs Produce's output) are decided by a check task each...
    assert {"Produce: check", "Sum: check", "Bless", "Other", "OtherSum", "Join"} <= set(names)
    check = spec["deploymentSpec"]["executors"][
        spec["components"][tasks[names["Produce: check"]]["componentRef"]["name"]]["executorLabel"]
    ]["container"]["args"]
    assert check[:2] == ["component", "check"] and "--decision-file" in check
    assert tasks[names["Produce: check"]]["dependentTasks"] == [names["Bless"]]
    # ... whose output a dsl.If group reads; the group's name is the condition.
    groups = {
        t["taskInfo"]["name"]: t
        for c in spec["components"].values()
        if "dag" in c
        for t in c["dag"]["tasks"].values()
    } | {t["taskInfo"]["name"]: t for t in tasks.values()}
    produce_if = groups[
        "Produce if Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1"
    ]
    assert produce_if["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--conveyor-produce-check-conveyor_decision'] "
        "== 'true'"
    )
    blessed = "Bless.outputs['blessing'].future()[0].custom_property('blessed') == 1"
    sum_if = groups[f"Sum if {blessed} and Produce not skipped"]
    assert sum_if["triggerPolicy"]["condition"].endswith("== 'true'")
    # Join (Produce's examples optional) waits for Produce or its Else task, through dsl.OneOf.
    join = tasks[names["Join"]]
    assert join["inputs"]["parameters"]["conveyor_after_0"]["taskOutputParameter"][
        "outputParameterKey"
    ].endswith("oneof-1")

    ran = run_kubeflow_spec(spec, tmp_path / "kfp", "job-1")
    assert "Produce" not in ran and "Sum" not in ran and "Produce: skipped" in ran
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    summary = md.run_summary("gated", "job-1")
    assert {r["component_id"]: r["state"] for r in summary["components"]} == SKIPPED_RUN
    assert summary["state"] == "COMPLETE"
    # The runtime parameter is the Kubeflow pipeline's: bless=true runs the gated tasks.
    ran = run_kubeflow_spec(spec, tmp_path / "kfp2", "job-2", {"bless": True})
    assert {"Produce", "Sum"} <= set(ran) and "Produce: skipped" not in ran
    states = {r["component_id"]: r["state"] for r in md.run_status("gated", "job-2")}
    assert states["Produce"] == states["Sum"] == states["Join"] == "COMPLETE"
    assert md.runtime_parameters("gated", "job-2") == {"bless": True}


# -- Airflow: a skipped component's task ends "skipped"; a DAG run's conf sets runtime parameters --


def _task_states(env, dag_id: str, airflow_run_id: str) -> dict:
    out = _airflow(env, "tasks", "states-for-dag-run", dag_id, airflow_run_id, "-o", "json")
    rows = json.loads(out[out.index("[") : out.rindex("]") + 1])
    return {r["task_id"]: r["state"] for r in rows}


def test_airflow_dag_file_renders_params_and_skip_handling(tmp_path, conveyor):
    import ast

    out = tmp_path / "dags" / "gated.py"
    compile_pipeline(conveyor, "airflow", _gated_file(tmp_path), out)
    tree = ast.parse(out.read_text())
    table = {
        n.targets[0].id: n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    assert ast.literal_eval(table["RUNTIME_PARAMETERS"]) == {
        "bless": {"type": "boolean", "default": False}
    }
    assert ast.literal_eval(table["SKIPPED_EXIT_CODE"]) == 99
    text = out.read_text()
    assert "skip_on_exit_code=SKIPPED_EXIT_CODE" in text and 'trigger_rule="none_failed"' in text


@needs_airflow
def test_airflow_skips_the_tasks_of_skipped_components(tmp_path, conveyor, airflow_home):  # noqa: F811
    dags = tmp_path / "dags"
    compile_pipeline(conveyor, "airflow", _gated_file(tmp_path), dags / "gated.py")
    env = _airflow_env(airflow_home, dags)
    _airflow(env, "dags", "test", "gated", "2024-02-01")
    airflow_run = "manual__2024-02-01T00:00:00+00:00"
    assert _task_states(env, "gated", airflow_run) == {
        "Bless": "success",
        "Produce": "skipped",
        "Sum": "skipped",
        "Other": "success",
        "OtherSum": "success",
        "Join": "success",
    }
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    run_id = "manual__2024-02-01T00-00-00-00-00"
    summary = md.run_summary("gated", run_id)
    assert {r["component_id"]: r["state"] for r in summary["components"]} == SKIPPED_RUN
    assert summary["state"] == "COMPLETE"

    # The DAG run's conf sets the runtime parameter: blessed, every task runs.
    _airflow(env, "dags", "test", "gated", "2024-02-02", "--conf", json.dumps({"bless": True}))
    states = _task_states(env, "gated", "manual__2024-02-02T00:00:00+00:00")
    assert set(states.values()) == {"success"}
    run_id = "manual__2024-02-02T00-00-00-00-00"
    assert md.runtime_parameters("gated", run_id) == {"bless": True}
    [bless] = [
        e
        for e in md.executions_of_run("gated", run_id)
        if e.properties["component_id"].string_value == "Bless"
    ]
    assert json.loads(bless.custom_properties["parameters"].string_value)["blessed"] is True
