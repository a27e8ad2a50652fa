"""BeamDagRunner: the pipeline as one Beam pipeline; same outputs and metadata as LocalDagRunner."""

import json
import os

import pytest
from orchestration_components import CsvExamples, Join, Produce, Sum

from conveyor.orchestration import LocalDagRunner, Metadata, Pipeline, PipelineRunError
from conveyor.orchestration.beam_runner import BeamDagRunner

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _toy(root, fail=False, extra=()):
    p = Produce(n=4)
    s = Sum(examples=p.outputs["examples"], fail=fail)
    j = Join(a=s.outputs["statistics"], b=p.outputs["examples"])
    return Pipeline("toy", str(root), [j, s, p, *extra])


def _summary(pipeline, run_id):
    """What a run left, independent of where: states, relative layout, sums, lineage."""
    md = Metadata(pipeline.metadata_path)
    status = {s["component_id"]: s for s in md.run_status("toy", run_id)}
    out = {"states": {cid: s["state"] for cid, s in status.items()}}
    for cid in ("Produce", "Sum", "Join"):
        for key, art in md.latest_outputs("toy", run_id, cid).items():
            rel = os.path.relpath(art.uri, pipeline.root)
            assert rel == f"{cid}/{key}/{status[cid]['execution_id']}"
            out[f"{cid}.{key}"] = (art.type_name, art.properties, sorted(os.listdir(art.uri)))
    sums = md.latest_outputs("toy", run_id, "Sum")["statistics"]
    out["sum"] = json.load(open(os.path.join(sums.uri, "sum.json")))
    model = md.latest_outputs("toy", run_id, "Join")["model"]
    out["lineage"] = sorted((cid, a.type_name) for cid, a in md.lineage(model.id))
    return out


def _times(pipeline, run_id):
    md = Metadata(pipeline.metadata_path)
    return {
        e.properties["component_id"].string_value: (
            e.custom_properties["start_time"].double_value,
            e.custom_properties["end_time"].double_value,
        )
        for e in md.executions_of_run(pipeline.name, run_id)
    }


def test_same_outputs_and_metadata_as_local_runner_order_and_cache(tmp_path):
    local = _toy(tmp_path / "local")
    local_run = LocalDagRunner(quiet=True).run(local)
    beam_pipeline = _toy(tmp_path / "beam")
    runner = BeamDagRunner(quiet=True)
    first = runner.run(beam_pipeline)
    assert _summary(beam_pipeline, first["run_id"]) == _summary(local, local_run["run_id"])
    assert set(first["components"]) == {"Produce", "Sum", "Join"} and first["failed"] == {}
    # Dependencies: each component started after the ones it reads finished.
    times = _times(beam_pipeline, first["run_id"])
    assert times["Sum"][0] >= times["Produce"][1]
    assert times["Join"][0] >= max(times["Sum"][1], times["Produce"][1])

    second = runner.run(beam_pipeline)
    assert {s["state"] for s in second["components"].values()} == {"CACHED"}
    assert second["components"]["Sum"]["outputs"] == first["components"]["Sum"]["outputs"]
    third = runner.run(beam_pipeline, enable_cache=False)
    assert {s["state"] for s in third["components"].values()} == {"COMPLETE"}


def test_failure_skips_downstream_and_independent_components_finish(tmp_path):
    other = Produce(id="Other", n=2)
    pipeline = _toy(tmp_path, fail=True, extra=[other])
    with pytest.raises(PipelineRunError) as err:
        BeamDagRunner(quiet=True).run(pipeline, run_id="r1")
    message = str(err.value)
    assert message.startswith("Sum failed: ValueError: the user's component broke on purpose")
    assert "orchestration_components.py" in message and "Sum.log" in message
    states = {
        s["component_id"]: s["state"]
        for s in Metadata(pipeline.metadata_path).run_status("toy", "r1")
    }
    assert states == {
        "Produce": "COMPLETE",
        "Other": "COMPLETE",
        "Sum": "FAILED",
    }  # Join never started
    assert not os.path.exists(os.path.join(pipeline.root, "Join"))
    skipped = json.load(
        open(os.path.join(pipeline.root, ".conveyor", "runs", "r1", "Join.status.json"))
    )
    assert skipped["state"] == "SKIPPED" and "Sum" in skipped["error"]


def test_independent_components_overlap_on_multi_processing_workers(tmp_path):
    markers = tmp_path / "markers"
    a = Produce(id="A", n=2, sleep=1.5, marker_dir=str(markers))
    b = Produce(id="B", n=3, sleep=1.5, marker_dir=str(markers))
    s = Sum(examples=a.outputs["examples"])
    pipeline = Pipeline("overlap", str(tmp_path / "root"), [a, b, s])
    result = BeamDagRunner(MULTI, quiet=True).run(pipeline)
    assert {s["state"] for s in result["components"].values()} == {"COMPLETE"}
    (a_start, a_end), (b_start, b_end) = (json.load(open(markers / cid)) for cid in "AB")
    assert max(a_start, b_start) < min(a_end, b_end), "A and B ran one after the other"


def test_in_process_steps_run_components_with_their_own_beam_pipelines(tmp_path):
    from conveyor.beam_utils.datasets import penguins_csv
    from conveyor.components import StatisticsGen

    gen = CsvExamples(csv=penguins_csv())
    stats = StatisticsGen(examples=gen.outputs["examples"])
    pipeline = Pipeline("penguins", str(tmp_path), [gen, stats])
    result = BeamDagRunner(in_process=True, quiet=True).run(pipeline)
    uri = result["components"]["StatisticsGen"]["outputs"]["statistics"]
    assert {"Split-eval", "Split-train"} <= set(os.listdir(uri))
    assert os.path.getsize(os.path.join(uri, "Split-train", "FeatureStats.pb")) > 0


def test_cli_pipeline_create_engine_beam_and_run_create(tmp_path, conveyor):
    path = tmp_path / "toy_pipeline.py"
    path.write_text(
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        "p = Produce(n=4)\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        f"pipeline = Pipeline('toy', {str(tmp_path / 'root')!r}, [p, s])\n"
    )
    created = conveyor(
        "pipeline", "create", "--engine", "beam", "--pipeline-path", str(path)
    ).stdout
    assert "created pipeline 'toy'" in created
    assert "beam" in conveyor("pipeline", "list").stdout
    first = conveyor("run", "create", "--pipeline-name", "toy").stdout
    assert "on Beam" in first and "Sum: DONE" in first and "2 done (0 cached)" in first
    second = conveyor("run", "create", "--pipeline-name", "toy").stdout
    assert "2 done (2 cached)" in second
    updated = conveyor(
        "pipeline", "update", "--engine", "beam", "--pipeline-path", str(path)
    ).stdout
    assert "updated pipeline 'toy'" in updated
    md = Metadata(str(tmp_path / "root" / "metadata.sqlite"))
    runs = md.runs("toy")
    assert [sorted(r["states"]) for r in runs] == [["CACHED", "CACHED"], ["COMPLETE", "COMPLETE"]]
