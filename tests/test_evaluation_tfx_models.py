"""The Evaluator on models as TFX module files save them: a ``serving_default`` signature on
serialized tf.Examples and a ``transform_features`` signature that gives the transformed
label and features (``model_specs[].preprocessing_function_names``), each model's own
``signature_name``, and the errors naming what is missing. Metrics are checked against numpy
over the raw data (labels, weights and slices computed here, not by the model)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError, UsageError

N = 400


def _column(values) -> pa.Array:
    a = pa.array(values)
    if pa.types.is_string(a.type):
        a = a.cast(pa.large_binary())
    elif pa.types.is_floating(a.type):
        a = a.cast(pa.float32())
    return arrow.wrap_scalars(a, a.type)


@pytest.fixture(scope="module")
def raw():
    """Seeded raw examples: a float ``x``, a string ``label`` (yes/no) and a string ``group``."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=N).astype(np.float32)
    label = np.where(x + rng.normal(scale=1.0, size=N) > 0.2, "yes", "no")
    group = rng.choice(["a", "b"], N)
    batch = pa.RecordBatch.from_arrays(
        [_column(list(map(float, x))), _column(list(label)), _column(list(group))],
        names=["x", "label", "group"],
    )
    return {"x": x, "label": label, "group": group, "batch": batch}


def _save(path, *, slope, bias, positive=b"yes", serving="serving_default", transform=None):
    """A tf.Module SavedModel as a TFX module file exports one: ``serving`` parses ``x`` and
    returns ``probabilities``; ``transform`` (if named) returns ``label_xf`` (1 where the label
    is ``positive``), ``group_xf`` (1 for group b), ``weight_xf`` (2 for group b, else 1)."""
    import tensorflow as tf

    spec = [tf.TensorSpec([None], tf.string, name="examples")]

    class Model(tf.Module):
        @tf.function(input_signature=spec)
        def serve(self, examples):
            f = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            return {"probabilities": tf.sigmoid(slope * f["x"] + bias)}

        @tf.function(input_signature=spec)
        def transform_features(self, examples):
            f = tf.io.parse_example(
                examples,
                {
                    "x": tf.io.FixedLenFeature([1], tf.float32),
                    "label": tf.io.FixedLenFeature([], tf.string),
                    "group": tf.io.FixedLenFeature([], tf.string),
                },
            )
            in_b = tf.cast(tf.equal(f["group"], b"b"), tf.int64)
            return {
                "label_xf": tf.cast(tf.equal(f["label"], positive), tf.int64),
                "group_xf": in_b,
                "weight_xf": 1.0 + tf.cast(in_b, tf.float32),
                "x_xf": f["x"] * 2.0,
            }

    model = Model()
    signatures = {serving: model.serve}
    if transform:
        signatures[transform] = model.transform_features
    tf.saved_model.save(model, str(path), signatures=signatures)
    return str(path)


def _predict(path, signature, x):
    """The model's own predictions for ``x`` (what the evaluation must have used)."""
    import tensorflow as tf

    from conveyor.components.inference.handler import release_models

    model = tf.saved_model.load(path)
    ex = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))}
            )
        ).SerializeToString()
        for v in x
    ]
    out = model.signatures[signature](examples=tf.constant(ex))["probabilities"].numpy()
    del model
    release_models()
    return out.reshape(-1).astype(np.float64)


def _expected(labels, preds, weights):
    """Weighted metrics from their definitions (AUC exact: Mann-Whitney, ties half)."""
    w = weights
    pos, neg = labels == 1, labels == 0
    greater = (preds[pos][:, None] > preds[neg][None, :]) * (w[pos][:, None] * w[neg][None, :])
    ties = (preds[pos][:, None] == preds[neg][None, :]) * (w[pos][:, None] * w[neg][None, :])
    called = preds > 0.5
    p = np.clip(preds, 1e-15, 1 - 1e-15)
    return {
        "example_count": len(labels),
        "weighted_example_count": w.sum(),
        "auc": (greater.sum() + 0.5 * ties.sum()) / (w[pos].sum() * w[neg].sum()),
        "binary_accuracy": (w * (called == (labels == 1))).sum() / w.sum(),
        "mean_label": (w * labels).sum() / w.sum(),
        "mean_prediction": (w * preds).sum() / w.sum(),
        "log_loss": (w * -(labels * np.log(p) + (1 - labels) * np.log(1 - p))).sum() / w.sum(),
    }


