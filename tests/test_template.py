"""The flights template end to end on a sample, through the command line: two monthly spans.

Run 1 reads month 1 (the first span); run 2, after month 2 arrives, reads it,
trains on both months (the SpanRangeStrategy resolver), and compares its model
with run 1's when run 1's was blessed (the LatestBlessedModelStrategy
resolver). A blessed model is pushed to ``<root>/serving_model/<version>``; an
unblessed one leaves the Pusher SKIPPED under its Cond.
"""

import glob
import gzip
import json
import os

from conveyor.orchestration import Metadata
from conveyor.orchestration.demo import months_to_run, print_summary, run_summary

COMPONENTS = (
    "ExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "span_range_resolver",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "InfraValidator",
    "Pusher",
    "BulkInferrer",
)


def _one(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def _count_prediction_logs(folder) -> int:
    n = 0
    for path in glob.glob(os.path.join(folder, "prediction_logs-*.gz")):
        with gzip.open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            pos += 12 + int.from_bytes(data[pos : pos + 8], "little") + 4
            n += 1
    return n


def _check_run(md, root, run_id, span, blessed_before):
    """What one run of the loop must have recorded; returns (model, blessed, pushed version)."""
    states = {r["component_id"]: r["state"] for r in md.run_status("flights", run_id)}
    out = {cid: md.latest_output_lists("flights", run_id, cid) or {} for cid in states}
    [examples] = out["ExampleGen"]["examples"]
    assert examples.properties["span"] == span
    # Transform reads the latest two spans there are.
    resolved = out["span_range_resolver"]["examples"]
    assert [a.properties["span"] for a in resolved] == list(range(max(1, span - 1), span + 1))
    assert resolved[-1].id == examples.id
    [model] = out["Trainer"]["model"]
    assert os.path.exists(os.path.join(model.uri, "Format-Serving", "saved_model.pb"))
    # The baseline is the last blessed model, if any.
    baseline = out["latest_blessed_model_resolver"].get("model", [])
    assert [m.id for m in baseline] == ([blessed_before.id] if blessed_before else [])
    [blessing] = out["Evaluator"]["blessing"]
    blessed = blessing.properties["blessed"] == 1
    assert os.listdir(blessing.uri) == ["BLESSED" if blessed else "NOT_BLESSED"]
    assert blessing.properties["current_model_id"] == model.id
    assert blessing.properties.get("baseline_model_id") == (
        blessed_before.id if blessed_before else None
    )
    [evaluation] = out["Evaluator"]["evaluation"]
    metrics = json.load(open(os.path.join(evaluation.uri, "metrics.json")))
    assert metrics[0]["slice"] == {} and metrics[0]["metrics"]["example_count"] > 300
    assert any(m["slice"].get("carrier") == "UA" for m in metrics)
    validation = json.load(open(os.path.join(evaluation.uri, "validation.json")))
    skipped = [s["metric"] for s in validation["skipped_change_thresholds"]]
    assert skipped == ([] if blessed_before else ["auc"])
    [infra] = out["InfraValidator"]["blessing"]
    assert infra.properties["blessed"] == 1, infra.properties
    inferred = out["BulkInferrer"]["inference_result"][0].uri
    if blessed:
        assert states["Pusher"] == "COMPLETE"
        pushed = out["Pusher"]["pushed_model"][0].properties
        assert pushed["pushed"] == 1
        summary = json.load(open(os.path.join(inferred, "inference_summary.json")))
        n = _count_prediction_logs(os.path.join(inferred, "inference_result"))
        assert n == summary["examples_predicted"] > 300
        version = pushed["pushed_version"]
    else:
        assert states["Pusher"] == "SKIPPED" and out["Pusher"] == {}
        assert os.listdir(inferred) == ["SKIPPED_NOT_BLESSED"]
        version = None
    assert all(states[c] == "COMPLETE" for c in COMPONENTS if c != "Pusher"), states
    return model, blessed, version


def test_flights_template_runs_two_spans_end_to_end(tmp_path, conveyor, conveyor_env, capsys):
    root = tmp_path / "root"
    conveyor_env.update(FLIGHTS_ROOT=str(root), FLIGHTS_ROWS="1500", FLIGHTS_EPOCHS="1")
    dest = tmp_path / "flights"
    conveyor("template", "copy", "--model", "flights", "--destination", str(dest))
    assert sorted(os.listdir(dest)) == ["flights_utils.py", "pipeline.py"]
    conveyor("pipeline", "create", "--pipeline-path", str(dest / "pipeline.py"))
    md = Metadata(str(root / "metadata.sqlite"))

    # Run 1: month 1 only; no baseline yet.
    out = conveyor("run", "create", "--pipeline-name", "flights", timeout=900).stdout
    for component in COMPONENTS:
        assert f"{component}: " in out, out
    [run1] = [r["run_id"] for r in md.runs("flights")]
    model1, blessed1, version1 = _check_run(md, root, run1, 1, None)

    # Run 2: month 2 arrives (the pipeline file writes the missing span when loaded).
    conveyor_env["FLIGHTS_SPANS"] = "2"
    conveyor("run", "create", "--pipeline-name", "flights", timeout=900)
    run2 = md.runs("flights")[0]["run_id"]  # newest first
    assert run2 != run1
    assert sorted(os.listdir(root / "data" / "spans")) == ["span-1", "span-2"]
    model2, blessed2, version2 = _check_run(md, root, run2, 2, model1 if blessed1 else None)

    # The push folder holds exactly the blessed models' versions, each a SavedModel.
    serving = root / "serving_model"
    pushed = (
        sorted(n for n in os.listdir(serving) if not n.startswith(".")) if serving.exists() else []
    )
    assert pushed == sorted(v for v in (version1, version2) if v)
    for version in pushed:
        assert os.path.exists(serving / version / "saved_model.pb")

    # Lineage: which examples and which module file produced the model.
    kinds = {(cid, a.type_name) for cid, a in md.lineage(model2.id)}
    assert ("ExampleGen", "Examples") in kinds and ("Transform", "TransformGraph") in kinds
    producer, params = md.producing_execution(model2.id)
    assert producer == "Trainer" and params["module_file"].endswith("flights_utils.py")

    # conveyor run status, and the demo's per-run table over the same store.
    status = conveyor("run", "status", "--pipeline-name", "flights", "--run-id", run2).stdout
    assert status.splitlines()[0] == f"run {run2} of flights: COMPLETE", status
    rows = [run_summary(md, "flights", r) for r in (run1, run2)]
    assert [r["span"] for r in rows] == [1, 2]
    assert [r["blessed"] for r in rows] == [blessed1, blessed2]
    assert [r["pushed_version"] for r in rows] == [version1, version2]
    assert rows[0]["baseline_auc"] is None and 0 < rows[0]["auc"] <= 1
    assert (rows[1]["baseline_auc"] is not None) == blessed1
    capsys.readouterr()
    print_summary(rows)
    header, *lines = [line.split() for line in capsys.readouterr().out.splitlines() if line]
    assert header == ["run", "span", "AUC", "baseline", "blessed", "pushed"]
    assert [line[:2] for line in lines] == [[run1, "1"], [run2, "2"]]


def test_demo_refuses_a_span_count_out_of_range(conveyor, tmp_path):
    for spans in ("0", "13"):
        result = conveyor("demo", "--output", str(tmp_path), "--spans", spans, check=False)
        assert result.returncode == 2 and "--spans must be 1 to 12" in result.stdout


def test_demo_runs_the_months_not_there_yet_and_reruns_the_latest(tmp_path):
    folder = tmp_path / "spans"
    assert months_to_run(str(folder), 3) == ([1, 2, 3], False)  # a first demo run
    (folder / "span-1").mkdir(parents=True)
    (folder / "span-2").mkdir()
    (folder / "notes").mkdir()
    assert months_to_run(str(folder), 3) == ([3], False)  # month 3 arrives
    assert months_to_run(str(folder), 2) == ([2], True)  # a second run: the latest again
    (folder / "span-5").mkdir()  # ExampleGen reads span 5 whatever month is added below it
    assert months_to_run(str(folder), 3) == ([5], True)
