"""The continuous-training loop of test_continuous on the other runners: BeamDagRunner and
``airflow dags test`` run its three runs (noise 0.3, 0.0, 1.0: blessed and pushed, blessed over
run 1's model and pushed, not blessed and the Pusher SKIPPED); the Kubeflow spec carries the
Pusher's condition group and ``noise`` as a pipeline parameter, and kfp loads it.

Every runner is checked by :func:`check_three_runs`, from ML Metadata and the push folder alone.
"""

from __future__ import annotations

import json
import os

from test_conditions import run_kubeflow_spec
from test_continuous import NAME, continuous_pipeline, write_csv
from test_exporters import (
    _airflow,
    _airflow_env,
    airflow_home,  # noqa: F401  (a fixture: an initialised Airflow home)
    needs_airflow,
)

from conveyor.orchestration import Metadata

NOISE = (0.3, 0.0, 1.0)
COMPONENTS = ("CsvExamples", "TrainTiny", "latest_blessed_model_resolver", "Evaluator", "Pusher")
BLESSED = "Evaluator.outputs['blessing'].future()[0].custom_property('blessed') == 1"


def check_three_runs(md: Metadata, run_ids: list[str], serving: str) -> None:
    """Asserts what test_continuous asserts of its three runs, for runs made by any runner."""
    states = [{r["component_id"]: r["state"] for r in md.run_status(NAME, rid)} for rid in run_ids]
    complete = dict.fromkeys(COMPONENTS, "COMPLETE")
    assert states == [
        complete,
        {**complete, "CsvExamples": "CACHED"},
        {**complete, "CsvExamples": "CACHED", "Pusher": "SKIPPED"},
    ]
    [pusher3] = [r for r in md.run_status(NAME, run_ids[2]) if r["component_id"] == "Pusher"]
    assert pusher3["reason"].startswith("skipped: condition false"), pusher3
    assert [md.runtime_parameters(NAME, rid) for rid in run_ids] == [{"noise": n} for n in NOISE]

    out = [{c: md.latest_outputs(NAME, rid, c) or {} for c in COMPONENTS} for rid in run_ids]
    models = [o["TrainTiny"]["model"] for o in out]
    assert [m.properties["noise"] for m in models] == list(NOISE)
    assert len({m.id for m in models}) == 3
    # The baseline: nothing, then run 1's model, then run 2's (the latest blessed one).
    baseline_ids = [None, models[0].id, models[1].id]
    resolved = [o["latest_blessed_model_resolver"].get("model") for o in out]
    assert [m.id if m else None for m in resolved] == baseline_ids
    blessings = [o["Evaluator"]["blessing"].properties for o in out]
    assert [b["blessed"] for b in blessings] == [1, 1, 0]
    assert [b["current_model_id"] for b in blessings] == [m.id for m in models]
    assert [b.get("baseline_model_id") for b in blessings] == baseline_ids

    # Runs 1 and 2 pushed, run 3 did not: the push folder holds exactly those two versions.
    assert out[2]["Pusher"] == {}
    pushed = [o["Pusher"]["pushed_model"].properties for o in out[:2]]
    assert [p["pushed"] for p in pushed] == [1, 1]
    versions = sorted((n for n in os.listdir(serving) if not n.startswith(".")), key=int)
    assert versions == [p["pushed_version"] for p in pushed]
    for version in versions:
        assert os.path.isfile(os.path.join(serving, version, "saved_model.pb"))


def _setup(tmp_path):
    """The loop's root, push folder and CSV, and a pipeline file defining it (for the exporters)."""
    root, serving = str(tmp_path / "root"), str(tmp_path / "serving")
    csv = write_csv(tmp_path / "data.csv")
    path = tmp_path / "continuous_pipeline.py"
    path.write_text(
        "from test_continuous import continuous_pipeline\n"
        f"pipeline = continuous_pipeline({root!r}, {csv!r}, {serving!r})\n"
    )
    return root, serving, csv, str(path)


def _compile(conveyor, engine: str, pipeline_path: str, output) -> None:
    """``conveyor pipeline compile --engine ENGINE`` of the pipeline file into ``output``."""
    args = ["--engine", engine, "--pipeline-path", pipeline_path, "--output", str(output)]
    conveyor("pipeline", "compile", *args)