METRICS = """
  metrics_specs {
    metrics { class_name: "ExampleCount" }
    metrics { class_name: "WeightedExampleCount" }
    metrics { class_name: "AUC" }
    metrics { class_name: "BinaryAccuracy" }
    metrics { class_name: "MeanLabel" }
    metrics { class_name: "MeanPrediction" }
    metrics { class_name: "LogLoss" }
  }
"""


def _check(entry: dict, expected: dict, key: str = "metrics"):
    got = entry[key]
    for name, value in expected.items():
        if name == "auc":  # bucketed: within the reported bound of the exact value
            bound = entry["notes"]["auc_bucketing_error_bound"] if key == "metrics" else 1e-3
            assert abs(got[name] - value) <= bound + 1e-9, (name, got[name], value)
        else:
            assert got[name] == pytest.approx(value, rel=1e-5), (name, got[name], value)


def _evaluate(tmp_path, raw, config, batches=None, **kwargs):
    """EvaluateModel on the raw batch (in two halves, or ``batches``) in a Beam pipeline;
    the written report's files."""
    import apache_beam as beam

    from conveyor.components.evaluation import EvaluateModel, WriteEvaluation
    from conveyor.components.evaluation.preprocessing import release_preprocessing_models
    from conveyor.components.inference import release_models

    out = tmp_path / "out"
    evaluate = EvaluateModel(config, raw["batch"].schema, **kwargs)
    halves = batches or [raw["batch"].slice(0, N // 2), raw["batch"].slice(N // 2)]
    try:
        with beam.Pipeline() as p:
            result = p | beam.Create(halves) | evaluate
            result.report | WriteEvaluation(str(out), html=False, images=False)
    finally:
        release_preprocessing_models()
        release_models()
    return {
        name: json.loads((out / f"{name}.json").read_text()) for name in ("metrics", "validation")
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        # TFX's module-file layout: serving_default and transform_features.
        "candidate": _save(
            root / "candidate", slope=2.0, bias=-0.3, transform="transform_features"
        ),
        # Its own names, and an inverted label (1 for "no") with an inverted prediction.
        "baseline": _save(
            root / "baseline",
            slope=-1.0,
            bias=0.1,
            positive=b"no",
            serving="predict",
            transform="preprocess",
        ),
        # TFMA's default preprocessing signature name, called without being named.
        "default_named": _save(
            root / "default_named", slope=2.0, bias=-0.3, transform="transformed_features"
        ),
    }


def test_transform_features_give_label_weight_and_slices(tmp_path, raw, models):
    """Candidate and baseline each run their own preprocessing and prediction signatures:
    the label (``label_xf``), weight (``weight_xf``) and slicing feature (``group_xf``) exist
    only after preprocessing; the metrics per slice match numpy, per model with its own label."""
    config = f"""
      model_specs {{
        name: "candidate" label_key: "label_xf" example_weight_key: "weight_xf"
        preprocessing_function_names: "transform_features"
      }}
      model_specs {{
        name: "baseline" is_baseline: true label_key: "label_xf" example_weight_key: "weight_xf"
        signature_name: "predict" preprocessing_function_names: "preprocess"
      }}
      slicing_specs {{}}
      slicing_specs {{ feature_keys: "group_xf" }}
      {METRICS}
    """
    report = _evaluate(
        tmp_path,
        raw,
        config,
        model_path=models["candidate"],
        baseline_model_path=models["baseline"],
    )
    metrics = report["metrics"]
    assert [m["slice"] for m in metrics] == [{}, {"group_xf": 0}, {"group_xf": 1}]
    cand = _predict(models["candidate"], "serving_default", raw["x"])
    base = _predict(models["baseline"], "predict", raw["x"])
    in_b = raw["group"] == "b"
    weights = np.where(in_b, 2.0, 1.0)
    cand_label = (raw["label"] == "yes").astype(float)
    base_label = (raw["label"] == "no").astype(float)
    for entry, rows in zip(metrics, [np.ones(N, bool), ~in_b, in_b]):
        _check(entry, _expected(cand_label[rows], cand[rows], weights[rows]))
        _check(entry, _expected(base_label[rows], base[rows], weights[rows]), "baseline_metrics")
    # The inverted baseline is as good as the candidate on its own label: equal AUC up to
    # the predictions' differences (a check that it did not read the candidate's label).
    assert metrics[0]["baseline_metrics"]["mean_label"] == pytest.approx(
        1 - metrics[0]["metrics"]["mean_label"], rel=1e-6
    )
    assert report["validation"]["inference_failures"] == 0


def test_default_preprocessing_signature_and_evaluator_node(tmp_path, raw, models):
    """A model with TFMA's default ``transformed_features`` signature has it called when
    the spec names none; through the Evaluator node on an Examples directory, with the
    config's label on a transformed feature and a value threshold on AUC."""
    import pyarrow.parquet as pq
    from test_evaluation import _run_evaluator

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.example_gen.component import run_example_gen
    from conveyor.dsl.artifacts import Artifact

    pq.write_table(pa.Table.from_batches([raw["batch"]]), tmp_path / "raw.parquet")
    run_example_gen(
        {None: ReadExamples(str(tmp_path / "raw.parquet"))},
        str(tmp_path / "examples"),
        splits={"eval": 1},
    )
    config = {
        "model_specs": [{"label_key": "label_xf"}],
        "slicing_specs": [{}, {"feature_keys": ["group_xf"]}],
        "metrics_specs": [
            {
                "metrics": [
                    {"class_name": "ExampleCount"},
                    {
                        "class_name": "AUC",
                        "threshold": {"value_threshold": {"lower_bound": 0.6}},
                    },
                ]
            }
        ],
    }
    model = Artifact("Model", models["default_named"], id=3)
    props, validation, overall, files = _run_evaluator(
        tmp_path, "node", tmp_path / "examples", config, model=model
    )
    preds = _predict(models["default_named"], "serving_default", raw["x"])
    expected = _expected((raw["label"] == "yes").astype(float), preds, np.ones(N))
    assert overall["metrics"]["example_count"] == N
    assert abs(overall["metrics"]["auc"] - expected["auc"]) <= (
        overall["notes"]["auc_bucketing_error_bound"] + 1e-9
    )
    assert files == ["BLESSED"] and validation["thresholds_checked"] == 3  # overall + 2 slices
    assert int(props["blessing"]["blessed"]) == 1


def test_signature_name_is_per_model_and_the_default_otherwise(raw, models):
    """EvaluateModel's ``signature`` is the default for a spec without ``signature_name``;
    a spec's own ``signature_name`` wins."""
    from conveyor.components.evaluation import EvaluateModel

    schema = raw["batch"].schema
    config = """
      model_specs { name: "c" label_key: "label_xf" preprocessing_function_names: "preprocess" }
      model_specs { name: "b" is_baseline: true label_key: "label_xf"
                    preprocessing_function_names: "preprocess" }
      metrics_specs { metrics { class_name: "AUC" } }
    """
    # The baseline's model for both; its prediction signature "predict" given as the default.
    path = models["baseline"]
    ev = EvaluateModel(
        config, schema, model_path=path, baseline_model_path=path, signature="predict"
    )
    assert [i.signature.name for i in ev.inference] == ["predict", "predict"]
    assert [p.signatures[0].name for p in ev.preprocessing] == ["preprocess", "preprocess"]
    assert ev.columns.labels == (
        "__candidate__/transformed_features/label_xf",
        "__baseline__/transformed_features/label_xf",
    )
    own = """
      model_specs { name: "c" label_key: "label_xf" signature_name: "serving_default"
                    preprocessing_function_names: "transform_features" }
      model_specs { name: "b" is_baseline: true label_key: "label_xf"
                    preprocessing_function_names: "preprocess" }
      metrics_specs { metrics { class_name: "AUC" } }
    """
    ev = EvaluateModel(
        own, schema, model_path=models["candidate"], baseline_model_path=path, signature="predict"
    )
    assert [i.signature.name for i in ev.inference] == ["serving_default", "predict"]


@pytest.mark.parametrize(
    "spec, error, match",
    [
        (
            'label_key: "label_xf" preprocessing_function_names: "transform"',
            InputError,
            r"model spec 'candidate': preprocessing_function_names names 'transform': SavedModel "
            r".* has no signature 'transform' \(it has: serving_default, transform_features\)",
        ),
        (
            'label_key: "label_xf" signature_name: "serving" '
            'preprocessing_function_names: "transform_features"',
            InputError,
            r"model spec 'candidate' \(signature_name 'serving'\): SavedModel .* has no signature "
            r"'serving' \(it has: serving_default, transform_features\)",
        ),
        (
            'label_key: "species_xf" preprocessing_function_names: "transform_features"',
            InputError,
            r"label_key 'species_xf' of model spec 'candidate' is neither an output of its "
            r"preprocessing signatures \(group_xf, label_xf, weight_xf, x_xf\) nor a column of "
            r"the examples \(x, label, group\)",
        ),
        (
            'label_key: "label_xf" example_weight_key: "w" '
            'preprocessing_function_names: "transform_features"',
            InputError,
            r"example_weight_key 'w' of model spec 'candidate' is neither an output",
        ),
        (
            'label_key: "label_xf" preprocessing_function_names: "scale@x"',
            UsageError,
            r"'scale@x' names one of TFMA's Python preprocessing functions",
        ),
        (
            'label_key: "label_xf" preprocessing_function_names: "a" '
            'preprocessing_function_names: "a"',
            UsageError,
            r"preprocessing_function_names repeats a name",
        ),
    ],
)
def test_errors_name_the_missing_signature_or_key(raw, models, spec, error, match):
    from conveyor.components.evaluation import EvaluateModel

    config = f'model_specs {{ {spec} }} metrics_specs {{ metrics {{ class_name: "AUC" }} }}'
    with pytest.raises(error, match=match):
        EvaluateModel(config, raw["batch"].schema, model_path=models["candidate"])


def test_slicing_feature_missing_everywhere_and_model_free_preprocessing(raw, models):
    from conveyor.components.evaluation import EvaluateModel

    config = """
      model_specs { label_key: "label_xf" preprocessing_function_names: "transform_features" }
      slicing_specs { feature_keys: "island_xf" }
      metrics_specs { metrics { class_name: "AUC" } }
    """
    with pytest.raises(InputError, match="slicing column 'island_xf' is not in the examples"):
        EvaluateModel(config, raw["batch"].schema, model_path=models["candidate"])
    model_free = """
      model_specs { label_key: "label" prediction_key: "x"
                    preprocessing_function_names: "transform_features" }
      metrics_specs { metrics { class_name: "MeanLabel" } }
    """
    with pytest.raises(
        UsageError,
        match=r"model spec 'candidate' names preprocessing_function_names \['transform_features'\] "
        "but has no SavedModel",
    ):
        EvaluateModel(model_free, raw["batch"].schema)


def test_a_failing_preprocessing_batch_counts_as_failed_inference(tmp_path, raw):
    """A transform that raises on a batch: its rows are left out and counted, and the
    candidate is not blessed (as when its prediction signature fails)."""
    import tensorflow as tf

    spec = [tf.TensorSpec([None], tf.string, name="examples")]

    class Failing(tf.Module):
        @tf.function(input_signature=spec)
        def serve(self, examples):
            f = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            return {"probabilities": tf.sigmoid(f["x"])}

        @tf.function(input_signature=spec)
        def transform_features(self, examples):
            f = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            # Fails on any batch holding an x of 2.5 or more.
            check = tf.debugging.assert_less(f["x"], 2.5)
            with tf.control_dependencies([check]):
                return {"label_xf": tf.cast(f["x"] > 0, tf.int64)}

    model = Failing()
    path = str(tmp_path / "failing")
    tf.saved_model.save(
        model,
        path,
        signatures={"serving_default": model.serve, "transform_features": model.transform_features},
    )
    # The first batch has every x below 2.5, the second one row above.
    x = np.clip(raw["x"], -2.0, 2.0)
    x[N - 1] = 3.0
    batch = pa.RecordBatch.from_arrays(
        [_column(list(map(float, x))), raw["batch"].column(1), raw["batch"].column(2)],
        names=["x", "label", "group"],
    )
    config = """
      model_specs { label_key: "label_xf" preprocessing_function_names: "transform_features" }
      metrics_specs { metrics { class_name: "ExampleCount" } metrics { class_name: "MeanLabel" } }
    """
    report = _evaluate(
        tmp_path, raw, config, [batch.slice(0, N // 2), batch.slice(N // 2)], model_path=path
    )
    assert report["validation"]["inference_failures"] == N // 2
    assert not report["validation"]["blessed"]
    assert report["metrics"][0]["metrics"]["example_count"] == N // 2
    assert report["metrics"][0]["metrics"]["mean_label"] == pytest.approx(
        float((x[: N // 2] > 0).mean())
    )
