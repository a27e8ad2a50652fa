"""The components, whole pipelines and the streaming monitor on a real Flink 1.19 cluster.

The cluster (a JobManager and a TaskManager with 2 slots, Beam's Flink job
server, a Python SDK worker pool) is the one ``make engines`` starts; the
``flink_engine`` fixture starts it when it is not up. Each step runs once in
memory and once on Flink, and the outputs must be equal with the comparisons
of ``tests/test_distributed.py`` (its helpers, imported). That both slots got
work is Flink's own count of the records each subtask read (its REST API); the
SDK workers record their process ids as there, to show the work ran on the pool.
"""

# The fixtures imported from test_distributed are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import sys
import urllib.request

import pytest
from google.protobuf import text_format

# The shared inputs and helpers of the portable-runner tests; the fixtures among them
# (work, flights, flights_parquet, model_dir) are used here by name.
from test_distributed import (  # noqa: F401
    _statistics,
    _stats_noting_workers,
    assert_same_statistics,
    flights,
    flights_parquet,
    model_dir,
    work,
)

from conveyor.beam_utils import datasets
from conveyor.beam_utils.engine_checks import EngineUnavailable, explain_failure
from conveyor.beam_utils.proto_io import read_statistics
from conveyor.dsl.layout import SKIPPED_NOT_BLESSED
from conveyor.orchestration.engines import common, flink