def test_beam_runner_runs_the_continuous_training_loop(tmp_path):
    from conveyor.orchestration.beam_runner import BeamDagRunner

    root, serving, csv, _ = _setup(tmp_path)
    pipeline = continuous_pipeline(root, csv, serving)
    run_ids, returned = ["beam-1", "beam-2", "beam-3"], []
    for run_id, noise in zip(run_ids, NOISE):
        result = BeamDagRunner(in_process=True, quiet=True).run(
            pipeline, run_id=run_id, runtime_parameters={"noise": noise}
        )
        assert result["failed"] == {}  # the skipped Pusher is no failure
        returned.append({c: s["state"] for c, s in result["components"].items()})
    md = Metadata(pipeline.metadata_path)
    assert md.run_summary(NAME, "beam-3")["state"] == "COMPLETE"
    check_three_runs(md, run_ids, serving)
    # What run() returned is what ML Metadata recorded.
    assert returned == [
        {r["component_id"]: r["state"] for r in md.run_status(NAME, rid)} for rid in run_ids
    ]


@needs_airflow
def test_airflow_dags_test_runs_the_continuous_training_loop(tmp_path, conveyor, airflow_home):  # noqa: F811
    _, serving, _, path = _setup(tmp_path)
    dags = tmp_path / "dags"
    _compile(conveyor, "airflow", path, dags / f"{NAME}.py")
    env = _airflow_env(airflow_home, dags)
    run_ids = []
    for day, noise in enumerate(NOISE, start=1):
        date = f"2024-03-0{day}"
        _airflow(env, "dags", "test", NAME, date, "--conf", json.dumps({"noise": noise}))
        run_ids.append(f"manual__{date}T00-00-00-00-00")
    airflow_run = "manual__2024-03-03T00:00:00+00:00"
    out = _airflow(env, "tasks", "states-for-dag-run", NAME, airflow_run, "-o", "json")
    rows = json.loads(out[out.index("[") : out.rindex("]") + 1])
    states = {r["task_id"]: r["state"] for r in rows}
    assert states == {**dict.fromkeys(COMPONENTS, "success"), "Pusher": "skipped"}
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    assert md.run_summary(NAME, run_ids[2])["state"] == "COMPLETE"
    check_three_runs(md, run_ids, serving)


def _kubeflow_spec(tmp_path, conveyor) -> tuple[dict, str, str]:
    """The loop compiled for Kubeflow: the spec, its file and the push folder."""
    import yaml

    _, serving, _, path = _setup(tmp_path)
    spec_path = tmp_path / f"{NAME}.yaml"
    _compile(conveyor, "kubeflow", path, spec_path)
    return yaml.safe_load(spec_path.read_text()), str(spec_path), serving


def test_kubeflow_spec_has_the_pushers_condition_group_and_the_noise_parameter(tmp_path, conveyor):
    from kfp import components

    spec, spec_path, _ = _kubeflow_spec(tmp_path, conveyor)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["noise"] == {
        "parameterType": "NUMBER_DOUBLE",
        "defaultValue": 0.0,
        "isOptional": True,
        "description": "how bad the model is",
    }
    tasks = spec["root"]["dag"]["tasks"]
    names = {t["taskInfo"]["name"]: n for n, t in tasks.items()}
    # The Pusher is decided by a check task after its producers, whose decision a dsl.If reads.
    assert "Pusher: check" in names and "Pusher" not in names
    check = tasks[names["Pusher: check"]]
    assert sorted(check["dependentTasks"]) == sorted(names[c] for c in ("Evaluator", "TrainTiny"))
    group = tasks[names[f"Pusher if {BLESSED}"]]
    assert group["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--conveyor-pusher-check-conveyor_decision'] "
        "== 'true'"
    )
    [inside] = spec["components"][group["componentRef"]["name"]]["dag"]["tasks"].values()
    assert inside["taskInfo"]["name"] == "Pusher"
    # TrainTiny (as every component task) takes noise from the pipeline parameter.
    trainer = tasks[names["TrainTiny"]]["inputs"]["parameters"]
    assert {"componentInputParameter": "noise"} in trainer.values()
    loaded = components.load_component_from_file(spec_path)
    assert loaded.name == NAME and "noise" in loaded.component_spec.inputs


def test_kubeflow_spec_runs_the_continuous_training_loop(tmp_path, conveyor):
    """The spec's tasks run as Kubeflow's backend would run them (test_conditions'
    run_kubeflow_spec), three jobs with noise as the pipeline parameter."""
    spec, _, serving = _kubeflow_spec(tmp_path, conveyor)
    run_ids = ["job-1", "job-2", "job-3"]
    ran = [
        run_kubeflow_spec(spec, tmp_path / "kfp" / job, job, {"noise": noise})
        for job, noise in zip(run_ids, NOISE)
    ]
    assert ["Pusher" in tasks for tasks in ran] == [True, True, False]
    assert "Pusher: check" in ran[2]
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    assert md.run_summary(NAME, "job-3")["state"] == "COMPLETE"
    check_three_runs(md, run_ids, serving)
