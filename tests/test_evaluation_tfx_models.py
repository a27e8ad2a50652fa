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

    from conveyor.components.inference import release_models

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


@np.errstate(invalid="ignore", divide="ignore")
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
    halves = batches or [raw["batch"].slice(0, N // 2), raw["batch"].slice(N // 2)]
    evaluate = EvaluateModel(config, halves[0].schema, **kwargs)
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


def test_cross_slicing_on_a_transformed_feature(tmp_path, raw, models):
    """cross_slicing_specs compare group_xf=0 (baseline slice) with group_xf=1: each metric is
    the baseline slice's minus the comparison slice's (TFMA's), for both models; a
    cross_slice_threshold is checked on that cross slice and names it when it fails."""
    config = """
      model_specs {
        name: "candidate" label_key: "label_xf" preprocessing_function_names: "transform_features"
      }
      model_specs {
        name: "baseline" is_baseline: true label_key: "label_xf"
        signature_name: "predict" preprocessing_function_names: "preprocess"
      }
      cross_slicing_specs {
        baseline_spec { feature_values { key: "group_xf" value: "0" } }
        slicing_specs { feature_values { key: "group_xf" value: "1" } }
      }
      cross_slicing_specs { baseline_spec {} }
      metrics_specs {
        metrics { class_name: "ExampleCount" }
        metrics { class_name: "MeanLabel"
          cross_slice_thresholds {
            cross_slicing_specs {
              baseline_spec { feature_values { key: "group_xf" value: "0" } }
              slicing_specs { feature_values { key: "group_xf" value: "1" } }
            }
            threshold { value_threshold { upper_bound { value: -1.0 } } }
          }
        }
        metrics { class_name: "MeanPrediction" }
        cross_slice_thresholds {
          key: "mean_prediction"
          value { thresholds {
            cross_slicing_specs { baseline_spec {} }
            threshold { value_threshold { lower_bound { value: -1.0 } upper_bound { value: 1.0 } } }
          } }
        }
      }
    """
    report = _evaluate(
        tmp_path,
        raw,
        config,
        model_path=models["candidate"],
        baseline_model_path=models["baseline"],
    )
    by_slice = {json.dumps(m["slice"]): m for m in report["metrics"]}
    assert set(by_slice) == {"{}", '{"group_xf": 0}', '{"group_xf": 1}'}
    cross = json.loads((tmp_path / "out" / "cross_slice_metrics.json").read_text())
    pairs = [(c["baseline_slice"], c["comparison_slice"]) for c in cross]
    # The first spec's pair, then the overall slice against every other slice.
    assert pairs == [
        ({"group_xf": 0}, {"group_xf": 1}),
        ({}, {"group_xf": 0}),
        ({}, {"group_xf": 1}),
    ]
    cand = _predict(models["candidate"], "serving_default", raw["x"])
    in_b = raw["group"] == "b"
    label = (raw["label"] == "yes").astype(float)
    base_label = 1 - label
    first = cross[0]
    assert first["metrics"]["example_count"] == (~in_b).sum() - in_b.sum()
    assert first["metrics"]["mean_label"] == pytest.approx(
        label[~in_b].mean() - label[in_b].mean(), abs=1e-9
    )
    assert first["metrics"]["mean_prediction"] == pytest.approx(
        cand[~in_b].mean() - cand[in_b].mean(), rel=1e-5
    )
    assert first["baseline_metrics"]["mean_label"] == pytest.approx(
        base_label[~in_b].mean() - base_label[in_b].mean(), abs=1e-9
    )
    for row in cross:
        b, c = (
            by_slice[json.dumps(row["baseline_slice"])],
            by_slice[json.dumps(row["comparison_slice"])],
        )
        for name in ("example_count", "mean_label", "mean_prediction"):
            assert row["metrics"][name] == pytest.approx(b["metrics"][name] - c["metrics"][name])
    validation = report["validation"]
    # mean_label's upper bound -1 fails on its one cross slice; mean_prediction holds on two.
    assert validation["thresholds_checked"] == 3
    (failure,) = validation["failures"]
    assert failure["metric"] == "mean_label"
    assert failure["cross_slice"] == {
        "baseline_slice": {"group_xf": 0},
        "comparison_slice": {"group_xf": 1},
    }
    assert "above the upper bound -1" in failure["reason"]
    assert not validation["blessed"]


@pytest.mark.parametrize(
    "extra, match",
    [
        (
            'metrics_specs { metrics { class_name: "MeanLabel" cross_slice_thresholds { '
            "cross_slicing_specs { baseline_spec {} } threshold { change_threshold { "
            "direction: HIGHER_IS_BETTER absolute { value: 0 } } } } } }",
            "a change_threshold on cross slices is not supported",
        ),
        (
            'metrics_specs { metrics { class_name: "MeanLabel" cross_slice_thresholds { '
            'cross_slicing_specs { baseline_spec { feature_keys: "g" } } threshold { '
            "value_threshold { lower_bound { value: 0 } } } } } }",
            r"the cross_slice_threshold's cross slicing spec .* is not among the "
            "cross_slicing_specs evaluated",
        ),
        (
            'metrics_specs { metrics { class_name: "MeanLabel" cross_slice_thresholds { '
            "threshold { value_threshold { lower_bound { value: 0 } } } } } }",
            "mean_label: a cross_slice_threshold needs cross_slicing_specs",
        ),
    ],
)
def test_cross_slice_threshold_refusals(extra, match):
    from conveyor.components.evaluation.config import settings_from_eval_config

    config = (
        'model_specs { label_key: "l" prediction_key: "p" } '
        "cross_slicing_specs { baseline_spec {} } " + extra
    )
    with pytest.raises(UsageError, match=match):
        settings_from_eval_config(config)


# --- multi-class: binarize and aggregate, on penguins with a transform_features label ---

SPECIES = ("Adelie", "Chinstrap", "Gentoo")


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """palmerpenguins (complete rows) as two batches, and a SavedModel whose
    ``transform_features`` gives ``species_xf`` (the species' index) and whose
    ``serving_default`` gives three class probabilities from bill and flipper length."""
    import palmerpenguins
    import tensorflow as tf

    df = palmerpenguins.load_penguins().dropna().reset_index(drop=True)
    n = len(df)
    batch = pa.RecordBatch.from_arrays(
        [
            _column(list(df["species"])),
            _column(list(df["island"])),
            _column(list(df["bill_length_mm"].astype(float))),
            _column(list(df["flipper_length_mm"].astype(float))),
        ],
        names=["species", "island", "bill_length_mm", "flipper_length_mm"],
    )
    spec = [tf.TensorSpec([None], tf.string, name="examples")]
    lengths = {
        "bill_length_mm": tf.io.FixedLenFeature([], tf.float32),
        "flipper_length_mm": tf.io.FixedLenFeature([], tf.float32),
    }

    class Model(tf.Module):
        @tf.function(input_signature=spec)
        def serve(self, examples):
            f = tf.io.parse_example(examples, lengths)
            bill, flipper = f["bill_length_mm"], f["flipper_length_mm"]
            logits = tf.stack(
                [
                    -(bill - 39.0) / 3.0 - (flipper - 190.0) / 10.0,
                    (bill - 48.0) / 3.0 - (flipper - 195.0) / 10.0,
                    (flipper - 217.0) / 6.0,
                ],
                axis=1,
            )
            return {"probabilities": tf.nn.softmax(logits)}

        @tf.function(input_signature=spec)
        def transform_features(self, examples):
            f = tf.io.parse_example(
                examples,
                {
                    "species": tf.io.FixedLenFeature([], tf.string),
                    "island": tf.io.FixedLenFeature([], tf.string),
                },
            )
            index = tf.argmax(
                tf.cast(tf.equal(f["species"][:, None], tf.constant(SPECIES)[None, :]), tf.int64),
                axis=1,
            )
            return {"species_xf": index, "island_xf": f["island"]}

    model = Model()
    path = str(tmp_path_factory.mktemp("penguin_model") / "model")
    tf.saved_model.save(
        model,
        path,
        signatures={"serving_default": model.serve, "transform_features": model.transform_features},
    )
    loaded = tf.saved_model.load(path)

    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    k: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
                    for k, v in (("bill_length_mm", b), ("flipper_length_mm", fl))
                }
            )
        ).SerializeToString()
        for b, fl in zip(df["bill_length_mm"], df["flipper_length_mm"])
    ]
    probs = loaded.signatures["serving_default"](examples=tf.constant(examples))["probabilities"]
    probs = probs.numpy().astype(np.float64)
    del loaded
    label = df["species"].map({s: i for i, s in enumerate(SPECIES)}).to_numpy().astype(float)
    return {
        "path": path,
        "batches": [batch.slice(0, n // 2), batch.slice(n // 2)],
        "schema": batch.schema,
        "probs": probs,
        "label": label,
        "island": df["island"].to_numpy(),
        "n": n,
    }


@np.errstate(invalid="ignore", divide="ignore")
def _binary(labels, preds, weights=None):
    w = np.ones(len(labels)) if weights is None else weights
    out = _expected(labels, preds, w)
    called = preds > 0.5
    tp = (w * (called & (labels == 1))).sum()
    out["precision"] = tp / (w * called).sum()
    out["recall"] = tp / (w * (labels == 1)).sum()
    return out


def test_binarize_and_aggregate_on_a_transformed_multiclass_label(tmp_path, penguins):
    """binarize class_ids (per-class AUC, precision, recall, mean label), micro, macro and
    weighted macro averages over class_weights, beside SparseCategoricalAccuracy, on the
    label ``species_xf`` that only ``transform_features`` gives; each equals numpy over the
    model's probabilities, overall and on a slice; the spec's AUC threshold applies to every
    class and to the average, and fails naming the class."""
    config = """
      model_specs { label_key: "species_xf" preprocessing_function_names: "transform_features" }
      slicing_specs {}
      slicing_specs { feature_values { key: "island_xf" value: "Biscoe" } }
      metrics_specs { metrics { class_name: "SparseCategoricalAccuracy" } }
      metrics_specs {
        binarize { class_ids { values: [0, 1, 2] } }
        metrics { class_name: "AUC" }
        metrics { class_name: "Precision" }
        metrics { class_name: "Recall" }
        metrics { class_name: "MeanLabel" }
        metrics { class_name: "ExampleCount" }
        thresholds { key: "auc" value { value_threshold { lower_bound { value: 0.97 } } } }
      }
      metrics_specs { aggregate { micro_average: true } metrics { class_name: "AUC" }
                      metrics { class_name: "MeanLabel" } }
      metrics_specs {
        aggregate { macro_average: true class_weights { key: 0 value: 1 }
                    class_weights { key: 1 value: 1 } class_weights { key: 2 value: 2 } }
        metrics { class_name: "Recall" }
      }
      metrics_specs {
        aggregate { weighted_macro_average: true class_weights { key: 0 value: 1 }
                    class_weights { key: 2 value: 1 } }
        metrics { class_name: "Precision" }
      }
    """
    report = _evaluate(tmp_path, None, config, penguins["batches"], model_path=penguins["path"])
    probs, label = penguins["probs"], penguins["label"]
    for entry, rows in zip(
        report["metrics"], [np.ones(penguins["n"], bool), penguins["island"] == "Biscoe"]
    ):
        got, p, y = entry["metrics"], probs[rows], label[rows]
        assert got["example_count"] == rows.sum()
        assert got["sparse_categorical_accuracy"] == pytest.approx((p.argmax(1) == y).mean())
        per_class = {c: _binary((y == c).astype(float), p[:, c]) for c in range(3)}
        for c, want in per_class.items():
            for name in ("precision", "recall", "mean_label"):
                value = got[f"{name}/classId:{c}"]
                if np.isnan(want[name]):
                    assert value is None
                else:
                    assert value == pytest.approx(want[name], rel=1e-6), (name, c)
            if (y == c).any() and (y != c).any():
                bound = entry["notes"][f"auc_bucketing_error_bound/classId:{c}"]
                assert abs(got[f"auc/classId:{c}"] - want["auc"]) <= bound + 1e-9
        micro = _binary((y[:, None] == np.arange(3)).astype(float).ravel(), p.ravel())
        bound = entry["notes"]["auc_bucketing_error_bound/micro_average"]
        assert abs(got["auc/micro_average"] - micro["auc"]) <= bound + 1e-9
        assert got["mean_label/micro_average"] == pytest.approx(1 / 3)
        if entry["slice"] == {}:
            recall = [per_class[c]["recall"] for c in range(3)]
            assert got["recall/macro_average"] == pytest.approx(
                (recall[0] + recall[1] + 2 * recall[2]) / 4, rel=1e-6
            )
            share = np.array([(y == 0).sum(), (y == 2).sum()], float)
            share /= share.sum()
            precision = np.array([per_class[0]["precision"], per_class[2]["precision"]])
            assert got["precision/weighted_macro_average"] == pytest.approx(
                (share * precision).sum() / share.sum(), rel=1e-6
            )
    failures = report["validation"]["failures"]
    failed = sorted({(f["metric"], json.dumps(f["slice"])) for f in failures})
    overall = report["metrics"][0]["metrics"]
    expected = sorted(
        (f"auc/classId:{c}", json.dumps(e["slice"]))
        for e in report["metrics"]
        for c in range(3)
        if e["metrics"][f"auc/classId:{c}"] is None or e["metrics"][f"auc/classId:{c}"] < 0.97
    )
    assert failed == expected and failed  # the 0.97 floor fails some class, not all
    assert len(failed) < 6 and overall["auc/classId:2"] > 0.97


def test_binarized_confidence_intervals_and_refusals(tmp_path, penguins):
    """Bootstrap intervals cover the per-class and averaged values; what binarize and
    aggregate cannot do is an error naming it."""
    from conveyor.components.evaluation.config import settings_from_eval_config

    config = """
      model_specs { label_key: "species_xf" preprocessing_function_names: "transform_features" }
      options { compute_confidence_intervals { value: true } }
      metrics_specs {
        binarize { class_ids { values: [1] } }
        aggregate { macro_average: true class_weights { key: 0 value: 1 } class_weights { key: 1 value: 1 } }
        metrics { class_name: "MeanLabel" }
      }
    """
    report = _evaluate(tmp_path, None, config, penguins["batches"], model_path=penguins["path"])
    overall = report["metrics"][0]
    assert set(overall["metrics"]) == {
        "example_count",
        "mean_label/classId:1",
        "mean_label/macro_average",
    }
    label = penguins["label"]
    assert overall["metrics"]["mean_label/classId:1"] == pytest.approx((label == 1).mean())
    assert overall["metrics"]["mean_label/macro_average"] == pytest.approx(
        ((label == 0).mean() + (label == 1).mean()) / 2
    )
    for name in ("mean_label/classId:1", "mean_label/macro_average"):
        ci = overall["confidence_intervals"][name]
        assert ci["lower"] < overall["metrics"][name] < ci["upper"] and ci["std_error"] > 0

    model = 'model_specs { label_key: "l" prediction_key: "p" } '
    for spec, match in [
        (
            "binarize { k_list { values: 1 } }",
            r"metrics_specs\[0\].binarize.k_list is not supported",
        ),
        ("binarize { top_k_list { values: 1 } }", r"binarize.top_k_list is not supported"),
        ("aggregate { micro_average: true top_k_list { values: 2 } }", "aggregate.top_k_list"),
        ("binarize { }", r"metrics_specs\[0\].binarize needs class_ids"),
        ("binarize { class_ids { values: [1, 1] } }", "must be distinct and >= 0"),
        ("aggregate { }", "aggregate needs one of micro_average, macro_average"),
        ("aggregate { macro_average: true }", "macro_average needs class_weights"),
        (
            "aggregate { micro_average: true class_weights { key: 0 value: -1 } }",
            "class 0 weight -1.0",
        ),
    ]:
        with pytest.raises(UsageError, match=match):
            settings_from_eval_config(
                model + f'metrics_specs {{ {spec} metrics {{ class_name: "AUC" }} }}'
            )
    for metrics, match in [
        ('metrics { class_name: "Accuracy" }', "'accuracy' cannot be binarized or aggregated"),
        ('metrics { class_name: "CalibrationPlot" }', "a plot cannot be macro_averaged"),
    ]:
        with pytest.raises(UsageError, match=match):
            settings_from_eval_config(
                model + "metrics_specs { aggregate { macro_average: true class_weights { key: 0 "
                f"value: 1 }} }} {metrics} }}"
            )
    with pytest.raises(UsageError, match="binarize or aggregate read predictions as vectors"):
        settings_from_eval_config(
            model + 'metrics_specs { metrics { class_name: "AUC" } } '
            'metrics_specs { binarize { class_ids { values: 0 } } metrics { class_name: "AUC" } }'
        )


# --- parity with TFMA on the same config: binarize, aggregate and cross slices ---

PARITY_CONFIG = """
  model_specs { label_key: "label" prediction_key: "scores" }
  slicing_specs {}
  slicing_specs { feature_keys: "group" }
  cross_slicing_specs { baseline_spec {} slicing_specs { feature_keys: "group" } }
  metrics_specs { metrics { class_name: "ExampleCount" }
                  metrics { class_name: "SparseCategoricalAccuracy" } }
  metrics_specs { binarize { class_ids { values: [0, 1, 2] } }
                  metrics { class_name: "AUC" } metrics { class_name: "Precision" }
                  metrics { class_name: "MeanLabel" } }
  metrics_specs { aggregate { micro_average: true }
                  metrics { class_name: "AUC" } metrics { class_name: "Recall" } }
  metrics_specs { aggregate { macro_average: true class_weights { key: 0 value: 1 }
                              class_weights { key: 1 value: 1 } class_weights { key: 2 value: 2 } }
                  metrics { class_name: "Precision" } }
  metrics_specs { aggregate { weighted_macro_average: true class_weights { key: 0 value: 1 }
                              class_weights { key: 1 value: 1 } class_weights { key: 2 value: 1 } }
                  metrics { class_name: "Recall" } }
"""


def _multiclass_data(rows=900):
    rng = np.random.default_rng(11)
    label = rng.choice(3, rows, p=[0.5, 0.3, 0.2])
    logits = rng.normal(size=(rows, 3)) + 1.5 * np.eye(3)[label]
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    group = rng.choice(["x", "y"], rows)
    cols = {
        "label": arrow.wrap_scalars(pa.array(label.astype(np.int64)), pa.int64()),
        "group": arrow.wrap_scalars(
            pa.array([g.encode() for g in group], pa.large_binary()), pa.large_binary()
        ),
        "scores": pa.LargeListArray.from_arrays(
            pa.array(np.arange(rows + 1) * 3), pa.array(scores.ravel().astype(np.float32))
        ),
    }
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))


