"""The evaluation view's ROC and calibration plots (with a baseline), the inference result's
sample of predictions, and a node's Beam args: through the API and on the pages, over a
store with real runs of small components that write the files the Evaluator and
BulkInferrer write."""

from __future__ import annotations

import json
import os
import re

import pytest
from starlette.testclient import TestClient

from conveyor.dsl import Component, Pipeline
from conveyor.orchestration import LocalDagRunner
from conveyor.orchestration.ui import create_app, plots, predictions, views
from conveyor.orchestration.ui.render import render_view

NAME = "views"


def _roc(n: int) -> dict:
    xs = [i / (n - 1) for i in range(n)]
    return {"fpr": xs, "tpr": [min(1.0, 2 * x) for x in xs]}


def _calibration(n: int = 100) -> list[dict]:
    """``n`` buckets of width 1/n: 2 examples each, label mean 0.5, predictions mid-bucket."""
    return [
        {
            "lower_threshold": i / n,
            "upper_threshold": (i + 1) / n,
            "weighted_examples": 2.0,
            "total_weighted_label": 1.0,
            "total_weighted_refined_prediction": 2 * (i + 0.5) / n,
        }
        for i in range(n)
    ]


class Evaluate(Component):
    """Writes what the Evaluator writes, with a baseline: metrics.json, plots.json,
    validation.json (one failed threshold)."""

    OUTPUTS = {"evaluation": "ModelEvaluation"}

    def execute(self, ctx):
        uri = ctx.outputs["evaluation"].uri
        metrics = [
            {
                "slice": {},
                "metrics": {"auc": 0.8, "example_count": 200},
                "baseline_metrics": {"auc": 0.75, "example_count": 200},
                "diff": {"auc": 0.05, "example_count": 0},
            },
            {"slice": {"carrier": "UA"}, "metrics": {"auc": 0.6, "example_count": 50}},
        ]
        plot = {
            "confusion_matrix_at_thresholds": [{"threshold": 0.5}],
            "my_calibration": _calibration(),
            "roc_curve": _roc(1000),
        }
        entries = [
            {"slice": {}, "plots": plot, "baseline_plots": {"roc_curve": _roc(5)}},
            {"slice": {"carrier": "UA"}, "plots": {"roc_curve": _roc(3)}},
            {"slice": {"carrier": "AA"}, "plots": {"confusion_matrix_at_thresholds": []}},
        ]
        validation = {
            "blessed": False,
            "thresholds_checked": 1,
            "failures": [{"metric": "auc", "slice": {"carrier": "UA"}, "value": 0.6}],
            "skipped_change_thresholds": [
                {"metric": "recall", "threshold": {"absolute": 0.1}, "reason": "no baseline model"}
            ],
        }
        for name, data in (
            ("metrics.json", metrics),
            ("plots.json", entries),
            ("validation.json", validation),
        ):
            with open(os.path.join(uri, name), "w") as f:
                json.dump(data, f)


class Infer(Component):
    """Writes what BulkInferrer writes: the summary and PredictionLogs (copied from
    ``logs``, made with TensorFlow Serving's own protos by the fixture)."""

    OUTPUTS = {"inference_result": "InferenceResult"}
    PARAMETERS = {"logs": ""}

    def execute(self, ctx):
        uri = ctx.outputs["inference_result"].uri
        os.makedirs(os.path.join(uri, predictions.PREDICTION_DIR))
        with open(ctx.parameters["logs"], "rb") as f:
            data = f.read()
        target = "prediction_logs-00000-of-00001.gz"
        with open(os.path.join(uri, predictions.PREDICTION_DIR, target), "wb") as f:
            f.write(data)
        with open(os.path.join(uri, "inference_summary.json"), "w") as f:
            json.dump({"examples_in": 12, "examples_predicted": 12}, f)


class TransformLike(Component):
    """Writes what Transform writes in its TransformGraph: the summary, the raw schema
    (``metadata/``) and the transformed one (``transformed_metadata/``)."""

    OUTPUTS = {"transform_graph": "TransformGraph"}

    def execute(self, ctx):
        from tensorflow_metadata.proto.v0 import schema_pb2

        uri = ctx.outputs["transform_graph"].uri
        for folder, names in (("metadata", ["fare"]), ("transformed_metadata", ["fare_xf", "b"])):
            schema = schema_pb2.Schema()
            for n in names:
                schema.feature.add(name=n, type=schema_pb2.FLOAT)
            os.makedirs(os.path.join(uri, folder))
            with open(os.path.join(uri, folder, "schema.pbtxt"), "w") as f:
                f.write(str(schema))
        with open(os.path.join(uri, "transform_summary.json"), "w") as f:
            json.dump({"analyzed": True, "rows": {"train": 8}}, f)


