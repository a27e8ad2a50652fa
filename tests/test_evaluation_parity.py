"""Parity with TFMA: the same examples and prediction column through TFMA's
``ExtractEvaluateAndWriteResults`` (model-free) and through ``EvaluateModel``.

Example counts must match exactly, AUC / AUC-PR within 1e-3 (both use a
10,000-bucket histogram, at slightly different boundaries), every other metric
within 1e-6, on every slice.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

tfma = pytest.importorskip("tensorflow_model_analysis")

ROWS = 3000
CARRIERS = ["AA", "UA", "DL", "B6", "EV", "WN"]

EVAL_CONFIG_TEXT = """
model_specs { label_key: "late" prediction_key: "p_late" example_weight_key: "w" }
slicing_specs {}
slicing_specs { feature_keys: "carrier" }
slicing_specs { feature_keys: ["carrier", "origin"] }
metrics_specs {
  example_weights { weighted: true unweighted: true }
  metrics { class_name: "ExampleCount" }
  metrics { class_name: "WeightedExampleCount" }
  metrics { class_name: "AUC" }
  metrics { class_name: "AUCPrecisionRecall" }
  metrics { class_name: "BinaryAccuracy" }
  metrics { class_name: "Precision" }
  metrics { class_name: "Recall" }
  metrics { class_name: "F1Score" }
  metrics { class_name: "BinaryCrossEntropy" }
  metrics { class_name: "Calibration" }
  metrics { class_name: "MeanLabel" }
  metrics { class_name: "MeanPrediction" }
  metrics { class_name: "MeanSquaredError" }
  metrics { class_name: "MeanAbsoluteError" }
}
"""


def _data() -> pa.RecordBatch:
    from conveyor.beam_utils import arrow

    rng = np.random.default_rng(7)
    delay = rng.gamma(1.5, 12.0, ROWS) - 8.0
    late = (delay + rng.normal(0, 10, ROWS) > 15).astype(np.int64)
    p = (1.0 / (1.0 + np.exp(-(delay - 12.0) / 9.0))).astype(np.float32)
    p = np.clip(p, 1e-4, 1 - 1e-4).astype(np.float32)
    carrier = rng.choice(CARRIERS, ROWS, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    origin = rng.choice(["EWR", "JFK", "LGA"], ROWS)
    w = rng.choice([0.5, 1.0, 2.0], ROWS).astype(np.float32)
    cols = {
        "carrier": pa.array([c.encode() for c in carrier], pa.large_binary()),
        "origin": pa.array([o.encode() for o in origin], pa.large_binary()),
        "late": pa.array(late),
        "p_late": pa.array(p),
        "w": pa.array(w),
    }
    arrays = [arrow.wrap_scalars(v, v.type) for v in cols.values()]
    return pa.RecordBatch.from_arrays(arrays, names=list(cols))


def _tfma_metrics(batch: pa.RecordBatch, tmp_path) -> dict:
    import tensorflow as tf
    from google.protobuf import text_format

    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        rows = batch.to_pylist()
        for row in rows:
            ex = tf.train.Example()
            for k, v in row.items():
                f = ex.features.feature[k]
                if isinstance(v[0], bytes):
                    f.bytes_list.value.extend(v)
                elif isinstance(v[0], int):
                    f.int64_list.value.extend(v)
                else:
                    f.float_list.value.extend(v)
            writer.write(ex.SerializeToString())
    config = text_format.Parse(EVAL_CONFIG_TEXT, tfma.EvalConfig())
    out = str(tmp_path / "tfma")
    tfma.run_model_analysis(eval_config=config, data_location=path, output_path=out)
    results = {}
    for m in tfma.load_metrics(out):
        key = []
        for k in m.slice_key.single_slice_keys:
            which = k.WhichOneof("kind")
            value = getattr(k, which)
            key.append((k.column, value.decode() if isinstance(value, bytes) else value))
        values = {}
        for kv in m.metric_keys_and_values:
            v = kv.value
            if not v.HasField("double_value"):
                continue
            # Ours: example_count counts examples, every other metric is weighted.
            weighted = kv.key.HasField("example_weighted") and kv.key.example_weighted.value
            if weighted == (kv.key.name != "example_count"):
                values[kv.key.name] = v.double_value.value
        results[tuple(sorted(key))] = values
    return results


def _ours(batch: pa.RecordBatch, tmp_path) -> dict:
    import apache_beam as beam
    from pipeline_helpers import CollectJson, load_json

    from conveyor.components.evaluation import EvaluateModel, settings_from_eval_config

    settings = settings_from_eval_config(EVAL_CONFIG_TEXT)
    # Several batches, so merging accumulators is exercised.
    pieces = [batch.slice(i, 700) for i in range(0, batch.num_rows, 700)]
    with beam.Pipeline() as p:
        result = p | beam.Create(pieces) | EvaluateModel(settings, schema=batch.schema)
        result.report | CollectJson(tmp_path / "report")
    (report,) = load_json(tmp_path / "report")
    return {tuple(sorted(e["slice"].items())): e["metrics"] for e in report["metrics"]}


def test_metrics_match_tfma_per_slice(tmp_path):
    batch = _data()
    theirs = _tfma_metrics(batch, tmp_path)
    ours = _ours(batch, tmp_path)
    assert set(ours) == set(theirs)
    assert len(ours) == 1 + len(CARRIERS) + 3 * len(CARRIERS)
    names = {
        "example_count": 0,
        "weighted_example_count": 1e-6,
        "auc": 1e-3,
        "auc_precision_recall": 1e-3,
        "binary_accuracy": 1e-6,
        "precision": 1e-6,
        "recall": 1e-6,
        "f1_score": 1e-6,
        "binary_crossentropy": 1e-6,
        "calibration": 1e-6,
        "mean_label": 1e-6,
        "mean_prediction": 1e-6,
        "mean_squared_error": 1e-6,
        "mean_absolute_error": 1e-6,
    }
    for key, values in theirs.items():
        for name, tol in names.items():
            mine, their = ours[key][name], values[name]
            if their is None or (isinstance(their, float) and math.isnan(their)):
                assert mine is None, (key, name, mine)
                continue
            if tol == 0:
                assert mine == their, (key, name, mine, their)
            else:
                assert mine == pytest.approx(their, abs=tol, rel=tol), (key, name, mine, their)
