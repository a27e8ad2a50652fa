"""Pipelines: DAG checks, ML Metadata lineage, caching, atomic outputs, parallel and concurrent runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from orchestration_components import Join, Produce, Sum

from conveyor.orchestration import (
    LocalDagRunner,
    Metadata,
    Pipeline,
    PipelineDefinitionError,
    PipelineRunError,
)


def _pipeline(root, **kw):
    p = Produce(n=kw.pop("n", 4), module_file=kw.pop("module_file", None))
    s = Sum(examples=p.outputs["examples"], fail=kw.pop("fail", False))
    j = Join(a=s.outputs["statistics"], b=p.outputs["examples"])
    return Pipeline("toy", str(root), [j, s, p], **kw), p, s, j


def test_topological_order_and_definition_errors(tmp_path):
    pipeline, p, s, j = _pipeline(tmp_path)
    assert [c.id for c in pipeline.components] == ["Produce", "Sum", "Join"]
    with pytest.raises(PipelineDefinitionError, match="'Produce', which is not in the pipeline"):
        Pipeline("x", str(tmp_path), [s])
    with pytest.raises(
        PipelineDefinitionError,
        match="expects ExampleStatistics, but Produce.outputs\\['examples'\\] is Examples",
    ):
        Join(a=p.outputs["examples"])
    with pytest.raises(PipelineDefinitionError, match="missing required input 'examples'"):
        Sum()
    with pytest.raises(PipelineDefinitionError, match="duplicate component id"):
        Pipeline("x", str(tmp_path), [Produce(), Produce()])
    a, b = Produce(id="a"), Produce(id="b")
    a.add_upstream(b)
    b.add_upstream(a)
    with pytest.raises(PipelineDefinitionError, match="cycle"):
        Pipeline("x", str(tmp_path), [a, b])
    with pytest.raises(PipelineDefinitionError, match="unknown argument 'nope'"):
        Produce(nope=1)


def test_run_records_lineage_and_layout(tmp_path):
    pipeline, *_ = _pipeline(tmp_path)
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)
    status = {s["component_id"]: s for s in md.run_status("toy", result["run_id"])}
    assert {s["state"] for s in status.values()} == {"COMPLETE"}
    sums = md.latest_outputs("toy", result["run_id"], "Sum")["statistics"]
    # <root>/<component_id>/<output_key>/<execution_id>/
    assert sums.uri == f"{pipeline.root}/Sum/statistics/{status['Sum']['execution_id']}"
    assert json.load(open(os.path.join(sums.uri, "sum.json"))) == 6
    model = md.latest_outputs("toy", result["run_id"], "Join")["model"]
    upstream = {(cid, a.type_name) for cid, a in md.lineage(model.id)}
    assert upstream == {("Sum", "ExampleStatistics"), ("Produce", "Examples")}
    examples = md.latest_outputs("toy", result["run_id"], "Produce")["examples"]
    assert examples.properties["split_names"] == '["train"]'


def test_cache_hit_and_miss_on_module_file_change(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("X = 1\n")
    pipeline, *_ = _pipeline(tmp_path / "root", module_file=str(module))
    runner = LocalDagRunner(quiet=True)
    first = runner.run(pipeline)
    second = runner.run(pipeline)
    assert {s["state"] for s in second["components"].values()} == {"CACHED"}
    assert second["components"]["Sum"]["outputs"] == first["components"]["Sum"]["outputs"]
    module.write_text("X = 2\n")
    third = runner.run(pipeline)
    assert {s["state"] for s in third["components"].values()} == {"COMPLETE"}
    fourth = runner.run(pipeline, enable_cache=False)
    assert {s["state"] for s in fourth["components"].values()} == {"COMPLETE"}
    no_cache = Pipeline("toy", pipeline.root, pipeline.components, enable_cache=False)
    assert {s["state"] for s in runner.run(no_cache)["components"].values()} == {"COMPLETE"}


def test_failure_names_component_and_user_error_first(tmp_path):
    pipeline, *_ = _pipeline(tmp_path, fail=True)
    with pytest.raises(PipelineRunError) as err:
        LocalDagRunner(quiet=True).run(pipeline)
    message = str(err.value)
    assert message.startswith("Sum failed: ValueError: the user's component broke on purpose")
    assert "orchestration_components.py" in message
    # Nothing half-written is published: no Sum or Join output directories.
    assert not os.path.exists(os.path.join(pipeline.root, "Join"))
    assert [d for d in os.listdir(os.path.join(pipeline.root, "Sum", "statistics"))] == []


def test_killed_component_publishes_nothing_and_rerun_resumes(tmp_path):
    root = tmp_path / "root"
    script = tmp_path / "pipe.py"
    script.write_text(
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        f"p = Produce(n=5)\n"
        f"s = Sum(examples=p.outputs['examples'])\n"
        f"slow = Produce(id='Slow', sleep=60)\n"
        f"pipeline = Pipeline('kill', {str(root)!r}, [p, s, slow])\n"
    )
    from conveyor.orchestration import load_pipeline
    from conveyor.orchestration.launcher import run_component

    pipeline = load_pipeline(str(script))
    run_component(pipeline, "Produce", "r1", log=None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.orchestration.launcher", str(script), "Slow", "r1"]
    )
    staging = root / "Slow" / "examples"
    deadline = time.time() + 60
    while not (staging.exists() and any(n.endswith(".tmp") for n in os.listdir(staging))):
        assert time.time() < deadline, "Slow never started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [n for n in os.listdir(staging) if not n.startswith(".")] == []  # nothing published
    md = Metadata(pipeline.metadata_path)
    assert md.latest_outputs("kill", "r1", "Slow") is None
    # The next run reuses Produce from the cache and runs the rest.
    fast = Pipeline("kill", str(root), [pipeline.component("Produce"), pipeline.component("Sum")])
    result = LocalDagRunner(quiet=True).run(fast)
    assert result["components"]["Produce"]["state"] == "CACHED"
    assert result["components"]["Sum"]["state"] == "COMPLETE"
    # Nobody watched that launcher: the next run found its execution RUNNING, its process gone,
    # recorded it FAILED and removed its temporary output.
    [slow] = [r for r in md.run_status("kill", "r1") if r["component_id"] == "Slow"]
    assert (
        slow["state"] == "FAILED" and "is gone; found still RUNNING by a later run" in slow["error"]
    )
    assert os.listdir(staging) == []


def test_unusable_root_raises_pipeline_root_error(tmp_path):
    from conveyor.beam_utils.errors import InputError
    from conveyor.orchestration.local_runner import PipelineRootError

    (tmp_path / "file").write_text("not a folder")
    for root, why in (
        (tmp_path / "file", "is a file, not a directory"),
        (tmp_path / "file" / "root", "cannot be created: Not a directory"),
    ):
        pipeline, *_ = _pipeline(root)
        for runner in (LocalDagRunner(quiet=True), LocalDagRunner(quiet=True, in_process=True)):
            with pytest.raises(PipelineRootError, match=f"^pipeline root {root} {why}$") as err:
                runner.run(pipeline)
            assert err.value.path == str(root) and isinstance(err.value, InputError)


def test_independent_components_run_in_parallel(tmp_path):
    marks = tmp_path / "marks"
    a = Produce(id="A", sleep=2.0, marker_dir=str(marks))
    b = Produce(id="B", sleep=2.0, marker_dir=str(marks))
    LocalDagRunner(max_workers=2, quiet=True).run(Pipeline("par", str(tmp_path / "r"), [a, b]))
    (a0, a1), (b0, b1) = (json.load(open(marks / n)) for n in ("A", "B"))
    assert a0 < b1 and b0 < a1  # the two executions overlapped in time


def test_concurrent_runs_share_one_store(tmp_path):
    root = tmp_path / "root"
    script = tmp_path / "pipe.py"
    script.write_text(
        "from orchestration_components import Produce, Sum, Join\n"
        "from conveyor.orchestration import Pipeline, LocalDagRunner\n"
        "import sys\n"
        "p = Produce(n=int(sys.argv[1]))\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        "j = Join(a=s.outputs['statistics'], b=p.outputs['examples'])\n"
        f"pipeline = Pipeline('conc', {str(root)!r}, [p, s, j])\n"
        "if __name__ == '__main__':\n"
        "    LocalDagRunner(quiet=True).run(pipeline, run_id='run' + sys.argv[1])\n"
    )
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in (3, 4, 5)
    ]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    md = Metadata(str(root / "metadata.sqlite"))
    for n in (3, 4, 5):
        states = [s["state"] for s in md.run_status("conc", f"run{n}")]
        assert states == ["COMPLETE"] * 3
        sums = md.latest_outputs("conc", f"run{n}", "Sum")["statistics"]
        assert json.load(open(os.path.join(sums.uri, "sum.json"))) == sum(range(n))
        model = md.latest_outputs("conc", f"run{n}", "Join")["model"]
        assert {cid for cid, _ in md.lineage(model.id)} == {"Sum", "Produce"}


def test_each_execution_records_the_beam_args_its_step_gets(tmp_path):
    """The pipeline's Beam flags, then the component's, as the launcher passes them on."""
    pipeline, p, s, j = _pipeline(tmp_path, beam_pipeline_args=["--direct_num_workers=1"])
    s.with_beam_pipeline_args(["--experiments=use_runner_v2"])
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)
    ids = {r["component_id"]: r["execution_id"] for r in md.run_status("toy", result["run_id"])}
    by_id = {ex.id: ex for ex in md.store.get_executions_by_id(list(ids.values()))}
    recorded = {
        cid: json.loads(by_id[ex_id].custom_properties["beam_args"].string_value)
        for cid, ex_id in ids.items()
    }
    assert recorded["Sum"] == ["--direct_num_workers=1", "--experiments=use_runner_v2"]
    assert recorded["Produce"] == recorded["Join"] == ["--direct_num_workers=1"]


def test_credential_flags_are_neither_recorded_nor_in_the_cache_key(tmp_path):
    """A secret in the Beam flags (an S3 key, a password) never reaches ML Metadata, and a
    rotated one still hits the cache."""
    flags = ["--s3_secret_access_key=hunter2", "--db_password", "pw1", "--direct_num_workers=1"]
    pipeline, *_ = _pipeline(tmp_path, beam_pipeline_args=flags)
    first = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)
    ids = [r["execution_id"] for r in md.run_status("toy", first["run_id"])]
    for ex in md.store.get_executions_by_id(ids):
        recorded = ex.custom_properties["beam_args"].string_value
        assert "hunter2" not in recorded and "pw1" not in recorded
        assert json.loads(recorded) == [
            "--s3_secret_access_key=***",
            "--db_password",
            "***",
            "--direct_num_workers=1",
        ]
    assert "hunter2" not in open(pipeline.metadata_path, "rb").read().decode("latin-1")
    pipeline.beam_pipeline_args = ["--s3_secret_access_key=rotated", "--db_password", "pw2"] + [
        "--direct_num_workers=1"
    ]
    again = LocalDagRunner(quiet=True).run(pipeline)
    assert {s["state"] for s in md.run_status("toy", again["run_id"])} == {"CACHED"}
    run_pickle = tmp_path / ".conveyor" / "runs" / again["run_id"] / "pipeline.pkl"
    assert run_pickle.stat().st_mode & 0o077 == 0  # owner-only: it carries the flags
