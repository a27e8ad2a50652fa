"""Tests of the evaluation component: metrics against direct numpy/sklearn-free
formulas, merging, slicing, config parsing, thresholds and blessing, bad input,
the CLI and the SavedModel path."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pyarrow as pa
import pytest
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.components.evaluation.config import (
    SliceSpec,
    Threshold,
    load_eval_config,
    make_settings,
    settings_from_eval_config,
)
from conveyor.components.evaluation.metrics import MetricsKernel, ModelState
from conveyor.components.evaluation.report import build_report
from conveyor.components.evaluation.slicing import BatchSlicer


def make_batch(**cols) -> pa.RecordBatch:
    arrays = []
    for values in cols.values():
        a = pa.array(values)
        if pa.types.is_string(a.type):
            a = a.cast(pa.large_binary())
        elif pa.types.is_floating(a.type):
            a = a.cast(pa.float32())
        arrays.append(arrow.wrap_scalars(a, a.type))
    return pa.RecordBatch.from_arrays(arrays, names=list(cols))


def binary_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    label = (score + rng.normal(size=n) > 0.3).astype(int)
    p = (1 / (1 + np.exp(-score))).astype(np.float32)
    carrier = rng.choice(["AA", "UA", "DL"], n)
    return make_batch(carrier=list(carrier), label=list(label), p=[float(x) for x in p])


def evaluate_local(settings, batch, pieces=3):
    """Runs the kernel the way the combine does: per-slice chunks, several accumulators, merged."""
    slicer = BatchSlicer(settings, [m.prediction_key for m in settings.models])
    slicer.check_schema(batch.schema)
    kernel = MetricsKernel(settings)
    accs = {}
    step = max(1, batch.num_rows // pieces)
    partials = []
    for start in range(0, batch.num_rows, step):
        part = {}
        for key, chunk in slicer.split(batch.slice(start, step)):
            part[key] = kernel.add(part.get(key) or kernel.create(), chunk)
        partials.append(part)
    for part in partials:
        for key, acc in part.items():
            accs[key] = kernel.merge([accs[key], acc]) if key in accs else acc
    from conveyor.components.evaluation.report import slice_entry

    entries = [slice_entry(k, a.rows, kernel.outputs(a)) for k, a in accs.items()]
    return build_report(settings, entries)


def exact_auc(labels, preds):
    pos, neg = preds[labels == 1], preds[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


def test_binary_metrics_match_direct_formulas():
    batch = binary_data()
    settings = make_settings("label", "p", slice_by=["carrier"])
    report = evaluate_local(settings, batch)
    labels = np.array(batch.column("label").flatten(), float)
    preds = np.array(batch.column("p").flatten(), float)
    carriers = np.array([b.decode() for b in batch.column("carrier").flatten().to_pylist()])
    assert [e["slice"] for e in report["metrics"]] == [
        {},
        {"carrier": "AA"},
        {"carrier": "DL"},
        {"carrier": "UA"},
    ]
    for entry in report["metrics"]:
        mask = (
            np.ones(len(labels), bool)
            if not entry["slice"]
            else carriers == entry["slice"]["carrier"]
        )
        y, p = labels[mask], preds[mask]
        m = entry["metrics"]
        assert m["example_count"] == mask.sum()
        assert m["auc"] == pytest.approx(
            exact_auc(y, p), abs=entry["notes"]["auc_bucketing_error_bound"] + 1e-12
        )
        assert m["auc"] == pytest.approx(exact_auc(y, p), abs=1e-3)
        tp = ((p > 0.5) & (y == 1)).sum()
        fp = ((p > 0.5) & (y == 0)).sum()
        fn = ((p <= 0.5) & (y == 1)).sum()
        assert m["binary_accuracy"] == pytest.approx(((p > 0.5) == (y == 1)).mean(), abs=1e-12)
        assert m["precision"] == pytest.approx(tp / (tp + fp), abs=1e-12)
        assert m["recall"] == pytest.approx(tp / (tp + fn), abs=1e-12)
        assert m["f1_score"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
        assert m["log_loss"] == pytest.approx(
            -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(), rel=1e-9
        )
        assert m["mean_label"] == pytest.approx(y.mean(), abs=1e-12)
        assert m["mean_prediction"] == pytest.approx(p.mean(), rel=1e-9)
        assert m["calibration"] == pytest.approx(p.sum() / y.sum(), rel=1e-9)
        # AUC-PR against a fine step-wise average precision: close, not equal (interpolation).
        order = np.argsort(-p)
        hits = y[order]
        ap = (np.cumsum(hits) / np.arange(1, len(hits) + 1))[hits == 1].mean()
        assert m["auc_precision_recall"] == pytest.approx(ap, abs=0.02)
    plots = {json.dumps(p["slice"]): p["plots"] for p in report["plots"]}
    overall = plots["{}"]
    matrix = {r["threshold"]: r for r in overall["confusion_matrix_at_thresholds"]}
    assert matrix[0.5]["true_positives"] == ((preds > 0.5) & (labels == 1)).sum()
    cal = overall["calibration_plot"]
    assert sum(b["weighted_examples"] for b in cal) == len(labels)
    assert sum(b["total_weighted_label"] for b in cal) == labels.sum()
    assert overall["roc_curve"]["fpr"][0] == 0 and overall["roc_curve"]["tpr"][-1] == 1


def test_regression_and_multiclass_metrics():
    rng = np.random.default_rng(1)
    y = rng.normal(3, 2, 500)
    p = y + rng.normal(0, 0.5, 500)
    w = rng.choice([1.0, 2.0], 500)
    batch = make_batch(y=[float(v) for v in y], p=[float(v) for v in p], w=[float(v) for v in w])
    settings = make_settings("y", "p", example_weight_key="w", task="regression")
    m = evaluate_local(settings, batch)["metrics"][0]["metrics"]
    y32, p32 = np.float32(y).astype(float), np.float32(p).astype(float)
    mse = np.average((p32 - y32) ** 2, weights=w)
    assert m["example_count"] == 500
    assert m["weighted_example_count"] == pytest.approx(w.sum())
    assert m["mean_squared_error"] == pytest.approx(mse, rel=1e-9)
    assert m["root_mean_squared_error"] == pytest.approx(math.sqrt(mse), rel=1e-9)
    assert m["mean_absolute_error"] == pytest.approx(
        np.average(np.abs(p32 - y32), weights=w), rel=1e-9
    )
    ybar = np.average(y32, weights=w)
    r2 = 1 - np.sum(w * (p32 - y32) ** 2) / np.sum(w * (y32 - ybar) ** 2)
    assert m["r_squared"] == pytest.approx(r2, rel=1e-9)

    scores = rng.random((300, 4))
    labels = rng.integers(0, 4, 300)
    col = pa.LargeListArray.from_arrays(
        pa.array(np.arange(301) * 4), pa.array(scores.reshape(-1).astype(np.float32))
    )
    batch = pa.RecordBatch.from_arrays(
        [arrow.wrap_scalars(pa.array(labels), pa.int64()), col], names=["y", "scores"]
    )
    settings = make_settings("y", "scores", task="multiclass")
    m = evaluate_local(settings, batch)["metrics"][0]["metrics"]
    s32 = scores.astype(np.float32)
    assert m["accuracy"] == pytest.approx((s32.argmax(1) == labels).mean())
    top3 = (np.argsort(-s32, axis=1)[:, :3] == labels[:, None]).any(1).mean()
    assert m["top_k_accuracy"] == pytest.approx(top3)


def test_bad_rows_are_counted_not_averaged():
    batch = make_batch(
        label=[1, 0, None, 1, 0, 1],
        p=[0.9, 0.2, 0.5, float("nan"), 1.7, 0.6],
    )
    report = evaluate_local(make_settings("label", "p"), batch, pieces=1)
    entry = report["metrics"][0]
    assert entry["metrics"]["example_count"] == 6
    assert entry["problems"] == {
        "missing_label": 1,
        "nan_prediction": 1,
        "prediction_out_of_range": 1,
    }
    assert entry["metrics"]["mean_prediction"] == pytest.approx((0.9 + 0.2 + 0.6) / 3, rel=1e-6)
    assert not report["blessed"]
    failed = {f["metric"]: f for f in report["validation"]["failures"]}
    assert failed["nan_prediction_count"]["value"] == 1
    assert failed["prediction_out_of_range_count"]["value"] == 1


def test_missing_columns_are_input_errors():
    batch = binary_data(50)
    with pytest.raises(InputError, match="label column 'nope'"):
        BatchSlicer(make_settings("nope", "p"), ["p"]).check_schema(batch.schema)
    with pytest.raises(InputError, match="prediction column 'q'"):
        BatchSlicer(make_settings("label", "q"), ["q"]).check_schema(batch.schema)
    with pytest.raises(InputError, match="slicing column 'origin'"):
        BatchSlicer(make_settings("label", "p", slice_by=["origin"]), ["p"]).check_schema(
            batch.schema
        )
    with pytest.raises(InputError, match="must be numeric"):
        BatchSlicer(make_settings("carrier", "p"), ["p"]).check_schema(batch.schema)


def test_config_forms_and_errors(tmp_path):
    text = """
    model_specs { label_key: "label" prediction_key: "p" }
    slicing_specs {}
    slicing_specs { feature_values { key: "carrier" value: "UA" } }
    metrics_specs {
      metrics { class_name: "AUC" threshold { value_threshold { lower_bound { value: 0.6 } } } }
      metrics { class_name: "Precision" config: '{"thresholds": 0.3}' }
    }
    options { compute_confidence_intervals { value: true } }
    """
    as_text = load_eval_config(text)
    from google.protobuf import json_format

    json_path = tmp_path / "c.json"
    json_path.write_text(json_format.MessageToJson(as_text))
    for source in (text, as_text, str(json_path), json.loads(json_path.read_text())):
        s = settings_from_eval_config(source)
        assert s.candidate.label_key == "label"
        assert s.slices[1] == SliceSpec((), (("carrier", "UA"),))
        assert [m.name for m in s.metrics] == ["example_count", "auc", "precision"]
        assert s.metric("precision").threshold == 0.3
        assert s.thresholds[0].threshold == Threshold(lower=0.6)
        assert s.compute_confidence_intervals
    braceless = settings_from_eval_config(
        text.replace("""'{"thresholds": 0.3}'""", """'"thresholds": 0.3'""")
    )
    assert braceless.metric("precision").threshold == 0.3  # TFMA's form without the braces
    with pytest.raises(UsageError, match="not a valid EvalConfig in text form"):
        settings_from_eval_config("model_specs { label_key: }")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"modelSpecs": [{"labelKey": 3, "nope": 1}]}')
    with pytest.raises(UsageError, match="JSON form"):
        settings_from_eval_config(str(bad_json))
    with pytest.raises(UsageError, match="does not exist"):
        settings_from_eval_config("missing_config.json")
    with pytest.raises(UsageError, match="not supported"):
        settings_from_eval_config(
            'model_specs { label_key: "l" } metrics_specs { metrics { class_name: "NDCG" } }'
        )
    with pytest.raises(UsageError, match="no baseline"):
        settings_from_eval_config(
            'model_specs { label_key: "l" } metrics_specs { metrics { class_name: "AUC" threshold {'
            " change_threshold { direction: HIGHER_IS_BETTER absolute { value: 0 } } } } }"
        )


def test_thresholds_baseline_and_empty_slices():
    batch = binary_data(1500, seed=3)
    rng = np.random.default_rng(5)
    p = np.array(batch.column("p").flatten(), float)
    noisy = np.clip(p + rng.normal(0, 0.3, len(p)), 0, 1)
    batch = pa.RecordBatch.from_arrays(
        list(batch.columns)
        + [arrow.wrap_scalars(pa.array(noisy.astype(np.float32)), pa.float32())],
        names=batch.schema.names + ["p_base"],
    )
    config = """
    model_specs { name: "candidate" label_key: "label" prediction_key: "p" }
    model_specs { name: "baseline" label_key: "label" prediction_key: "p_base" is_baseline: true }
    slicing_specs {}
    slicing_specs { feature_keys: "carrier" }
    slicing_specs { feature_values { key: "carrier" value: "ZZ" } }
    metrics_specs {
      metrics { class_name: "ExampleCount" }
      metrics { class_name: "AUC"
        threshold { change_threshold { direction: HIGHER_IS_BETTER absolute { value: 0.01 } } }
        per_slice_thresholds {
          slicing_specs { feature_values { key: "carrier" value: "ZZ" } }
          threshold { value_threshold { lower_bound { value: 0.5 } } }
        }
      }
      metrics { class_name: "BinaryAccuracy" }
      thresholds { key: "binary_accuracy" value { value_threshold { lower_bound { value: 0.99 } } } }
    }
    """
    report = evaluate_local(settings_from_eval_config(config), batch)
    by_slice = {json.dumps(e["slice"]): e for e in report["metrics"]}
    assert by_slice['{"carrier": "ZZ"}'] == {
        "slice": {"carrier": "ZZ"},
        "metrics": {"example_count": 0},
        "empty": True,
    }
    overall = by_slice["{}"]
    assert overall["diff"]["auc"] == pytest.approx(
        overall["metrics"]["auc"] - overall["baseline_metrics"]["auc"]
    )
    assert overall["diff"]["auc"] > 0.01  # the noisy baseline is clearly worse
    v = report["validation"]
    assert not v["blessed"] and not report["blessed"]
    reasons = {(f["metric"], json.dumps(f["slice"])): f for f in v["failures"]}
    assert ("auc", '{"carrier": "ZZ"}') in reasons  # a threshold on an empty slice fails
    assert v["missing_slices"] == [{"carrier": "ZZ"}]
    assert all(f["metric"] != "auc" or f["slice"] == {"carrier": "ZZ"} for f in v["failures"])
    acc = reasons[("binary_accuracy", "{}")]
    assert acc["value"] == overall["metrics"]["binary_accuracy"]
    assert acc["threshold"] == {"value_threshold": {"lower_bound": 0.99}}
    assert "below the lower bound" in acc["reason"]
    assert v["thresholds_checked"] == 4 + 4  # auc and binary_accuracy on overall + 3 carriers


def test_confidence_intervals_bracket_the_estimate():
    batch = binary_data(3000, seed=11)
    s = make_settings(
        "label",
        "p",
        metrics=["AUC", "BinaryAccuracy", "MeanPrediction"],
        compute_confidence_intervals=True,
    )
    entry = evaluate_local(s, batch)["metrics"][0]
    ci = entry["confidence_intervals"]
    for name in ("auc", "binary_accuracy", "mean_prediction"):
        assert ci[name]["lower"] < entry["metrics"][name] < ci[name]["upper"]
        assert 0 < ci[name]["std_error"] < 0.05


def test_slicing_crosses_and_multivalent():
    tags = pa.LargeListArray.from_arrays(
        pa.array([0, 2, 3, 3, 4], pa.int64()), pa.array([b"x", b"y", b"x", b"y"], pa.large_binary())
    )
    base = make_batch(a=["p", "q", "p", "q"], label=[1, 0, 1, 0], p=[0.9, 0.1, 0.8, 0.3])
    batch = pa.RecordBatch.from_arrays(
        list(base.columns) + [tags], names=base.schema.names + ["tag"]
    )
    settings = make_settings("label", "p", metrics=["ExampleCount"]).with_slices(
        [SliceSpec(), SliceSpec(("tag",)), SliceSpec(("a", "tag"))]
    )
    report = evaluate_local(settings, batch, pieces=1)
    counts = {
        json.dumps(e["slice"], sort_keys=True): e["metrics"]["example_count"]
        for e in report["metrics"]
    }
    assert counts == {
        "{}": 4,
        '{"tag": "x"}': 2,  # rows 0 and 1 (row 2 has an empty list)
        '{"tag": "y"}': 2,  # rows 0 and 3
        '{"a": "p", "tag": "x"}': 1,
        '{"a": "p", "tag": "y"}': 1,
        '{"a": "q", "tag": "x"}': 1,
        '{"a": "q", "tag": "y"}': 1,
    }


@pytest.fixture(scope="module")
def flights_parquet(tmp_path_factory):
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from conveyor.beam_utils.datasets import flights_sample_csv

    t = pcsv.read_csv(
        flights_sample_csv(1500), convert_options=pcsv.ConvertOptions(null_values=["NA"])
    )
    dep = t["dep_delay"].to_numpy().astype(float)
    arr = t["arr_delay"].to_numpy().astype(float)
    keep = ~np.isnan(dep) & ~np.isnan(arr)
    p = 1 / (1 + np.exp(-(dep[keep] - 10) / 8))
    table = pa.table(
        {
            "carrier": t["carrier"].filter(pa.array(keep)),
            "dep_delay": dep[keep].astype(np.float32),
            "late": (arr[keep] > 15).astype(np.int64),
            "p_late": p.astype(np.float32),
        }
    )
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    pq.write_table(table, path)
    return path


def test_cli_writes_report_and_exit_status(tmp_path, flights_parquet, capsys):
    out = tmp_path / "out"
    rc = run_cli(
        "evaluate",
        "--input",
        str(flights_parquet),
        "--prediction-key",
        "p_late",
        "--label-key",
        "late",
        "--slice-by",
        "carrier",
        "--output",
        str(out),
    )
    assert rc == 0, capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics[0]["slice"] == {}
    assert {
        "example_count",
        "auc",
        "auc_precision_recall",
        "binary_accuracy",
        "precision",
        "recall",
        "f1_score",
        "log_loss",
        "calibration",
        "mean_label",
        "mean_prediction",
    } <= set(metrics[0]["metrics"])
    assert (
        sum(e["metrics"]["example_count"] for e in metrics[1:])
        == metrics[0]["metrics"]["example_count"]
    )
    assert (out / "blessing" / "BLESSED").exists()
    assert (out / "plots" / "overall_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "carrier=UA_calibration.png").exists()
    page = (out / "index.html").read_text()
    assert "carrier=UA" in page and "<th>auc</th>" in page

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "modelSpecs": [{"labelKey": "late", "predictionKey": "p_late"}],
                "slicingSpecs": [{}],
                "metricsSpecs": [
                    {
                        "metrics": [
                            {
                                "className": "AUC",
                                "threshold": {"valueThreshold": {"lowerBound": 0.99}},
                            }
                        ]
                    }
                ],
            }
        )
    )
    rc = run_cli(
        "evaluate",
        "--input",
        str(flights_parquet),
        "--config",
        str(config),
        "--output",
        str(out),
        "--no-images",
    )
    assert rc == 1
    assert (out / "blessing" / "NOT_BLESSED").exists() and not (
        out / "blessing" / "BLESSED"
    ).exists()
    failure = json.loads((out / "validation.json").read_text())["failures"][0]
    assert failure["metric"] == "auc" and failure["slice"] == {}
    assert "FAILED auc" in capsys.readouterr().out

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert (
        run_cli(
            "evaluate", "--input", str(flights_parquet), "--config", str(bad), "--output", str(out)
        )
        == 2
    )
    assert (
        run_cli(
            "evaluate",
            "--input",
            str(flights_parquet),
            "--prediction-key",
            "p_late",
            "--label-key",
            "arrived_late",
            "--output",
            str(out),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "not a valid EvalConfig" in err and "label column 'arrived_late'" in err


def test_portable_runner_and_fanout(tmp_path, flights_parquet, job_endpoint):
    from conftest import portable_args

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.evaluation import run_evaluation

    settings = make_settings("late", "p_late", slice_by=["carrier"])
    local = run_evaluation(
        {"eval": ReadExamples(str(flights_parquet))}, settings, str(tmp_path / "a"), images=False
    )
    portable = run_evaluation(
        {"eval": ReadExamples(str(flights_parquet))},
        settings,
        str(tmp_path / "b"),
        images=False,
        beam_args=portable_args(job_endpoint),
        hot_key_fanout=3,
    )
    assert len(local["metrics"]) == len(portable["metrics"])
    for x, y in zip(local["metrics"], portable["metrics"]):
        assert x["slice"] == y["slice"]
        assert x["metrics"]["example_count"] == y["metrics"]["example_count"]
        for k, v in x["metrics"].items():
            if v is None:  # undefined on a small slice (e.g. precision without positive calls)
                assert y["metrics"][k] is None
            else:
                assert y["metrics"][k] == pytest.approx(v, rel=1e-9, abs=1e-12)


def test_several_splits_are_evaluated_together(tmp_path, flights_parquet):
    """{split: reader} with several splits: their rows are one data set (TFX's example_splits)."""
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.evaluation import run_evaluation

    settings = make_settings("late", "p_late", metrics=["ExampleCount", "AUC", "MeanLabel"])
    one = run_evaluation(
        {"eval": ReadExamples(str(flights_parquet))}, settings, str(tmp_path / "one"), images=False
    )
    both = run_evaluation(
        {"train": ReadExamples(str(flights_parquet)), "eval": ReadExamples(str(flights_parquet))},
        settings,
        str(tmp_path / "both"),
        images=False,
    )
    m1, m2 = one["metrics"][0]["metrics"], both["metrics"][0]["metrics"]
    assert m2["example_count"] == 2 * m1["example_count"]
    assert m2["auc"] == pytest.approx(m1["auc"], abs=1e-9)
    assert m2["mean_label"] == pytest.approx(m1["mean_label"], rel=1e-12)
    assert one["rows_rejected_on_read"] == both["rows_rejected_on_read"] == 0

    csv = tmp_path / "rows.csv"
    csv.write_text("late,p_late\n1,0.9\n0,0.2\n1,0.7,extra\n0,0.4\n")
    report = run_evaluation(
        {"a": ReadExamples(str(csv)), "b": ReadExamples(str(csv))},
        settings,
        str(tmp_path / "csv"),
        images=False,
    )
    assert report["metrics"][0]["metrics"]["example_count"] == 6
    assert report["rows_rejected_on_read"] == 2  # one bad row in each split
    assert (tmp_path / "csv" / "rejected_rows_count.json").read_text() == "2\n"


def test_saved_model_path(tmp_path, flights_parquet):
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="dep_delay")])
        def serve(self, dep_delay):
            return {"p": tf.sigmoid((dep_delay - 10.0) / 8.0)}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="dep_delay")])
        def serve_base(self, dep_delay):
            return {"p": tf.sigmoid((dep_delay - 30.0) / 20.0)}

    model = Model()
    cand, base = tmp_path / "cand", tmp_path / "base"
    tf.saved_model.save(model, str(cand), signatures={"serving_default": model.serve})
    tf.saved_model.save(model, str(base), signatures={"serving_default": model.serve_base})
    config = tmp_path / "config.pbtxt"
    config.write_text("""
      model_specs { name: "candidate" label_key: "late" }
      model_specs { name: "baseline" label_key: "late" is_baseline: true }
      slicing_specs {}
      metrics_specs {
        metrics { class_name: "ExampleCount" }
        metrics { class_name: "AUC"
          threshold { change_threshold { direction: HIGHER_IS_BETTER absolute { value: -1e-10 } } } }
      }
    """)
    out = tmp_path / "out"
    rc = run_cli(
        "evaluate",
        "--input",
        str(flights_parquet),
        "--model",
        str(cand),
        "--baseline-model",
        str(base),
        "--config",
        str(config),
        "--output",
        str(out),
        "--no-images",
    )
    metrics = json.loads((out / "metrics.json").read_text())[0]
    model_free = tmp_path / "free"
    assert (
        run_cli(
            "evaluate",
            "--input",
            str(flights_parquet),
            "--prediction-key",
            "p_late",
            "--label-key",
            "late",
            "--output",
            str(model_free),
            "--no-images",
        )
        == 0
    )
    free = json.loads((model_free / "metrics.json").read_text())[0]
    assert metrics["metrics"]["example_count"] == free["metrics"]["example_count"]
    assert metrics["metrics"]["auc"] == pytest.approx(free["metrics"]["auc"], abs=1e-4)
    blessed = metrics["metrics"]["auc"] >= metrics["baseline_metrics"]["auc"] - 1e-10
    assert rc == (0 if blessed else 1)
    assert (out / "blessing" / ("BLESSED" if blessed else "NOT_BLESSED")).exists()


