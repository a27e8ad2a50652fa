"""Acceptance: a penguin-species Keras pipeline written for TFX runs on Conveyor's runners.

``tfx_penguin_pipeline.py`` (``from conveyor import tfx``; module file
``tfx_modules/penguin_acceptance_keras.py``) has CsvExampleGen, StatisticsGen,
SchemaGen, ExampleValidator, a SpanRangeStrategy resolver, Transform, a tiny
Tuner, Trainer (the Tuner's hyperparameters), a LatestBlessedModelStrategy
resolver, the Evaluator on the model's ``transform_features`` signature (label
``species_xf``) against the baseline, InfraValidator, a ``@component`` reading
both blessings, a Pusher under a ``Cond`` on its output and a container
component given that output as a parameter. It runs as a script twice on the
LocalDagRunner (the second run: cache hits for everything before the
Evaluator, the first run's model as the baseline), then through the Beam DAG
runner and ``airflow dags test``, and is compiled for Kubeflow and loaded by kfp.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from test_exporters import (
    AIRFLOW_BIN,
    _airflow,
    _airflow_env,
    airflow_home,  # noqa: F401  (a fixture: an initialised Airflow home)
    needs_airflow,
)

from conveyor.orchestration.metadata import Metadata

TESTS = os.path.dirname(os.path.abspath(__file__))
PIPELINE_FILE = os.path.join(TESTS, "tfx_penguin_pipeline.py")
NAME = "penguin_acceptance"
STEPS = 20
DATA = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"]
TRAINING = ["Transform", "Tuner", "Trainer"]
RESOLVERS = ["span_resolver", "latest_blessed_model_resolver"]
DOWNSTREAM = ["Evaluator", "InfraValidator", "CheckBlessings", "Pusher", "Report"]
IDS = DATA + RESOLVERS + TRAINING + DOWNSTREAM


def _write_penguins(folder) -> None:
    """Every other complete row of palmerpenguins: the species and its four measures."""
    import palmerpenguins

    folder.mkdir(parents=True)
    columns = ["species", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    frame = palmerpenguins.load_penguins()[columns].dropna().iloc[::2]
    frame.to_csv(folder / "penguins.csv", index=False)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The pipeline file run as a script twice: its folders and both runs' output."""
    base = tmp_path_factory.mktemp("tfx_acceptance")
    _write_penguins(base / "data")
    env = dict(
        os.environ,
        PENGUIN_DATA=str(base / "data"),
        PENGUIN_HOME=str(base / "tfx"),
        PENGUIN_STEPS=str(STEPS),
    )
    outs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, PIPELINE_FILE],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(base),
            timeout=1200,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        outs.append(proc.stdout)
    return {
        "base": base,
        "data": base / "data",
        "root": base / "tfx" / "pipelines" / NAME,
        "metadata": base / "tfx" / "metadata" / NAME / "metadata.db",
        "serving": base / "tfx" / "serving_model" / NAME,
        "outs": outs,
    }