def _tfma_key_name(key) -> str:
    name = key.name
    if key.HasField("sub_key") and key.sub_key.HasField("class_id"):
        return f"{name}/classId:{key.sub_key.class_id.value}"
    if key.HasField("aggregation_type"):
        return f"{name}/{key.aggregation_type.WhichOneof('type')}"
    return name


def _slice_of(single_slice_keys) -> tuple:
    out = []
    for k in single_slice_keys:
        value = getattr(k, k.WhichOneof("kind"))
        out.append((k.column, value.decode() if isinstance(value, bytes) else value))
    return tuple(sorted(out))


def test_binarize_aggregate_and_cross_slices_match_tfma(tmp_path):
    """The same examples and EvalConfig through TFMA (model-free) and EvaluateModel: per-class,
    micro, macro and weighted-macro metrics and the cross-slice differences agree (AUC within
    1e-3: both bucket predictions; the rest within 1e-6)."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from google.protobuf import text_format

    batch = _multiclass_data()
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for row in batch.to_pylist():
            ex = tf.train.Example()
            ex.features.feature["label"].int64_list.value.extend(row["label"])
            ex.features.feature["group"].bytes_list.value.extend(row["group"])
            ex.features.feature["scores"].float_list.value.extend(row["scores"])
            writer.write(ex.SerializeToString())
    out = str(tmp_path / "tfma")
    tfma.run_model_analysis(
        eval_config=text_format.Parse(PARITY_CONFIG, tfma.EvalConfig()),
        data_location=path,
        output_path=out,
    )
    theirs, their_cross = {}, {}
    for m in tfma.load_metrics(out):
        values = {
            _tfma_key_name(kv.key): kv.value.double_value.value
            for kv in m.metric_keys_and_values
            if kv.value.HasField("double_value")
        }
        if m.HasField("cross_slice_key"):
            k = m.cross_slice_key
            pair = (
                _slice_of(k.baseline_slice_key.single_slice_keys),
                _slice_of(k.comparison_slice_key.single_slice_keys),
            )
            their_cross[pair] = values
        else:
            theirs[_slice_of(m.slice_key.single_slice_keys)] = values

    report = _evaluate(tmp_path, None, PARITY_CONFIG, [batch.slice(0, 400), batch.slice(400)])
    ours = {tuple(sorted(e["slice"].items())): e["metrics"] for e in report["metrics"]}
    cross = json.loads((tmp_path / "out" / "cross_slice_metrics.json").read_text())
    our_cross = {
        (
            tuple(sorted(c["baseline_slice"].items())),
            tuple(sorted(c["comparison_slice"].items())),
        ): c["metrics"]
        for c in cross
    }
    assert set(ours) == set(theirs) and len(ours) == 3
    assert set(our_cross) == set(their_cross) and len(our_cross) == 2
    compared = 0
    for mine_all, their_all in [(ours, theirs), (our_cross, their_cross)]:
        for key, their_values in their_all.items():
            for name, mine in mine_all[key].items():
                # TFMA keys a weighted macro average as a macro average (AggregationType).
                their_name = name.replace("/weighted_macro_average", "/macro_average")
                assert their_name in their_values, (key, name, sorted(their_values))
                tol = 1e-3 if name.startswith("auc") else 1e-6
                assert mine == pytest.approx(their_values[their_name], abs=tol), (key, name)
                compared += 1
    assert compared == (3 + 2) * 15  # 15 metrics on 3 slices and 2 cross slices


def test_preprocess_fn_loads_its_model_once_and_transforms_whole_batches(monkeypatch, raw, models):
    """PreprocessFn, pickled as a runner ships it: one model load in setup for all batches,
    one call per batch, the outputs appended as columns (values checked against numpy)."""
    import pickle

    import tensorflow as tf

    from conveyor.components.evaluation.config import ModelSettings
    from conveyor.components.evaluation.preprocessing import PreprocessFn, plan_preprocessing

    loads = []
    real_load = tf.saved_model.load

    def counting_load(path, *args, **kwargs):
        loads.append(path)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "load", counting_load)
    schema = raw["batch"].schema
    model = ModelSettings("c", "label_xf", preprocessing_function_names=("transform_features",))
    pre = plan_preprocessing(model, models["candidate"], schema, schema, "__candidate__/")
    assert pre.outputs["label_xf"] == "__candidate__/transformed_features/label_xf"
    fn = pickle.loads(pickle.dumps(PreprocessFn(pre)))
    fn.setup()
    try:
        outs = [out for i in range(0, N, 100) for out in fn.process(raw["batch"].slice(i, 100))]
    finally:
        fn.teardown()
    assert loads == [models["candidate"]]
    assert len(outs) == N // 100 and all(o.schema == pre.output_schema for o in outs)
    table = pa.Table.from_batches(outs)
    column = table.column("__candidate__/transformed_features/label_xf").combine_chunks()
    assert np.array_equal(column.flatten().to_numpy(), (raw["label"] == "yes").astype(np.int64))
    x_xf = table.column("__candidate__/transformed_features/x_xf").combine_chunks()
    assert np.allclose(x_xf.flatten().to_numpy(), 2 * raw["x"])
    assert table.column("x").equals(pa.Table.from_batches([raw["batch"]]).column("x"))