def test_cli_evaluate_with_a_model_exits_without_tensorflow_noise(tmp_path):
    """A model holding TensorFlow functions in cycles (a tf.Transform layer) is freed before exit."""
    import subprocess
    import sys

    from test_inference import EXIT_NOISE, build_tft_layer_model

    made = build_tft_layer_model(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor.orchestration.cli",
            "evaluate",
            "--examples",
            made["examples"],
            "--model",
            made["model"],
            "--label-key",
            "heavy",
            "--no-images",
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BLESSED" in proc.stdout
    assert EXIT_NOISE not in proc.stderr and "AtomicFunction" not in proc.stderr, proc.stderr[
        -3000:
    ]


# --- every branch of the config reader ------------------------------------------

_MODEL = 'model_specs { label_key: "l" prediction_key: "p" } '


def _metric(class_name: str, config: str = "", extra: str = "") -> str:
    cfg = f" config: '{config}'" if config else ""
    return _MODEL + f'metrics_specs {{ metrics {{ class_name: "{class_name}"{cfg} {extra} }} }}'


@pytest.mark.parametrize(
    "config, match",
    [
        (_metric("AUC", '{"curve": "XY"}'), "AUC curve must be ROC or PR"),
        (
            _metric("AUC", '{"summation_method": "minoring"}'),
            "only summation_method 'interpolation'",
        ),
        (_metric("Precision", '{"thresholds": [0.3, 0.6]}'), "give one threshold"),
        (_metric("Recall", '{"threshold": 1.5}'), r"recall threshold must be in \[0, 1\]"),
        (_metric("ConfusionMatrixAtThresholds", '{"thresholds": []}'), "thresholds is empty"),
        (_metric("CalibrationPlot", '{"num_buckets": 0}'), "num_buckets must be positive"),
        (_metric("CalibrationPlot", '{"left": -1}'), r"only the range \[0, 1\]"),
        (_metric("TopKAccuracy", '{"k": 0}'), "k must be positive"),
        (_metric("LogLoss", '{"from_logits": true}'), "from_logits is not supported"),
        (
            _metric("BinaryCrossentropy", '{"label_smoothing": 0.1}'),
            "label_smoothing is not supported",
        ),
        (_metric("MeanLabel", '{"bins": 3}'), r"unsupported config keys \['bins'\]"),
        (_metric("AUC", "{not json"), "config is not JSON"),
        (_metric("AUC", extra='module: "my.metrics"'), "custom metric module 'my.metrics'"),
        (
            _metric(
                "AUC",
                extra="cross_slice_thresholds { threshold { value_threshold { lower_bound { value: 0 } } } }",
            ),
            "auc: a cross_slice_threshold needs cross_slicing_specs",
        ),
        (
            _metric("AUC", extra="threshold { change_threshold { absolute { value: 0 } } }"),
            "needs direction HIGHER_IS_BETTER or LOWER_IS_BETTER",
        ),
        (
            _metric("AUC", extra="threshold { change_threshold { direction: LOWER_IS_BETTER } }"),
            "needs an absolute or a relative bound",
        ),
        (
            _MODEL
            + 'metrics_specs { metrics { class_name: "AUC" } metrics { class_name: "AUC" config: \'{"curve": "PR"}\' } }',
            "metric name 'auc' is configured twice with different settings",
        ),
        (
            _MODEL + 'cross_slicing_specs { baseline_spec { slice_keys_sql: "SELECT 1" } }',
            "slice_keys_sql are not supported",
        ),
        ('metrics_specs { metrics { class_name: "AUC" } }', "has no model_specs"),
        (
            'model_specs { label_keys { key: "a" value: "l" } }',
            r"model_specs\[0\].label_keys \(multi-output",
        ),
        (
            _MODEL + 'slicing_specs { slice_keys_sql: "SELECT 1" }',
            "slice_keys_sql are not supported",
        ),
        (
            _MODEL + 'slicing_specs { feature_keys: "a" feature_values { key: "a" value: "x" } }',
            r"names \['a'\] in both feature_keys and feature_values",
        ),
        (
            _MODEL + "metrics_specs { binarize { k_list { values: 1 } } }",
            r"metrics_specs\[0\].binarize.k_list is not supported",
        ),
        (
            _MODEL + "metrics_specs { aggregate { macro_average: true } }",
            r"metrics_specs\[0\].aggregate.macro_average needs class_weights",
        ),
        (
            _MODEL + 'metrics_specs { metrics { class_name: "AUC" } cross_slice_thresholds { '
            'key: "auc" value { thresholds { threshold { value_threshold { lower_bound { value: 0 } } } } } } }',
            "auc: a cross_slice_threshold needs cross_slicing_specs",
        ),
        (
            _MODEL + 'metrics_specs { output_names: "head" }',
            "output_names and query_key are not supported",
        ),
        (
            _MODEL + 'metrics_specs { query_key: "q" }',
            "output_names and query_key are not supported",
        ),
        (
            'model_specs { label_key: "l" prediction_key: "p" example_weight_key: "w" } '
            "metrics_specs { example_weights { unweighted: true } }",
            "asks for unweighted metrics only",
        ),
        (
            _MODEL + 'metrics_specs { metrics { class_name: "AUC" } '
            'thresholds { key: "nope" value { value_threshold { lower_bound { value: 0 } } } } }',
            "a threshold names metric 'nope', which is not computed",
        ),
        (
            _MODEL + 'metrics_specs { metrics { class_name: "CalibrationPlot" } '
            'thresholds { key: "calibration_plot" value { value_threshold { lower_bound { value: 0 } } } } }',
            "is a plot; thresholds apply to scalar metrics",
        ),
        (
            _MODEL
            + 'metrics_specs { metrics { class_name: "AUC" } metrics { class_name: "Accuracy" } }',
            "multiclass metrics .* cannot be mixed",
        ),
        (
            _MODEL
            + 'model_specs { name: "b" label_key: "l" } metrics_specs { metrics { class_name: "AUC" } }',
            "exactly one candidate model spec, got 2",
        ),
        (
            _MODEL + 'model_specs { name: "b1" label_key: "l" is_baseline: true } '
            'model_specs { name: "b2" label_key: "l" is_baseline: true }',
            "at most one baseline model spec, got 2",
        ),
        (
            'model_specs { name: "m" label_key: "l" } model_specs { name: "m" label_key: "l" is_baseline: true }',
            r"model spec names must differ, got \['m', 'm'\]",
        ),
        ('model_specs { prediction_key: "p" }', "model spec 'candidate' has no label_key"),
    ],
)
def test_config_refusals_name_what_is_refused(config, match):
    with pytest.raises(UsageError, match=match):
        settings_from_eval_config(config)


def test_config_refusals_outside_the_text():
    from conveyor.components.evaluation.config import (
        EvalSettings,
        ModelSettings,
        config_pb2,
        default_metrics,
    )

    with pytest.raises(
        UsageError, match="expected a tfma.EvalConfig, got a tensorflow_model_analysis.ModelSpec"
    ):
        load_eval_config(config_pb2().ModelSpec(label_key="l"))
    with pytest.raises(
        UsageError, match="task must be one of binary, multiclass, regression, not 'ranking'"
    ):
        settings_from_eval_config(_MODEL, task="ranking")
    models = (ModelSettings("candidate", "l", "p"),)
    metrics = default_metrics("binary")
    with pytest.raises(UsageError, match="no metrics to compute"):
        EvalSettings(models)
    with pytest.raises(UsageError, match="metric name 'auc' is configured twice"):
        EvalSettings(models, metrics=metrics + metrics[1:2])
    for field, value, match in [
        ("min_slice_size", 0, "min_slice_size must be at least 1, got 0"),
        ("bootstrap_samples", 1, "bootstrap_samples must be at least 2, got 1"),
        ("num_buckets", 1, "num_buckets must be at least 2, got 1"),
    ]:
        with pytest.raises(UsageError, match=match):
            EvalSettings(models, metrics=metrics, **{field: value})


def test_config_variants_that_are_read():
    from conveyor.components.evaluation.config import (
        DEFAULT_MATRIX_THRESHOLDS,
        MetricSpec,
        ThresholdRule,
        metric_spec,
    )

    assert metric_spec("AUC", {"curve": "pr", "num_thresholds": 200}) == MetricSpec(
        "auc", "auc_precision_recall"
    )
    assert metric_spec("AUC", {"name": "roc", "summation_method": "Interpolation"}) == MetricSpec(
        "roc", "auc"
    )
    assert metric_spec("Precision", {"thresholds": [0.25]}).threshold == 0.25
    assert metric_spec("F1Score", {"threshold": 0}).threshold == 0.0
    assert metric_spec("BinaryAccuracy", {"dtype": "float32"}) == MetricSpec(
        "binary_accuracy", "binary_accuracy"
    )
    assert metric_spec("ConfusionMatrixAtThresholds").thresholds == DEFAULT_MATRIX_THRESHOLDS
    assert metric_spec("ConfusionMatrixAtThresholds", {"thresholds": 0.7}).thresholds == (0.7,)
    assert metric_spec(
        "ConfusionMatrixAtThresholds", {"thresholds": [0.6, 0.2, 0.6]}
    ).thresholds == (0.2, 0.6)
    assert metric_spec("CalibrationPlot").num_buckets == 1000
    assert (
        metric_spec("CalibrationPlot", {"num_buckets": 20, "left": 0, "right": 1.0}).num_buckets
        == 20
    )
    assert metric_spec("Accuracy").k == 1
    assert metric_spec("SparseCategoricalAccuracy") == MetricSpec(
        "sparse_categorical_accuracy", "accuracy", k=1
    )
    assert metric_spec("TopKAccuracy").k == 3
    assert metric_spec("SparseTopKCategoricalAccuracy").k == 5
    assert (
        metric_spec("TopKAccuracy", {"top_k": 2}).k == metric_spec("TopKAccuracy", {"k": 2}).k == 2
    )
    assert metric_spec(
        "BinaryCrossEntropy", {"from_logits": False, "label_smoothing": 0}
    ) == MetricSpec("binary_crossentropy", "log_loss")
    assert metric_spec("R2Score") == MetricSpec("r2_score", "r_squared")
    from conveyor.components.evaluation.config import CLASS_NAMES, KINDS

    assert {kind for kind, _ in CLASS_NAMES.values()} == set(KINDS)  # every kind has a class

    s = settings_from_eval_config(
        'model_specs { label_key: "l" prediction_key: "p" example_weight_key: "w" } '
        'model_specs { label_key: "l" prediction_key: "q" is_baseline: true } '
        'slicing_specs { feature_keys: "a" } '
        'metrics_specs { example_weights { weighted: true } metrics { class_name: "AUC" '
        "  threshold { value_threshold { upper_bound { value: 0.99 } } "
        "    change_threshold { direction: LOWER_IS_BETTER relative { value: 0.1 } } } } "
        '  metrics { class_name: "AUC" } '
        '  per_slice_thresholds { key: "auc" value { thresholds { '
        '    slicing_specs { feature_keys: "a" } threshold { value_threshold { lower_bound { value: 0.4 } } } } } } } '
        'metrics_specs { model_names: "other" metrics { class_name: "MeanLabel" } } '
        "options { min_slice_size { value: 0 } }",
        extra_slices=[SliceSpec(("b",)), SliceSpec(("a",))],
    )
    assert [(m.name, m.is_baseline) for m in s.models] == [("candidate", False), ("baseline", True)]
    assert s.slices == (SliceSpec(), SliceSpec(("a",)), SliceSpec(("b",)))
    assert [m.name for m in s.metrics] == [
        "example_count",
        "auc",
    ]  # MeanLabel was for another model
    assert s.thresholds == (
        ThresholdRule("auc", Threshold(upper=0.99, direction="LOWER_IS_BETTER", relative=0.1)),
        ThresholdRule("auc", Threshold(lower=0.4), (SliceSpec(("a",)),)),
    )
    assert s.min_slice_size == 1 and not s.compute_confidence_intervals

    defaults = {
        task: [m.name for m in settings_from_eval_config(config, task=task).metrics]
        for task, config in [
            ("binary", _MODEL),
            (
                "regression",
                'model_specs { label_key: "l" prediction_key: "p" example_weight_key: "w" }',
            ),
            ("multiclass", _MODEL),
        ]
    }
    assert defaults == {
        "binary": [
            "example_count",
            "auc",
            "auc_precision_recall",
            "binary_accuracy",
            "precision",
            "recall",
            "f1_score",
            "log_loss",
            "calibration",
            "mean_label",
            "mean_prediction",
            "confusion_matrix_at_thresholds",
            "calibration_plot",
        ],
        "regression": [
            "example_count",
            "weighted_example_count",
            "mean_squared_error",
            "root_mean_squared_error",
            "mean_absolute_error",
            "r_squared",
            "mean_label",
            "mean_prediction",
        ],
        "multiclass": ["example_count", "accuracy", "top_k_accuracy"],
    }
    multi = settings_from_eval_config(_MODEL, task="multiclass")
    assert multi.needs_classes and not multi.needs_probabilities and multi.top_ks == (1, 3)
    binary = settings_from_eval_config(_MODEL)
    assert binary.needs_probabilities and not binary.needs_classes
    assert binary.decision_thresholds == DEFAULT_MATRIX_THRESHOLDS
    regression = settings_from_eval_config(_MODEL, task="regression")
    assert not regression.needs_probabilities and not regression.needs_classes
    assert regression.decision_thresholds == () and regression.top_ks == ()


# --- a baseline, or none yet (continuous training) ------------------------------

#: Change thresholds on AUC (and a per-slice one on accuracy) with a value bound on
#: AUC; the baseline's predictions are the column ``{baseline}``. Slices of fewer
#: than 50 flights are left out (AUC is undefined on some).
CHANGE_CONFIG = """
model_specs {{ name: "candidate" label_key: "late" prediction_key: "p" }}
model_specs {{ name: "baseline" label_key: "late" {baseline} is_baseline: true }}
slicing_specs {{}}
slicing_specs {{ feature_keys: "carrier" }}
metrics_specs {{
  metrics {{ class_name: "ExampleCount" }}
  metrics {{ class_name: "AUC"
    threshold {{
      value_threshold {{ lower_bound {{ value: {auc_floor} }} }}
      change_threshold {{ direction: HIGHER_IS_BETTER absolute {{ value: -1e-10 }} }}
    }}
  }}
  metrics {{ class_name: "BinaryAccuracy"
    per_slice_thresholds {{
      slicing_specs {{ feature_values {{ key: "carrier" value: "UA" }} }}
      threshold {{ change_threshold {{ direction: HIGHER_IS_BETTER absolute {{ value: -0.5 }} }} }}
    }}
  }}
}}
options {{ min_slice_size {{ value: 50 }} }}
"""

SKIPPED = [
    {
        "metric": "auc",
        "threshold": {"change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -1e-10}},
        "reason": "no baseline model",
    },
    {
        "metric": "binary_accuracy",
        "threshold": {"change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -0.5}},
        "slices": [{"feature_values": {"carrier": "UA"}}],
        "reason": "no baseline model",
    },
]


def change_config(baseline: str | None = "p_good", auc_floor: float = 0.6) -> str:
    key = f'prediction_key: "{baseline}"' if baseline else ""
    return CHANGE_CONFIG.format(baseline=key, auc_floor=auc_floor)


@pytest.fixture(scope="module")
def flights_predictions(tmp_path_factory):
    """Flights with a candidate's predictions ``p`` (from the departure delay), a better
    baseline's ``p_good`` (from the arrival delay the label is made of) and a worse one's
    ``p_bad`` (``p`` with noise); as Parquet and as an Examples directory (split eval)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from conveyor.beam_utils.datasets import flights_sample_csv
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.example_gen.component import run_example_gen

    t = pcsv.read_csv(
        flights_sample_csv(1500), convert_options=pcsv.ConvertOptions(null_values=["NA"])
    )
    dep = t["dep_delay"].to_numpy().astype(float)
    arr = t["arr_delay"].to_numpy().astype(float)
    keep = ~np.isnan(dep) & ~np.isnan(arr)
    dep, arr = dep[keep], arr[keep]
    p = 1 / (1 + np.exp(-(dep - 10) / 8))
    noise = np.random.default_rng(3).normal(0, 0.35, len(p))
    table = pa.table(
        {
            "carrier": t["carrier"].filter(pa.array(keep)),
            "dep_delay": dep.astype(np.float32),
            "late": (arr > 15).astype(np.int64),
            "p": p.astype(np.float32),
            "p_good": (1 / (1 + np.exp(-(arr - 15) / 4))).astype(np.float32),
            "p_bad": np.clip(p + noise, 0, 1).astype(np.float32),
        }
    )
    root = tmp_path_factory.mktemp("predictions")
    pq.write_table(table, root / "flights.parquet")
    run_example_gen(
        {None: ReadExamples(str(root / "flights.parquet"))},
        str(root / "examples"),
        splits={"eval": 1},
    )
    return {"parquet": root / "flights.parquet", "examples": root / "examples"}


def test_change_thresholds_are_skipped_without_a_baseline():
    """TFX's has_baseline=False: the baseline spec goes, change thresholds are skipped
    (and listed), value thresholds still decide; a value-and-change threshold keeps its value part."""
    from conveyor.components.evaluation.config import NO_BASELINE, ThresholdRule

    batch = binary_data(1500, seed=3)
    batch = pa.RecordBatch.from_arrays(
        [batch.column("carrier"), batch.column("label"), batch.column("p"), batch.column("p")],
        names=["carrier", "late", "p", "p_good"],
    )
    settings = settings_from_eval_config(change_config(), has_baseline=False)
    assert settings.baseline is None and [m.name for m in settings.models] == ["candidate"]
    assert settings.thresholds == (ThresholdRule("auc", Threshold(lower=0.6)),)
    assert [r.describe() for r in settings.skipped_change_thresholds] == [
        {k: v for k, v in s.items() if k != "reason"} for s in SKIPPED
    ]
    report = evaluate_local(settings, batch)
    v = report["validation"]
    assert report["blessed"] and v["failures"] == []
    assert v["skipped_change_thresholds"] == SKIPPED and SKIPPED[0]["reason"] == NO_BASELINE
    assert v["thresholds_checked"] == 4  # the AUC floor, overall and on 3 carriers
    assert "baseline_metrics" not in report["metrics"][0]
    # Value thresholds still apply without a baseline.
    strict = evaluate_local(
        settings_from_eval_config(change_config(auc_floor=0.99), has_baseline=False), batch
    )
    assert not strict["blessed"]
    assert {f["metric"] for f in strict["validation"]["failures"]} == {"auc"}
    # A config without a baseline spec: the same with has_baseline=False, an error as written.
    no_spec = (
        'model_specs { label_key: "late" prediction_key: "p" }'
        + change_config().split("is_baseline: true }", 1)[1]
    )
    assert settings_from_eval_config(no_spec, has_baseline=False).skipped_change_thresholds
    with pytest.raises(UsageError, match="no baseline model is configured"):
        settings_from_eval_config(no_spec)
    # With a baseline and no spec for it, the candidate's columns are copied (TFX's default).
    copied = settings_from_eval_config(no_spec, has_baseline=True)
    assert copied.baseline.prediction_key == "p" and copied.baseline.name == "baseline"
    assert not copied.skipped_change_thresholds
    # Without has_baseline the config decides (the baseline column is there).
    assert settings_from_eval_config(change_config()).baseline.prediction_key == "p_good"
    assert settings_from_eval_config(change_config()).without_baseline() == settings


def _evaluator_context(tmp_path, name, node, examples, model=None, baseline=None):
    from conveyor.dsl import ExecutionContext
    from conveyor.dsl.artifacts import Artifact

    inputs = {"examples": Artifact("Examples", str(examples), id=1)}
    if model is not None:
        inputs["model"] = model
    if baseline is not None:
        inputs["baseline_model"] = baseline
    outputs = {}
    for key, type_name in (("evaluation", "ModelEvaluation"), ("blessing", "ModelBlessing")):
        (tmp_path / name / key).mkdir(parents=True)
        outputs[key] = Artifact(type_name, str(tmp_path / name / key))
    return ExecutionContext(inputs, outputs, dict(node.parameters), [], "r1", str(tmp_path))


def _run_evaluator(tmp_path, name, examples, config, model=None, baseline=None, **params):
    """Evaluator.execute: (returned properties, validation.json, overall metrics entry, blessing files)."""
    from orchestration_components import CsvExamples

    from conveyor.components.evaluation import Evaluator

    node = Evaluator(
        examples=CsvExamples(csv="x.csv").outputs["examples"], eval_config=config, **params
    )
    ctx = _evaluator_context(tmp_path, name, node, examples, model, baseline)
    props = node.execute(ctx)
    out = tmp_path / name
    validation = json.loads((out / "evaluation" / "validation.json").read_text())
    overall = json.loads((out / "evaluation" / "metrics.json").read_text())[0]
    return props, validation, overall, sorted(os.listdir(out / "blessing"))


def test_evaluator_node_with_and_without_a_baseline(tmp_path, flights_predictions):
    """Model-free (prediction columns): no baseline_model input -> change thresholds skipped and
    blessed by the value threshold; a better baseline -> not blessed, naming its value; a worse
    one -> blessed. The blessing carries TFX's properties (blessed as 1/0, the baseline's id)."""
    from conveyor.dsl.artifacts import Artifact

    examples = flights_predictions["examples"]
    prior = Artifact("Model", str(tmp_path / "prior_model"), id=41)

    props, v, overall, files = _run_evaluator(tmp_path, "first", examples, change_config())
    assert files == ["BLESSED"] and v["blessed"] and v["failures"] == []
    assert v["skipped_change_thresholds"] == SKIPPED
    assert "baseline_metrics" not in overall and overall["metrics"]["auc"] > 0.6
    assert int(props["blessing"]["blessed"]) == 1
    assert set(props["blessing"]) == {"blessed"}  # model-free: no model, no baseline
    assert set(props["evaluation"]) == {"overall"}
    assert json.loads(props["evaluation"]["overall"])["auc"] == overall["metrics"]["auc"]

    props, v, overall, files = _run_evaluator(
        tmp_path, "better_baseline", examples, change_config("p_good"), baseline=prior
    )
    assert files == ["NOT_BLESSED"] and not v["blessed"]
    assert v["skipped_change_thresholds"] == []
    base_auc = overall["baseline_metrics"]["auc"]
    assert base_auc > overall["metrics"]["auc"] + 0.05
    [failure] = [f for f in v["failures"] if f["slice"] == {}]
    assert failure["metric"] == "auc" and failure["baseline_value"] == base_auc
    assert f"baseline {base_auc:.6g}" in failure["reason"]
    assert int(props["blessing"]["blessed"]) == 0
    assert props["blessing"]["baseline_model"] == prior.uri
    assert int(props["blessing"]["baseline_model_id"]) == 41

    props, v, overall, files = _run_evaluator(
        tmp_path, "worse_baseline", examples, change_config("p_bad"), baseline=prior
    )
    assert files == ["BLESSED"] and v["blessed"] and v["failures"] == []
    assert overall["baseline_metrics"]["auc"] < overall["metrics"]["auc"]
    assert v["thresholds_checked"] > 0 and v["skipped_change_thresholds"] == []
    assert int(props["blessing"]["blessed"]) == 1

    # Model-free, a baseline_model input needs the column of its predictions.
    with pytest.raises(UsageError, match="prediction_key names the column"):
        _run_evaluator(tmp_path, "no_column", examples, change_config(None), baseline=prior)
    from orchestration_components import CsvExamples

    from conveyor.components.evaluation import Evaluator

    node = Evaluator(
        examples=CsvExamples(csv="x.csv").outputs["examples"], label_key="late", prediction_key="p"
    )
    with pytest.raises(UsageError, match="baseline model spec"):
        node.execute(_evaluator_context(tmp_path, "label_key", node, examples, baseline=prior))


def test_cli_change_thresholds_without_a_baseline(tmp_path, flights_predictions, capsys):
    """conveyor evaluate, model-free: a config whose baseline spec names no column (and no
    --baseline-prediction-key) skips the change thresholds; with the column they are checked."""
    config = tmp_path / "config.pbtxt"
    config.write_text(change_config(None))
    common = ["evaluate", "--input", str(flights_predictions["parquet"]), "--config", str(config)]
    rc = run_cli(*common, "--no-images", "--output", str(tmp_path / "first"))
    out = capsys.readouterr().out
    assert rc == 0, out
    v = json.loads((tmp_path / "first" / "validation.json").read_text())
    assert v["blessed"] and v["skipped_change_thresholds"] == SKIPPED
    assert "skipped the change threshold on auc: no baseline model" in out
    assert (
        "not checked (auc, binary_accuracy): no baseline model"
        in (tmp_path / "first" / "index.html").read_text()
    )
    rc = run_cli(
        *common,
        "--baseline-prediction-key",
        "p_good",
        "--no-images",
        "--output",
        str(tmp_path / "second"),
    )
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED auc on slice overall" in out
    v = json.loads((tmp_path / "second" / "validation.json").read_text())
    assert v["skipped_change_thresholds"] == [] and not v["blessed"]


def test_models_with_and_without_a_baseline(tmp_path, flights_predictions, capsys):
    """With SavedModels: the node and conveyor evaluate skip change thresholds when the baseline
    model is absent (a config with a baseline spec, TFX's first run) and check them when given;
    the blessing names the current model and the baseline, with their ML Metadata ids."""
    import tensorflow as tf

    from conveyor.dsl.artifacts import Artifact

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="dep_delay")])
        def serve(self, dep_delay):
            return {"p": tf.sigmoid((dep_delay - 10.0) / 8.0)}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="dep_delay")])
        def serve_backwards(self, dep_delay):
            return {"p": tf.sigmoid((10.0 - dep_delay) / 8.0)}

    model = Model()
    cand, base = tmp_path / "cand", tmp_path / "base"
    tf.saved_model.save(model, str(cand), signatures={"serving_default": model.serve})
    tf.saved_model.save(model, str(base), signatures={"serving_default": model.serve_backwards})
    config = change_config(None).replace(' prediction_key: "p"', "")
    examples = flights_predictions["examples"]
    current = Artifact("Model", str(cand), id=7)

    props, v, overall, files = _run_evaluator(tmp_path, "first", examples, config, model=current)
    assert files == ["BLESSED"] and v["skipped_change_thresholds"] == SKIPPED
    assert "baseline_metrics" not in overall
    blessing = props["blessing"]
    assert set(blessing) == {"blessed", "current_model", "current_model_id"}
    assert int(blessing["blessed"]) == 1 and blessing["current_model"] == str(cand)
    assert int(blessing["current_model_id"]) == 7

    baseline = Artifact("Model", str(base), id=5)
    props, v, overall, files = _run_evaluator(
        tmp_path, "second", examples, config, model=current, baseline=baseline
    )
    assert files == ["BLESSED"] and v["skipped_change_thresholds"] == [] and v["failures"] == []
    assert overall["baseline_metrics"]["auc"] < 0.5 < overall["metrics"]["auc"]
    assert {k: str(x) for k, x in props["blessing"].items()} == {
        "blessed": "1",
        "current_model": str(cand),
        "current_model_id": "7",
        "baseline_model": str(base),
        "baseline_model_id": "5",
    }
    # The baseline as candidate: worse than the current model, so not blessed.
    props, v, overall, files = _run_evaluator(
        tmp_path,
        "swapped",
        examples,
        config,
        model=Artifact("Model", str(base), id=5),
        baseline=current,
    )
    assert files == ["NOT_BLESSED"] and int(props["blessing"]["blessed"]) == 0
    assert int(props["blessing"]["baseline_model_id"]) == 7

    # conveyor evaluate: no --baseline-model for a config with a baseline spec -> skipped.
    config_file = tmp_path / "config.pbtxt"
    config_file.write_text(config)
    common = ["evaluate", "--input", str(flights_predictions["parquet"]), "--model", str(cand)]
    common += ["--config", str(config_file), "--no-images"]
    assert run_cli(*common, "--output", str(tmp_path / "cli_first")) == 0
    assert "skipped the change threshold on auc" in capsys.readouterr().out
    v = json.loads((tmp_path / "cli_first" / "validation.json").read_text())
    assert v["blessed"] and v["skipped_change_thresholds"] == SKIPPED
    rc = run_cli(*common, "--baseline-model", str(base), "--output", str(tmp_path / "cli_second"))
    assert rc == 0
    v = json.loads((tmp_path / "cli_second" / "validation.json").read_text())
    assert v["skipped_change_thresholds"] == [] and v["thresholds_checked"] > 4


@pytest.mark.parametrize(("rows", "sparse"), [(0, True), (20, True), (20_000, False)])
def test_accumulator_pickles_back_equal_and_small_when_few_buckets_are_used(rows, sparse):
    # A partial accumulator travels between an engine's pre-combine and its merge: its
    # 10,000-bucket histogram goes as the buckets it uses, and must come back identical.
    import pickle

    settings = make_settings("label", "p", slice_by=["carrier"])
    kernel = MetricsKernel(settings)
    acc = kernel.create()
    if rows:
        batch = binary_data(n=rows, seed=3)
        slicer = BatchSlicer(settings, ["p"])
        slicer.check_schema(batch.schema)
        for key, chunk in slicer.split(batch):
            if key == ():
                acc = kernel.add(acc, chunk)
    wire = pickle.dumps(acc)
    back = pickle.loads(wire)
    assert back.rows == acc.rows == rows
    for mine, theirs in zip(acc.models, back.models):
        for name in ModelState.__slots__:
            a, b = getattr(mine, name), getattr(theirs, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    dense_bytes = sum(m.hist.nbytes for m in acc.models if m.hist is not None)
    assert dense_bytes >= 240_000
    if sparse:
        assert len(wire) < 20_000
    else:
        assert len(wire) > dense_bytes * 0.9
    if rows:
        as_text = lambda a: json.dumps(kernel.outputs(a), sort_keys=True, default=str)  # noqa: E731
        assert as_text(back) == as_text(acc)
