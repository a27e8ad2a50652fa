"""A pipeline file written in TFX's style (``from conveyor import tfx``) runs on Conveyor.

``tfx_penguin_data_pipeline.py`` (CsvExampleGen -> StatisticsGen -> SchemaGen
-> ExampleValidator on palmerpenguins, TFX's multi-processing Beam flags) runs
as a script, its ``__main__`` block calling ``tfx.orchestration.LocalDagRunner().run``;
then the same pipeline goes through the Beam DAG runner, the Kubeflow V2 runner
(whose container commands run the components) and the Airflow runner (whose DAG
Airflow loads), each finding the first run's outputs in the cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conveyor.beam_utils.datasets import penguins_csv
from conveyor.orchestration.metadata import Metadata

TESTS = os.path.dirname(os.path.abspath(__file__))
PIPELINE_FILE = os.path.join(TESTS, "tfx_penguin_data_pipeline.py")
AIRFLOW_BIN = os.path.join(os.path.dirname(TESTS), ".venv-airflow", "bin")
IDS = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"]
EDGES = {
    "CsvExampleGen": [],
    "StatisticsGen": ["CsvExampleGen"],
    "SchemaGen": ["StatisticsGen"],
    "ExampleValidator": ["SchemaGen", "StatisticsGen"],
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The pipeline file run as a script, twice; the folders and both runs' output."""
    base = tmp_path_factory.mktemp("tfx_penguins")
    data = base / "data"
    data.mkdir()
    shutil.copy(penguins_csv(), data / "penguins.csv")
    env = dict(os.environ, PENGUIN_DATA=str(data), PENGUIN_HOME=str(base / "tfx"))
    outs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, PIPELINE_FILE],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(base),
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        outs.append(proc.stdout)
    return {
        "base": base,
        "data": data,
        "root": base / "tfx" / "pipelines" / "penguin_data",
        "metadata": base / "tfx" / "metadata" / "penguin_data" / "metadata.db",
        "outs": outs,
    }


def _pipeline(ran, **overrides):
    """The pipeline the file builds, made here with the folders of the script's runs."""
    spec = importlib.util.spec_from_file_location("tfx_penguin_data_pipeline", PIPELINE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = dict(
        pipeline_name="penguin_data",
        pipeline_root=str(ran["root"]),
        data_root=str(ran["data"]),
        metadata_path=str(ran["metadata"]),
        beam_pipeline_args=module._beam_pipeline_args,
    )
    args.update(overrides)
    return module._create_pipeline(**args)


def _states(metadata_path, run_id):
    rows = Metadata(str(metadata_path)).run_status("penguin_data", run_id)
    return {r["component_id"]: r["state"] for r in rows}


def _run_ids(out: str) -> str:
    line = next(x for x in out.splitlines() if "] run " in x)
    return line.split("] run ", 1)[1].split(":", 1)[0]


def test_the_tfx_style_file_runs_on_the_local_dag_runner(ran):
    first, second = ran["outs"]
    for cid in IDS:
        assert f"[penguin_data] {cid}: DONE" in first
    # The store is the one sqlite_metadata_connection_config named, not <root>/metadata.sqlite.
    assert ran["metadata"].exists() and not (ran["root"] / "metadata.sqlite").exists()
    assert _states(ran["metadata"], _run_ids(first)) == dict.fromkeys(IDS, "COMPLETE")
    md = Metadata(str(ran["metadata"]))
    outputs = md.latest_outputs("penguin_data", _run_ids(first), "ExampleValidator")
    anomalies = outputs["anomalies"].uri
    assert sorted(os.listdir(anomalies)) >= ["Split-eval", "Split-train"]
    schema = md.latest_outputs("penguin_data", _run_ids(first), "SchemaGen")["schema"].uri
    text = open(os.path.join(schema, "schema.pbtxt")).read()
    for feature in ("species", "island", "bill_length_mm", "body_mass_g"):
        assert f'name: "{feature}"' in text
    examples = md.latest_outputs("penguin_data", _run_ids(first), "CsvExampleGen")["examples"]
    assert json.loads(examples.properties["split_names"]) == ["train", "eval"]
    # enable_cache=True: the second run reuses every output.
    assert _states(ran["metadata"], _run_ids(second)) == dict.fromkeys(IDS, "CACHED")
    assert "4 done (4 cached)" in second


def test_tfx_beam_args_reach_the_components(ran):
    log_dir = ran["root"] / ".conveyor" / "runs" / _run_ids(ran["outs"][0])
    log = (log_dir / "StatisticsGen.log").read_text()
    # multi_processing with --direct_num_workers=0 runs on Beam's local job service and its
    # worker processes (the in-memory runner logs neither).
    assert "local_job_service" in log


def test_beam_dag_runner_runs_the_tfx_pipeline(ran):
    from conveyor.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    result = BeamDagRunner(beam_orchestrator_args=["--direct_running_mode=in_memory"]).run(
        _pipeline(ran), run_id="beam-1"
    )
    assert sorted(result["components"]) == sorted(IDS)
    assert _states(ran["metadata"], "beam-1") == dict.fromkeys(IDS, "CACHED")


def test_kubeflow_v2_runner_writes_a_spec_whose_commands_run(ran, tmp_path, conveyor):
    from conveyor import tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="registry.test/penguins:1"
        ),
        output_dir=str(tmp_path),
        output_filename="penguin_data.json",
    )
    spec = runner.run(_pipeline(ran))
    assert json.loads((tmp_path / "penguin_data.json").read_text()) == spec
    assert (tmp_path / "penguin_data.pipeline.pkl").exists()
    tasks = spec["root"]["dag"]["tasks"]
    by_component = {t["taskInfo"]["name"]: t for t in tasks.values()}
    assert sorted(by_component) == sorted(IDS)
    name_of = {t["taskInfo"]["name"]: n for n, t in tasks.items()}
    values = {
        "{{$.inputs.parameters['run_id']}}": "kfp-1",
        "{{$.inputs.parameters['pipeline_root']}}": str(ran["root"]),
    }
    for component in IDS:  # in DAG order, as Kubeflow would run them
        task = by_component[component]
        assert sorted(task.get("dependentTasks", [])) == sorted(
            name_of[u] for u in EDGES[component]
        )
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        container = spec["deploymentSpec"]["executors"][executor]["container"]
        assert container["image"] == "registry.test/penguins:1"
        conveyor(*[values.get(a, a) for a in container["args"]])
    assert _states(ran["metadata"], "kfp-1") == dict.fromkeys(IDS, "CACHED")
    # write_out=False: the same spec, returned only (TFX's default file name, nothing written).
    aside = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=runner.config, output_dir=str(tmp_path / "aside")
    )
    assert aside.output_path(_pipeline(ran)) == str(tmp_path / "aside" / "pipeline.json")
    returned = aside.run(_pipeline(ran), write_out=False)
    assert returned["root"] == spec["root"] and not (tmp_path / "aside").exists()
    with pytest.raises(ValueError, match="default_commands: "):
        tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_commands=["python"])