def _pipeline(ran):
    """The pipeline the file builds, made here with the folders of the script's runs."""
    spec = importlib.util.spec_from_file_location("tfx_penguin_pipeline", PIPELINE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._create_pipeline(
        pipeline_name=NAME,
        pipeline_root=str(ran["root"]),
        data_root=str(ran["data"]),
        module_file=module._module_file,
        serving_model_dir=str(ran["serving"]),
        metadata_path=str(ran["metadata"]),
        beam_pipeline_args=module._beam_pipeline_args,
        train_steps=STEPS,
    )


def _run_id(out: str) -> str:
    line = next(x for x in out.splitlines() if "] run " in x)
    return line.split("] run ", 1)[1].split(":", 1)[0]


def _states(ran, run_id: str) -> dict:
    rows = Metadata(str(ran["metadata"])).run_status(NAME, run_id)
    return {r["component_id"]: r["state"] for r in rows}


def _outputs(ran, run_id: str, component: str) -> dict:
    return Metadata(str(ran["metadata"])).latest_outputs(NAME, run_id, component)


def test_first_run_trains_evaluates_on_transform_features_and_pushes(ran):
    first = _run_id(ran["outs"][0])
    assert _states(ran, first) == dict.fromkeys(IDS, "COMPLETE")
    # The Tuner's best hyperparameters are what the Trainer read (keras_tuner's config).
    best = _outputs(ran, first, "Tuner")["best_hyperparameters"]
    files = os.listdir(best.uri)
    assert files, best.uri
    config = json.load(open(os.path.join(best.uri, files[0])))
    assert {"learning_rate", "num_layers"} <= set(config["values"])
    # The model has TFX's two signatures; the Evaluator found species_xf through transform_features.
    import tensorflow as tf

    model_uri = _outputs(ran, first, "Trainer")["model"].uri
    serving = os.path.join(model_uri, "Format-Serving")
    loaded = tf.saved_model.load(serving if os.path.isdir(serving) else model_uri)
    assert {"serving_default", "transform_features"} <= set(loaded.signatures)
    blessing = _outputs(ran, first, "Evaluator")["blessing"]
    assert blessing.get_int_custom_property("blessed") == 1
    assert not blessing.has_custom_property("baseline_model")  # no blessed model yet
    evaluation = _outputs(ran, first, "Evaluator")["evaluation"]
    [overall] = json.load(open(os.path.join(evaluation.uri, "metrics.json")))
    assert overall["slice"] == {} and overall["metrics"]["example_count"] > 0
    assert 0.3 <= overall["metrics"]["sparse_categorical_accuracy"] <= 1.0
    validation = json.load(open(os.path.join(evaluation.uri, "validation.json")))
    assert validation["thresholds_checked"] == 1 and validation["failures"] == []
    infra = _outputs(ran, first, "InfraValidator")["blessing"]
    assert infra.get_int_custom_property("blessed") == 1
    # The @component's output gated the Pusher and reached the container component.
    check = _outputs(ran, first, "CheckBlessings")
    assert check["blessed"].value == 1 and check["has_baseline"].value == 0
    pushed = _outputs(ran, first, "Pusher")["pushed_model"]
    assert pushed.get_int_custom_property("pushed") == 1
    assert os.listdir(ran["serving"])
    report = _outputs(ran, first, "Report")["report"]
    assert report.value.startswith("blessed=1 splits=Split-eval Split-train ")


def test_second_run_hits_the_cache_and_resolves_the_baseline(ran):
    first, second = (_run_id(out) for out in ran["outs"])
    states = _states(ran, second)
    assert {c: states[c] for c in DATA + TRAINING} == dict.fromkeys(DATA + TRAINING, "CACHED")
    # The baseline is the first run's blessed model, which is also this run's (cached) model.
    baseline = _outputs(ran, second, "latest_blessed_model_resolver")["model"]
    assert baseline.uri == _outputs(ran, first, "Trainer")["model"].uri
    assert states["Evaluator"] == "COMPLETE"
    blessing = _outputs(ran, second, "Evaluator")["blessing"]
    assert blessing.get_string_custom_property("baseline_model") == baseline.uri
    assert blessing.get_int_custom_property("blessed") == 1  # no regression against itself
    assert _outputs(ran, second, "CheckBlessings")["has_baseline"].value == 1
    assert "(cached)" in ran["outs"][1]


def test_beam_dag_runner_runs_it(ran):
    from conveyor.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    result = BeamDagRunner(beam_orchestrator_args=["--direct_running_mode=in_memory"]).run(
        _pipeline(ran), run_id="beam-1"
    )
    assert sorted(result["components"]) == sorted(IDS)
    states = _states(ran, "beam-1")
    assert {c: states[c] for c in DATA + TRAINING} == dict.fromkeys(DATA + TRAINING, "CACHED")
    assert set(states.values()) <= {"CACHED", "COMPLETE"} and states["Pusher"] != "SKIPPED"


def test_kubeflow_v2_spec_loads_in_kfp(ran, tmp_path):
    from kfp import components

    from conveyor import tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="registry.test/penguins:1"
        ),
        output_dir=str(tmp_path),
        output_filename="penguin_acceptance.json",
    )
    spec = runner.run(_pipeline(ran))
    path = tmp_path / "penguin_acceptance.json"
    assert json.loads(path.read_text()) == spec
    tasks = {}
    for c in spec["components"].values():
        for t in c.get("dag", {}).get("tasks", {}).values():
            tasks[t["taskInfo"]["name"]] = t
    tasks.update({t["taskInfo"]["name"]: t for t in spec["root"]["dag"]["tasks"].values()})
    for component in IDS:
        assert any(name == component or name.startswith(component) for name in tasks), component
    executors = spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {"registry.test/penguins:1", "busybox:1.36"}
    [report] = [
        e["container"] for e in executors.values() if e["container"]["image"] == "busybox:1.36"
    ]
    assert report["command"][:2] == ["sh", "-c"] or report.get("args", [])[:2] == ["sh", "-c"]
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == NAME.replace("_", "-") or loaded.name == NAME


@needs_airflow
def test_airflow_dags_test_runs_it(ran, tmp_path, airflow_home):  # noqa: F811
    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    dags = tmp_path / "dags"
    config = AirflowPipelineConfig(
        airflow_dag_config={
            "schedule_interval": None,
            "start_date": datetime.datetime(2024, 1, 1),
            "dag_id": "penguin_acceptance",
        },
        output=str(dags / "penguin_acceptance.py"),
    )
    AirflowDagRunner(config).run(_pipeline(ran))
    env = _airflow_env(airflow_home, dags)
    _airflow(env, "dags", "test", "penguin_acceptance", "2024-03-01")
    out = _airflow(
        env,
        "tasks",
        "states-for-dag-run",
        "penguin_acceptance",
        "manual__2024-03-01T00:00:00+00:00",
        "-o",
        "json",
    )
    rows = json.loads(out[out.index("[") : out.rindex("]") + 1])
    assert {r["task_id"]: r["state"] for r in rows} == dict.fromkeys(IDS, "success")
    states = _states(ran, "manual__2024-03-01T00-00-00-00-00")
    assert set(states) == set(IDS)
    assert {c: states[c] for c in DATA + TRAINING} == dict.fromkeys(DATA + TRAINING, "CACHED")
    assert os.path.exists(os.path.join(AIRFLOW_BIN, "airflow"))
