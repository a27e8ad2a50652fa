"""The flights template end to end on a small sample, through the command line."""

import glob
import gzip
import json
import os

from conveyor.orchestration import Metadata


def _one(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_flights_template_runs_end_to_end(tmp_path, conveyor, conveyor_env):
    conveyor_env.update(
        FLIGHTS_ROOT=str(tmp_path / "root"), FLIGHTS_ROWS="4000", FLIGHTS_EPOCHS="1"
    )
    dest = tmp_path / "flights"
    conveyor("template", "copy", "--model", "flights", "--destination", str(dest))
    assert sorted(os.listdir(dest)) == ["flights_utils.py", "pipeline.py"]
    conveyor("pipeline", "create", "--pipeline-path", str(dest / "pipeline.py"))
    # The whole pipeline, training included, in one command.
    out = conveyor("run", "create", "--pipeline-name", "flights", timeout=900).stdout
    for component in (
        "ExampleGen",
        "StatisticsGen",
        "SchemaGen",
        "ExampleValidator",
        "Transform",
        "Trainer",
        "Evaluator",
        "BulkInferrer",
    ):
        assert f"{component}: DONE" in out, out

    root = tmp_path / "root"
    stats = _one(f"{root}/StatisticsGen/statistics/*/Split-train/FeatureStats.pb")
    assert os.path.getsize(stats) > 0
    assert "feature {" in open(_one(f"{root}/SchemaGen/schema/*/schema.pbtxt")).read()
    assert os.path.exists(_one(f"{root}/ExampleValidator/anomalies/*/Split-eval/SchemaDiff.pb"))
    assert os.path.isdir(_one(f"{root}/Transform/transform_graph/*/transform_fn"))
    assert os.path.exists(_one(f"{root}/Trainer/model/*/Format-Serving/saved_model.pb"))
    metrics = json.load(open(_one(f"{root}/Evaluator/evaluation/*/metrics.json")))
    assert metrics[0]["slice"] == {} and metrics[0]["metrics"]["example_count"] > 1000
    assert any(m["slice"].get("carrier") == "UA" for m in metrics)
    verdict = os.listdir(_one(f"{root}/Evaluator/blessing/*"))
    assert verdict in (["BLESSED"], ["NOT_BLESSED"])
    inferred = _one(f"{root}/BulkInferrer/inference_result/*")
    if verdict == ["BLESSED"]:
        summary = json.load(open(os.path.join(inferred, "inference_summary.json")))
        logs = glob.glob(os.path.join(inferred, "inference_result", "prediction_logs-*.gz"))
        n = 0
        for path in logs:
            with gzip.open(path, "rb") as f:
                data = f.read()
            pos = 0
            while pos < len(data):
                length = int.from_bytes(data[pos : pos + 8], "little")
                pos += 12 + length + 4
                n += 1
        assert n == summary["examples_predicted"] > 1000
    else:
        assert os.listdir(inferred) == ["SKIPPED_NOT_BLESSED"]

    # Lineage: which examples and which module file produced the model.
    md = Metadata(str(root / "metadata.sqlite"))
    [model] = md.artifacts_of_type("Model")
    upstream = md.lineage(model.id)
    kinds = {(cid, a.type_name) for cid, a in upstream}
    assert ("ExampleGen", "Examples") in kinds and ("Transform", "TransformGraph") in kinds
    producer, params = md.producing_execution(model.id)
    assert producer == "Trainer" and params["module_file"].endswith("flights_utils.py")
    # The blessing's properties, TFX Evaluator's (ints stored as ints or as strings).
    [blessing] = md.store.get_artifacts_by_type("ModelBlessing")
    props = {k: getattr(v, v.WhichOneof("value")) for k, v in blessing.custom_properties.items()}
    assert int(props["blessed"]) == (1 if verdict == ["BLESSED"] else 0)
    assert props["current_model"] == model.uri and int(props["current_model_id"]) == model.id
    assert "baseline_model" not in props and "baseline_model_id" not in props

    status = conveyor("run", "status", "--pipeline-name", "flights").stdout
    assert status.splitlines()[0].endswith(": COMPLETE"), status
    assert status.count(" COMPLETE ") == 8, status