DAGBAG = """
import json, sys
from airflow.models import DagBag
bag = DagBag(sys.argv[1], include_examples=False)
print("RESULT " + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {d: {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
             for d, dag in bag.dags.items()},
    "schedule": {d: str(dag.schedule_interval) for d, dag in bag.dags.items()}}))
"""


def test_airflow_runner_takes_tfx_dag_config_and_airflow_loads_the_dag(ran, tmp_path):
    import datetime

    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    config = AirflowPipelineConfig(
        airflow_dag_config={
            "schedule_interval": "@daily",
            "start_date": datetime.datetime(2024, 1, 1),
            "dag_id": "penguins",
        },
        output=str(tmp_path / "dags" / "penguins.py"),
    )
    written = AirflowDagRunner(config).run(_pipeline(ran))
    assert written == str(tmp_path / "dags" / "penguins.py")  # Airflow is not importable here
    assert (tmp_path / "dags" / "penguins.pipeline.pkl").exists()
    with pytest.raises(ValueError, match=r"airflow_dag_config\['max_active_runs'\]"):
        AirflowPipelineConfig(airflow_dag_config={"max_active_runs": 1})
    if not os.path.exists(os.path.join(AIRFLOW_BIN, "python")):
        pytest.skip("Apache Airflow is not installed in .venv-airflow (make airflow-env)")
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"))
    proc = subprocess.run(
        [os.path.join(AIRFLOW_BIN, "python"), "-c", DAGBAG, str(tmp_path / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert result["errors"] == {}
    assert result["dags"]["penguins"] == {k: sorted(v) for k, v in EDGES.items()}
    assert result["schedule"]["penguins"] == "@daily"


def test_conveyor_pipeline_create_takes_the_tfx_file_and_finds_its_store(
    ran, conveyor, conveyor_env, monkeypatch
):
    """TFX's ``tfx pipeline create`` workflow: the file, whose pipeline appears only in its
    ``__main__`` block, is registered without running; the commands and the UI then read the
    store it names outside the root (no ``<root>/metadata.sqlite`` is made)."""
    from starlette.testclient import TestClient

    from conveyor.orchestration.ui import create_app

    env = dict(conveyor_env, PENGUIN_DATA=str(ran["data"]), PENGUIN_HOME=str(ran["base"] / "tfx"))
    runs_before = len(Metadata(str(ran["metadata"])).runs("penguin_data"))
    created = conveyor("pipeline", "create", "--pipeline-path", PIPELINE_FILE, env=env)
    assert "penguin_data" in created.stdout
    record = json.loads(
        (open(os.path.join(env["CONVEYOR_HOME"], "pipelines", "penguin_data.json"))).read()
    )
    assert record["root"] == str(ran["root"])
    assert record["metadata"] == {"sqlite": str(ran["metadata"]), "from": "pipeline"}
    assert len(Metadata(str(ran["metadata"])).runs("penguin_data")) == runs_before
    first, second = (_run_ids(out) for out in ran["outs"])
    listed = conveyor("run", "list", "--pipeline-name", "penguin_data", env=env).stdout
    assert first in listed and second in listed
    status = conveyor(
        "run", "status", "--pipeline-name", "penguin_data", "--run-id", first, env=env
    ).stdout
    assert all(f"{cid}" in status for cid in IDS) and "COMPLETE" in status
    # A run started by name: every component from the cache, in the same store.
    out = conveyor("run", "create", "--pipeline-name", "penguin_data", env=env).stdout
    named = out.rsplit("run ", 1)[1].split()[0]
    assert _states(ran["metadata"], named) == dict.fromkeys(IDS, "CACHED")
    # Loaded in another environment the file names another store: refused, not run there.
    moved = dict(env, PENGUIN_HOME=str(ran["base"] / "elsewhere"))
    refused = conveyor("run", "create", "--pipeline-name", "penguin_data", env=moved, check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "pipeline update" in refused.stderr and str(ran["metadata"]) in refused.stderr
    assert not (ran["root"] / "metadata.sqlite").exists()
    monkeypatch.setenv("CONVEYOR_HOME", env["CONVEYOR_HOME"])
    client = TestClient(create_app(csrf="t"))
    runs = {r["run_id"] for r in client.get("/api/pipelines/penguin_data/runs").json()["runs"]}
    assert {first, second, named} <= runs