def _prediction_logs() -> list[bytes]:
    """Real serialized PredictionLogs: predict (tensor_content, float_val, string_val,
    int64_val), classify and regress logs."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for i in range(11):
        log = prediction_log_pb2.PredictionLog()
        out = log.predict_log.response.outputs
        out["probability"].CopyFrom(tf.make_tensor_proto(np.array([[0.25 + i / 100]], np.float32)))
        out["logits"].CopyFrom(tf.make_tensor_proto(np.array([[1.5, -2.0]], np.float64)))
        out["label"].dtype = tf.string.as_datatype_enum
        out["label"].string_val.append(b"late" if i % 2 else b"on-time")
        out["rank"].dtype = tf.int64.as_datatype_enum
        out["rank"].int64_val.extend([-i, 7])
        out["score"].dtype = tf.float32.as_datatype_enum
        out["score"].float_val.append(0.5)
        logs.append(log.SerializeToString())
    classify = prediction_log_pb2.PredictionLog()
    c = classify.classify_log.response.result.classifications.add()
    c.classes.add(label="yes", score=0.75)
    c.classes.add(label="no", score=0.25)
    regress = prediction_log_pb2.PredictionLog()
    regress.regress_log.response.result.regressions.add(value=3.5)
    return [classify.SerializeToString(), regress.SerializeToString()] + logs


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from conveyor.beam_utils.tfrecord_io import write_records

    base = tmp_path_factory.mktemp("views")
    logs = base / "logs.gz"
    write_records(str(logs), _prediction_logs())
    root = base / "root"
    # Only Infer gets Beam flags: the launcher records them on its execution, none on the others.
    infer = Infer(logs=str(logs)).with_beam_pipeline_args(["--direct_num_workers=1"])
    pipeline = Pipeline(NAME, str(root), [Evaluate(), infer, TransformLike()])
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="run-1")
    return TestClient(create_app(roots=[str(root)]))


def _artifact(client, component: str, key: str) -> dict:
    run = client.get("/api/runs/run-1").json()
    [c] = [c for c in run["components"] if c["component_id"] == component]
    return client.get(f"/api/artifacts/{c['outputs'][key][0]['id']}").json()


def test_roc_and_calibration_points():
    pts = plots.roc_points(_roc(1000))
    assert len(pts) == plots.ROC_POINTS and pts[0] == [0.0, 0.0] and pts[-1] == [1.0, 1.0]
    assert pts == sorted(pts)
    assert plots.roc_points({"fpr": [0, float("nan")], "tpr": [0, 1]}) == [[0.0, 0.0]]
    assert plots.roc_points("junk") == [] and plots.roc_points({"fpr": 1}) == []
    bins = plots.calibration_points(_calibration())
    assert len(bins) == plots.CALIBRATION_BINS
    assert bins[0] == pytest.approx([0.05, 0.5, 20.0]) and bins[-1][0] == pytest.approx(0.95)
    # an empty bucket is left out; a bucket at 1.0 goes to the last bin
    last = {"lower_threshold": 1.0, "weighted_examples": 1.0, "total_weighted_label": 1.0}
    assert plots.calibration_points([last], 4) == [[1.0, 1.0, 1.0]]


def test_evaluation_api_has_curves_and_baseline(client):
    view = _artifact(client, "Evaluate", "evaluation")["view"]
    overall, ua = view["curves"]  # AA has neither plot
    assert overall["slice"] == "Overall" and ua["slice"] == "carrier=UA"
    assert len(overall["roc"]) == plots.ROC_POINTS and len(overall["baseline_roc"]) == 5
    assert len(overall["calibration"]) == plots.CALIBRATION_BINS  # found under its own name
    assert ua["calibration"] == [] and len(ua["roc"]) == 3
    assert view["slices"][0]["baseline_metrics"]["auc"] == 0.75
    assert view["slices"][0]["diff"]["auc"] == 0.05 and "diff" not in view["slices"][1]


def test_evaluation_page_draws_the_plots(client):
    a = _artifact(client, "Evaluate", "evaluation")
    page = client.get(f"/pipelines/{NAME}/artifacts/{a['id']}").text
    assert (
        page.count('<svg class="plot roc"') == 2
        and page.count('<svg class="plot calibration"') == 1
    )
    assert page.count('<circle class="bin"') == plots.CALIBRATION_BINS
    curve = re.search(r'<polyline class="curve" points="([^"]+)"', page).group(1)
    assert len(curve.split()) == plots.ROC_POINTS
    assert page.count('<polyline class="baseline"') == 1
    assert "<th>auc (baseline)</th><th>auc diff</th>" in page
    assert 'data-v="0.75">0.75</td>' in page and 'data-v="0.05">0.05</td>' in page
    assert "<h2>Validation: NOT BLESSED</h2>" in page
    skipped = re.search(r'<table class="skipped">.*?</table>', page).group(0)
    assert "<td>recall</td>" in skipped and "no baseline model" in skipped
    assert "style=" not in page and "<script>" not in page  # the CSP allows neither


def test_prediction_logs_are_read_without_tensorflow(tmp_path):
    from conveyor.beam_utils.tfrecord_io import write_records

    records = _prediction_logs()
    classify, regress, first = (predictions.decode_log(r) for r in records[:3])
    assert classify == {
        "kind": "classify_log",
        "outputs": {"classes": [["yes", 0.75], ["no", 0.25]]},
    }
    assert regress == {"kind": "regress_log", "outputs": {"value": 3.5}}
    assert first == {
        "kind": "predict_log",
        "outputs": {
            "label": "on-time",
            "logits": [1.5, -2.0],
            "probability": 0.25,
            "rank": [0, 7],
            "score": 0.5,
        },
    }
    assert predictions.decode_log(records[3])["outputs"]["rank"] == [-1, 7]
    with pytest.raises(predictions.WireError):
        predictions.decode_log(b"\x0a\x05ab")  # a length past the end
    (tmp_path / "inference_result").mkdir()
    write_records(str(tmp_path / "inference_result" / "prediction_logs-0.gz"), [b"\x0a\x05ab"])
    view = views.view_of("InferenceResult", str(tmp_path))
    assert "WireError" in view["sample"]["error"] and view["sample"]["predictions"] == []
    assert "could not read the predictions" in render_view(view, NAME, None)


def test_inference_api_and_page_show_a_sample_of_predictions(client):
    a = _artifact(client, "Infer", "inference_result")
    view = a["view"]
    assert view["summary"] == {"examples_in": 12, "examples_predicted": 12}
    assert view["sample"]["file"] == "inference_result/prediction_logs-00000-of-00001.gz"
    rows = view["sample"]["predictions"]
    assert len(rows) == predictions.SAMPLE_PREDICTIONS
    assert [r["kind"] for r in rows[:3]] == ["classify_log", "regress_log", "predict_log"]
    assert rows[3]["outputs"]["label"] == "late" and rows[3]["outputs"]["probability"] == 0.26
    page = client.get(f"/pipelines/{NAME}/artifacts/{a['id']}").text
    table = re.search(r'<table class="sortable predictions">.*?</table>', page).group(0)
    assert table.count("<tr>") == 1 + predictions.SAMPLE_PREDICTIONS
    assert "<td>yes: 0.75, no: 0.25</td>" in table and "<td>1.5, -2</td>" in table
    assert "<h2>First predictions</h2>" in page


def test_node_shows_the_beam_args_recorded_on_its_execution(client):
    run = client.get("/api/runs/run-1").json()
    infer = {c["component_id"]: c for c in run["components"]}["Infer"]
    assert infer["beam_args"] == ["--direct_num_workers=1"]
    page = client.get(f"/pipelines/{NAME}/runs/run-1/nodes/Infer").text
    assert "<h2>Beam args</h2>" in page and "<code>--direct_num_workers=1</code>" in page
    page = client.get(f"/pipelines/{NAME}/runs/run-1/nodes/Evaluate").text
    assert "none recorded for this execution" in page


def test_transform_graph_shows_its_input_and_output_features(client):
    a = _artifact(client, "TransformLike", "transform_graph")
    view = a["view"]
    assert [f["feature"] for f in view["input_features"]] == ["fare"]
    assert [f["feature"] for f in view["output_features"]] == ["fare_xf", "b"]
    assert view["summary"]["rows"] == {"train": 8}
    page = client.get(f"/pipelines/{NAME}/artifacts/{a['id']}").text
    out = re.search(r'<table class="sortable output-features">.*?</table>', page).group(0)
    assert out.count("<tr><td>") == 2 and "<td>fare_xf</td><td>FLOAT</td>" in out
    assert "<h2>Input features</h2>" in page
