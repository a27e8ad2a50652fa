"""A pipeline root on shared storage: s3proxy (an S3-compatible server) on loopback, reached by
Beam's S3 filesystem with the flags ``orchestration/engines/s3proxy.py`` writes.

ExampleGen reads its CSV from the store; every component writes its outputs there through Beam,
the launcher publishes them with a completion marker (S3 has no rename), the cache honours the
marker, and the files are really on the server's disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = "s3://conveyor/root"
DATA = "s3://conveyor/data/spans"


def _use(flags):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(flags))


def _small_pipeline(tmp_path, flags, root=ROOT):
    from conveyor.components import ExampleGen, ExampleValidator, SchemaGen, StatisticsGen
    from conveyor.dsl import Pipeline
    from conveyor.orchestration.metadata import sqlite_config

    gen = ExampleGen(
        input_base=DATA,
        input_config={"splits": [{"name": "single_split", "pattern": "span-{SPAN}/flights.csv"}]},
    )
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    validator = ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"]
    )
    return Pipeline(
        "shared",
        root,
        [gen, stats, schema, validator],
        beam_pipeline_args=flags,
        metadata_connection_config=sqlite_config(str(tmp_path / "metadata.sqlite")),
    )


def _upload_spans(tmp_path, flags):
    import conveyor.orchestration.templates.flights.pipeline as template

    sys.path.insert(0, template.HERE)
    import flights_utils

    _use(flags)
    flights_utils.write_labeled_spans(DATA, 1, 1500)  # straight to the store


def test_small_pipeline_with_its_root_on_s3(s3, tmp_path):
    from apache_beam.io.filesystems import FileSystems

    from conveyor.beam_utils import publish
    from conveyor.orchestration.launcher import run_component
    from conveyor.orchestration.loader import save_pipeline

    _upload_spans(tmp_path, s3["flags"])
    with open(s3["args"]) as f:
        assert [line.strip() for line in f] == s3["flags"]
    pipeline = _small_pipeline(tmp_path, s3["flags"])

    # ExampleGen in a launcher process of its own, as the runners start it: the Beam flags
    # travel in the pipeline and reach FileSystems there.
    pickle = save_pipeline(pipeline, str(tmp_path / "pipeline.pkl"))
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor.orchestration.launcher", pickle, "ExampleGen", "r1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [status_line] = [x for x in proc.stdout.splitlines() if x.startswith("STATUS ")]
    examples = json.loads(status_line[len("STATUS ") :])["outputs"]["examples"]
    assert examples.startswith(f"{ROOT}/ExampleGen/examples/")

    _use(s3["flags"])
    states = {c.id: run_component(pipeline, c.id, "r1", log=None) for c in pipeline.components[1:]}
    assert {k: v["state"] for k, v in states.items()} == {
        "StatisticsGen": "COMPLETE",
        "SchemaGen": "COMPLETE",
        "ExampleValidator": "COMPLETE",
    }
    outputs = [examples] + [u for s in states.values() for u in s["outputs"].values()]
    assert all(u.startswith(ROOT + "/") and publish.is_complete(u) for u in outputs)
    files = publish.list_files(ROOT)
    assert not [f for f in files if ".tmp" in f]  # no staging left on the store
    with FileSystems.open(f"{states['SchemaGen']['outputs']['schema']}/schema.pbtxt") as f:
        schema = f.read().decode()
    assert 'name: "dep_delay"' in schema and 'name: "carrier"' in schema
    stats_uri = states["StatisticsGen"]["outputs"]["statistics"]
    assert {
        f"{stats_uri}/Split-train/FeatureStats.pb",
        f"{stats_uri}/Split-eval/FeatureStats.pb",
    } <= set(files)
    # The server keeps them on its disk: a bucket is a folder there.
    on_disk = os.path.join(s3["data_dir"], "conveyor", "root", "SchemaGen", "schema")
    assert os.listdir(on_disk) and os.path.exists(
        os.path.join(on_disk, os.listdir(on_disk)[0], "schema.pbtxt")
    )

    # A second run takes everything from the cache.
    again = {
        c.id: run_component(pipeline, c.id, "r2", log=None)["state"] for c in pipeline.components
    }
    assert set(again.values()) == {"CACHED"}

    # The statistics lose their marker (a publisher killed mid-copy looks so): not a cache hit,
    # StatisticsGen runs again and publishes a new, complete artifact.
    FileSystems.delete([publish.marker_uri(stats_uri)])
    said = []
    assert run_component(pipeline, "ExampleGen", "r3", log=None)["state"] == "CACHED"
    redone = run_component(pipeline, "StatisticsGen", "r3", log=said.append)
    assert redone["state"] == "COMPLETE" and redone["outputs"]["statistics"] != stats_uri
    assert publish.is_complete(redone["outputs"]["statistics"])
    assert any("not using the cache" in s and stats_uri in s for s in said)


@pytest.fixture
def flink_args(flink_engine):
    """The Flink cluster's flags (started when not up), its SDK workers on the tests' worker
    pool (EXTERNAL): each worker is started by ``sdk_worker_boot`` with the job's options, so
    FileSystems there has the S3 endpoint and keys (a bare pool worker has none: "Must provide
    one of client or options")."""
    return flink_engine.test_args


def test_examples_and_statistics_on_flink_with_the_root_on_s3(s3, tmp_path, flink_args):
    """ExampleGen and StatisticsGen as Flink jobs, their SDK workers on the pool reading and
    writing s3://."""
    from conveyor.beam_utils import publish
    from conveyor.orchestration.launcher import run_component

    _upload_spans(tmp_path, s3["flags"])
    flags = flink_args + s3["flags"]
    assert "--runner=FlinkRunner" in flags
    pipeline = _small_pipeline(tmp_path, flags, root="s3://conveyor/flink-root")
    examples = run_component(pipeline, "ExampleGen", "f1", log=None)["outputs"]["examples"]
    stats = run_component(pipeline, "StatisticsGen", "f1", log=None)["outputs"]["statistics"]
    _use(s3["flags"])
    assert publish.is_complete(examples) and publish.is_complete(stats)
    assert f"{stats}/Split-train/FeatureStats.pb" in publish.list_files(stats)
    # The rejected-rows file is empty: written to S3 only with the fix for apache/beam#21369.
    assert any("/rejected/" in f for f in publish.list_files(examples))


def test_local_dag_runner_runs_a_pipeline_with_its_root_on_s3(s3, tmp_path, monkeypatch):
    """The LocalDagRunner itself: run folders (pickle, logs) local, artifacts on the store."""
    from conveyor.beam_utils import publish
    from conveyor.orchestration import LocalDagRunner, Metadata
    from conveyor.orchestration.local_runner import PipelineRootError, runs_folder

    monkeypatch.setenv("CONVEYOR_RUNS_DIR", str(tmp_path / "runs"))
    _upload_spans(tmp_path, s3["flags"])
    root = ROOT + "-local-runner"
    pipeline = _small_pipeline(tmp_path, s3["flags"], root=root)
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(str(tmp_path / "metadata.sqlite"))
    status = md.run_status("shared", result["run_id"])
    assert {s["state"] for s in status} == {"COMPLETE"}, status
    run_dir = os.path.join(runs_folder(root), result["run_id"])
    assert run_dir.startswith(str(tmp_path / "runs" / "s3" / "conveyor"))
    assert os.path.exists(os.path.join(run_dir, "StatisticsGen.log"))
    assert not os.path.exists("s3:")  # nothing made a local folder named after the scheme
    stats = md.latest_outputs("shared", result["run_id"], "StatisticsGen")["statistics"]
    assert stats.uri.startswith(root + "/") and publish.is_complete(stats.uri)

    again = LocalDagRunner(quiet=True).run(pipeline)
    assert {s["state"] for s in md.run_status("shared", again["run_id"])} == {"CACHED"}

    # SQLite under a remote root cannot work: a clear error before anything runs.
    pipeline.metadata_connection_config = None
    with pytest.raises(PipelineRootError, match="metadata_connection_config"):
        LocalDagRunner(quiet=True).run(pipeline)


def test_a_dead_executions_staging_on_the_store_is_removed_by_the_next_run(s3, tmp_path):
    """An execution whose process died mid-write leaves its staging objects on the store (no
    rename there, nothing is atomic); the next run's reaper removes them, reaching the store
    with the execution's own recorded Beam flags (this process's FileSystems has none)."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from conveyor.beam_utils import publish
    from conveyor.orchestration.metadata import Metadata, process_identity, sqlite_config

    staging = f"{ROOT}/Dead/examples/.41.tmp"
    _use(s3["flags"])
    for name in ("Split-train/data-00000-of-00001.gz", "Split-eval/data-00000-of-00001.gz"):
        with FileSystems.create(f"{staging}/{name}") as f:
            f.write(b"half written")
    assert len(publish.list_files(staging)) == 2
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    md = Metadata(sqlite_config(str(tmp_path / "metadata.sqlite")))
    ex_id = md.start_execution(
        "Dead",
        "shared",
        "r1",
        "Dead",
        {},
        "key",
        process=process_identity() | {"pid": int(gone.stdout)},
        beam_args=s3["flags"],
    )
    md.set_staging(ex_id, [staging])
    FileSystems.set_options(PipelineOptions([]))  # the store's flags are the execution's only
    assert md.reap_lost("shared") == [ex_id]
    [ex] = md.store.get_executions_by_id([ex_id])
    assert ex.properties["state"].string_value == "FAILED"
    _use(s3["flags"])
    assert publish.list_files(staging) == []


def test_the_flights_template_writes_its_spans_on_the_store(s3, tmp_path):
    """Spans written to an ``s3://`` folder as whole objects; a span already there keeps its
    bytes (ExampleGen's cache holds); they equal the spans written to local disk."""
    import conveyor.orchestration.templates.flights.pipeline as template

    sys.path.insert(0, template.HERE)
    import flights_utils
    from apache_beam.io.filesystems import FileSystems

    _use(s3["flags"])
    folder = "s3://conveyor/spans-written"
    paths = flights_utils.write_labeled_spans(folder, 1, 300)
    assert paths == [f"{folder}/span-1/flights.csv"]
    local = flights_utils.write_labeled_spans(str(tmp_path / "spans"), 2, 300)
    with FileSystems.open(paths[0]) as f, open(local[0], "rb") as g:
        assert f.read() == g.read()
    with FileSystems.create(paths[0]) as f:  # the span as an earlier run left it
        f.write(b"kept\n")
    paths = flights_utils.write_labeled_spans(folder, 2, 300)
    with FileSystems.open(paths[0]) as f:
        assert f.read() == b"kept\n"  # not written again
    with FileSystems.open(paths[1]) as f, open(local[1], "rb") as g:
        assert f.read() == g.read()
    with open(local[1]) as f:
        assert len(f.read().splitlines()) == 301  # header and 300 flights of month 2