from .same_outputs import (
    check_bulk_inference,
    check_evaluation,
    check_example_gen_and_transform,
    check_validation,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLIGHTS_TEMPLATE = os.path.join(REPO, "orchestration", "templates", "flights", "pipeline.py")


def _rest(path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{flink.REST_PORT}{path}", timeout=5) as r:
        return json.loads(r.read())


def _finished_jobs() -> int:
    return _rest("/overview")["jobs-finished"]


def _records_per_subtask_of_last_job() -> list[list[int]]:
    """For each operator of the last finished Flink job that ran on both slots, the records
    each of its subtasks read: Flink's own count of the work each slot did."""
    finished = [j for j in _rest("/jobs/overview")["jobs"] if j["state"] == "FINISHED"]
    job = max(finished, key=lambda j: j["end-time"])["jid"]
    per_vertex = []
    for vertex in _rest(f"/jobs/{job}")["vertices"]:
        if vertex["parallelism"] == 2:
            subtasks = _rest(f"/jobs/{job}/vertices/{vertex['id']}")["subtasks"]
            per_vertex.append([t["metrics"]["read-records"] for t in subtasks])
    return per_vertex


# ------------------------------------------------------------------ the five steps and ExampleGen


def _flights_in_files(folder, rows: int, files: int) -> str:
    """The first ``rows`` sample flights in ``files`` CSV files; their glob pattern.

    Several files, so that the read is spread over the slots whatever the
    piece size (each file is at least one piece, dealt out by a reshuffle).
    """
    with open(datasets.flights_sample_csv(rows)) as f:
        header, *lines = f.read().splitlines()
    folder.mkdir()
    per = len(lines) // files
    for i in range(files):
        part = lines[i * per : (i + 1) * per if i < files - 1 else len(lines)]
        (folder / f"part-{i:02d}.csv").write_text("\n".join([header, *part]) + "\n")
    return str(folder / "part-*.csv")


def test_statistics_on_flink_equal_in_memory_and_both_slots_work(work, flink_engine):
    src = _flights_in_files(work / "flink_spread_input", 20_000, 16)
    local_pids, local = _stats_noting_workers(src, work / "flink_spread_local", None)
    jobs = _finished_jobs()
    pids, stats = _stats_noting_workers(src, work / "flink_spread", flink_engine.test_args)
    assert _finished_jobs() == jobs + 1  # it ran on the cluster
    assert list(local_pids.values()) == [20_000]
    assert sum(pids.values()) == 20_000
    # The SDK workers are the pool's, not this process. Flink hands each task an SDK
    # environment round robin (--sdk_worker_parallelism=2), so both slots' tasks may share one
    # worker (CI saw all 20,000 rows in one); that both slots did work is Flink's own count:
    # some operator after the reshuffle read records in each of its two subtasks.
    assert pids and os.getpid() not in map(int, pids), pids
    per_subtask = _records_per_subtask_of_last_job()
    assert any(min(counts) > 0 for counts in per_subtask), per_subtask
    assert_same_statistics(stats, local)


def test_validation_with_quarantine_on_flink_equal_in_memory(work, flights, flink_engine):
    check_validation(work, flights, "flink", flink_engine.test_args)


def test_example_gen_and_transform_on_flink_equal_in_memory(work, flink_engine):
    check_example_gen_and_transform(work, "flink", flink_engine.test_args)


def test_evaluation_on_flink_equal_in_memory(work, flights_parquet, model_dir, flink_engine):
    check_evaluation(work, flights_parquet, model_dir, "flink", flink_engine.test_args)


def test_bulk_inference_on_flink_equal_in_memory(work, flights_parquet, model_dir, flink_engine):
    check_bulk_inference(work, flights_parquet, model_dir, "flink", flink_engine.test_args)


# ------------------------------------------------------------------ the args file, LOOPBACK, failures


def test_cli_with_the_args_file_and_loopback(tmp_path, flink_engine):
    from conveyor.orchestration.cli import main

    src = datasets.flights_sample_csv(2_000)
    assert main(["statistics", "--input", src, "--output", str(tmp_path / "local")]) == 0
    # Exactly `conveyor statistics ... -- $(cat .engines/flink.args)`: make engines' own pool.
    with open(common.args_path("flink")) as f:
        args = f.read().split()
    assert "--environment_type=EXTERNAL" in args
    assert main(["statistics", "--input", src, "--output", str(tmp_path / "ext"), "--", *args]) == 0
    assert (
        main(
            [
                "statistics",
                "--input",
                src,
                "--output",
                str(tmp_path / "loop"),
                "--",
                *flink_engine.loopback_args,
            ]
        )
        == 0
    )
    local = read_statistics(str(tmp_path / "local" / "FeatureStats.pb"))
    assert local.datasets[0].num_examples == 2_000
    for name in ("ext", "loop"):
        assert_same_statistics(read_statistics(str(tmp_path / name / "FeatureStats.pb")), local)


def test_worker_pool_that_cannot_import_conveyor_is_a_clear_error(tmp_path, flink_engine):
    # A pool whose interpreter finds no Conveyor (as one installed without it would).
    blocker = tmp_path / "no_conveyor"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoConveyor:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'conveyor' or name.startswith('conveyor.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoConveyor())\n"
    )
    port = common.free_port()
    env = dict(os.environ, PYTHONPATH=str(blocker))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    name = "flink-test-pool-without-conveyor"
    argv = [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}",
    ]
    pid = common.start_process(name, argv, env=env)
    try:
        common.wait_for_port("127.0.0.1", port, 60, name, common.log_path(name), pid)
        args = [
            a
            if not a.startswith("--environment_config=")
            else f"--environment_config=localhost:{port}"
            for a in flink_engine.args
        ]
        with pytest.raises(Exception) as info:
            _statistics(datasets.flights_sample_csv(200), tmp_path / "stats", args)
        explained = explain_failure(info.value, args)
        assert isinstance(explained, EngineUnavailable), str(info.value)[-2000:]
        assert f"the Python SDK worker pool at localhost:{port} cannot import conveyor" in str(
            explained
        )
    finally:
        common.stop_process(name)


# ------------------------------------------------------------------ whole pipelines, the monitor


def _flights_pipeline(root, monkeypatch):
    from conveyor.orchestration.loader import load_pipeline

    monkeypatch.setenv("FLIGHTS_ROOT", str(root))
    monkeypatch.setenv("FLIGHTS_ROWS", "600")
    monkeypatch.setenv("FLIGHTS_EPOCHS", "1")
    monkeypatch.setenv("FLIGHTS_SPANS", "1")
    monkeypatch.syspath_prepend(os.path.dirname(FLIGHTS_TEMPLATE))
    return load_pipeline(FLIGHTS_TEMPLATE)


def _assert_complete(result, pipeline):
    assert result["failed"] == {}, result["failed"]
    states = {cid: s["state"] for cid, s in result["components"].items()}
    assert set(states) == {c.id for c in pipeline.components}
    # A model of 600 rows and one epoch may not be blessed: then the Pusher (under its Cond)
    # is skipped, and the BulkInferrer completes with only its SKIPPED_NOT_BLESSED marker.
    gated = {"Pusher", "BulkInferrer"}
    assert all(states[cid] == "COMPLETE" for cid in set(states) - gated), states
    assert all(states[cid] in ("COMPLETE", "SKIPPED") for cid in gated), states


def test_flights_template_on_the_beam_dag_runner_on_flink(tmp_path, monkeypatch, flink_engine):
    from conveyor.orchestration import BeamDagRunner

    pipeline = _flights_pipeline(tmp_path / "root", monkeypatch)
    jobs = _finished_jobs()
    result = BeamDagRunner(beam_orchestrator_args=flink_engine.test_args, quiet=True).run(pipeline)
    _assert_complete(result, pipeline)
    assert _finished_jobs() == jobs + 1  # the orchestrating pipeline was one Flink job


def test_flights_template_on_the_local_dag_runner_with_components_on_flink(
    tmp_path, monkeypatch, flink_engine
):
    from conveyor.orchestration import LocalDagRunner

    pipeline = _flights_pipeline(tmp_path / "root", monkeypatch)
    pipeline.beam_pipeline_args = list(flink_engine.test_args)
    jobs = _finished_jobs()
    result = LocalDagRunner().run(pipeline)
    _assert_complete(result, pipeline)
    # One Flink job each for the components that run Beam pipelines: ExampleGen,
    # StatisticsGen, Transform, Evaluator, BulkInferrer (ExampleValidator runs none), the
    # BulkInferrer only when the model was blessed: else it writes its marker and no job.
    inference = result["components"]["BulkInferrer"]["outputs"]["inference_result"]
    inferred = os.listdir(inference) != [SKIPPED_NOT_BLESSED]
    assert _finished_jobs() - jobs == 4 + inferred


def test_streaming_monitor_on_flink(tmp_path, capsys, flink_engine):
    import numpy as np
    from test_monitor import (
        WINDOW,
        _baseline,
        _drift_types,
        _schema,
        _window_folders,
        _window_rows,
        _write_csv,
    )

    from conveyor.orchestration.cli import main

    rng = np.random.default_rng(5)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for k in range(3):  # window 2 drifts
        _write_csv(incoming / f"part-{k}.csv", *_window_rows(k, rng, rows=200))
    schema_path = tmp_path / "schema.pbtxt"
    schema_path.write_text(text_format.MessageToString(_schema()))
    baseline_path = tmp_path / "FeatureStats.pb"
    baseline_path.write_bytes(_baseline().SerializeToString())
    out = tmp_path / "out"
    rc = main(
        [
            "monitor",
            "--input",
            str(incoming / "*.csv"),
            "--schema",
            str(schema_path),
            "--baseline-statistics",
            str(baseline_path),
            "--output",
            str(out),
            "--window-seconds",
            str(WINDOW),
            "--timestamp-column",
            "ts",
            "--poll-interval",
            "1",
            "--stop-after",
            "5",
            "--",
            *flink_engine.test_args,
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 1, printed  # the drifting window has ERROR anomalies
    folders = _window_folders(out)
    results = [json.loads((out / f / "result.json").read_text()) for f in folders]
    assert [r["num_examples"] for r in results] == [200, 200, 200]
    assert [bool(_drift_types(r)) for r in results] == [False, False, True]
