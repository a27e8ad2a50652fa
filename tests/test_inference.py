"""Tests of components/inference: BulkInference, its CLI and its checks.

A small Keras 3 model is trained here on palmerpenguins and exported with four
signatures: ``serving_default`` (serialized tf.Example in), ``predict_tensors``
(one named float tensor per feature), ``classify`` and ``regress`` (tf.Example
in, their ``method_name`` set as an Estimator export would have it).
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import portable_args
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
SPECIES = [b"Adelie", b"Chinstrap", b"Gentoo"]
PYTHON = sys.executable


def _penguins_csv() -> Path:
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def penguins_batch() -> pa.RecordBatch:
    """All 344 penguins: id, four FLOAT features (null where NA), species, island, year."""
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(
        _penguins_csv(),
        convert_options=pcsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True),
    )
    n = table.num_rows
    cols = {"id": arrow.wrap_scalars(pa.array(np.arange(n, dtype=np.int64)), pa.int64())}
    for f in FEATURES:
        cols[f] = arrow.wrap_scalars(table.column(f).cast(pa.float32()), pa.float32())
    for f in ("species", "island"):
        cols[f] = arrow.to_column(table.column(f), arrow.column_type(arrow.BYTES))
    cols["year"] = arrow.to_column(table.column("year"), arrow.column_type(arrow.INT))
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))


def complete_rows(batch: pa.RecordBatch) -> np.ndarray:
    mask = np.ones(batch.num_rows, dtype=bool)
    for f in FEATURES:
        mask &= np.asarray(
            batch.column(batch.schema.get_field_index(f)).is_valid().to_numpy(zero_copy_only=False)
        )
    return mask


def feature_matrix(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """Each feature as a float32 (rows, 1) array; rows must be complete."""
    return {
        f: batch.column(batch.schema.get_field_index(f))
        .flatten()
        .to_numpy()
        .astype(np.float32)[:, None]
        for f in FEATURES
    }


def _set_method_name(export_dir: str, signature: str, method: str) -> None:
    """Marks a signature as classify/regress, as TF1/Estimator exports do (TF2 cannot)."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(export_dir, "saved_model.pb")
    sm = saved_model_pb2.SavedModel.FromString(Path(pb).read_bytes())
    for mg in sm.meta_graphs:
        mg.signature_def[signature].method_name = method
    Path(pb).write_bytes(sm.SerializeToString())


def write_examples_dir(root: Path, splits: dict[str, pa.RecordBatch]) -> Path:
    """An Examples directory of gzip TFRecords: root/Split-<name>/data_tfrecord-00000-of-00001.gz."""
    import tensorflow as tf
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    for name, batch in splits.items():
        folder = root / f"Split-{name}"
        folder.mkdir(parents=True)
        encoder = RecordBatchToExamplesEncoder(arrow.to_metadata_schema(batch.schema))
        with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), "GZIP") as w:
            for rec in encoder.encode(batch):
                w.write(rec)
    return root


def read_records(pattern: str) -> list[bytes]:
    import tensorflow as tf

    paths = sorted(glob.glob(pattern))
    assert paths, f"no files match {pattern}"
    return [r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")]


def read_examples(pattern: str) -> pa.RecordBatch:
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    return ExamplesToRecordBatchDecoder().DecodeBatch(read_records(pattern))


def column(batch, name) -> pa.Array:
    return batch.column(batch.schema.get_field_index(name))


def ids_of(batch) -> np.ndarray:
    return column(batch, "id").flatten().to_numpy()


def probabilities_by_id(batch, name="probabilities") -> dict[int, np.ndarray]:
    probs = column(batch, name).flatten().to_numpy().reshape(batch.num_rows, -1)
    return dict(zip(ids_of(batch).tolist(), probs))


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def penguins() -> pa.RecordBatch:
    return penguins_batch()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, penguins):
    """Trains the model (a few epochs) and exports it; returns (path, expected probabilities by id)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    complete = arrow.take_rows(penguins, complete_rows(penguins))
    x = feature_matrix(complete)
    species = np.asarray(column(complete, "species").flatten().to_pylist())
    y = np.searchsorted(np.asarray(SPECIES), species)
    stacked = np.concatenate([x[f] for f in FEATURES], axis=1)

    inputs = {f: keras.Input(shape=(1,), name=f, dtype="float32") for f in FEATURES}
    h = keras.layers.Concatenate()([inputs[f] for f in FEATURES])
    h = keras.layers.Normalization(mean=stacked.mean(0), variance=stacked.var(0))(h)
    h = keras.layers.Dense(8, activation="relu")(h)
    out = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)

    spec = {f: tf.io.FixedLenFeature([1], tf.float32) for f in FEATURES}
    labels = tf.constant(SPECIES)

    def from_examples(serialized):
        return {"probabilities": model(tf.io.parse_example(serialized, spec))}

    def from_tensors(bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g):
        feats = dict(zip(FEATURES, (bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g)))
        return {"probabilities": model(feats)}

    def classify(serialized):
        p = model(tf.io.parse_example(serialized, spec))
        return {"classes": tf.tile(labels[None, :], [tf.shape(p)[0], 1]), "scores": p}

    def regress(serialized):
        return {"outputs": model(tf.io.parse_example(serialized, spec))[:, :1]}

    examples_spec = [tf.TensorSpec([None], tf.string, name="examples")]
    inputs_spec = [tf.TensorSpec([None], tf.string, name="inputs")]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", from_examples, input_signature=examples_spec)
    archive.add_endpoint(
        "predict_tensors",
        from_tensors,
        input_signature=[tf.TensorSpec([None, 1], tf.float32, name=f) for f in FEATURES],
    )
    archive.add_endpoint("classify", classify, input_signature=inputs_spec)
    archive.add_endpoint("regress", regress, input_signature=inputs_spec)
    path = str(tmp_path_factory.mktemp("model") / "penguins")
    archive.write_out(path, verbose=False)
    _set_method_name(path, "classify", "tensorflow/serving/classify")
    _set_method_name(path, "regress", "tensorflow/serving/regress")

    expected = model.predict(x, batch_size=1024, verbose=0)
    return path, dict(zip(ids_of(complete).tolist(), expected))


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory, penguins):
    """Complete penguins in two splits (train: even ids, eval: odd ids)."""
    complete = arrow.take_rows(penguins, complete_rows(penguins))
    even = ids_of(complete) % 2 == 0
    return write_examples_dir(
        tmp_path_factory.mktemp("examples"),
        {"train": arrow.take_rows(complete, even), "eval": arrow.take_rows(complete, ~even)},
    )


def infer_with_output_examples(out: Path, examples: Path, model: str, *more) -> int:
    """``conveyor infer`` of an Examples folder writing ``output_examples`` too; its exit status.

    ``more``: further flags, then ``--`` and the Beam flags if any.
    """
    return run_cli(
        "infer",
        "--examples",
        examples,
        "--model",
        model,
        "--output",
        out,
        "--output-examples",
        *more,
    )


def assert_predictions_match(out: Path, expected: dict, splits=("eval", "train")):
    got = {}
    for split in splits:
        got.update(
            probabilities_by_id(
                read_examples(str(out / "output_examples" / f"Split-{split}" / "*.gz"))
            )
        )
    assert sorted(got) == sorted(expected)
    for i, p in got.items():
        np.testing.assert_allclose(p, expected[i], rtol=0, atol=1e-6)


# --- the checks made before any data moves --------------------------------------


def test_model_path_missing_or_not_a_saved_model(tmp_path, penguins):
    from conveyor.components.inference import BulkInference

    with pytest.raises(InputError, match="does not exist"):
        BulkInference(str(tmp_path / "nowhere"), penguins.schema)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a SavedModel"):
        BulkInference(str(tmp_path / "empty"), penguins.schema)


def test_signature_missing_names_the_ones_there(model_dir, penguins):
    from conveyor.components.inference import BulkInference

    with pytest.raises(InputError, match=r"no signature 'serve'.*predict_tensors"):
        BulkInference(model_dir[0], penguins.schema, "serve")


def test_missing_or_mistyped_feature_is_named(model_dir, penguins):
    from conveyor.components.inference import BulkInference, read_signature

    path = model_dir[0]
    sig = read_signature(path)
    assert set(sig.parsed_features) == set(FEATURES)
    assert all(f.required and f.dtype == "float32" for f in sig.parsed_features.values())

    lacking = pa.schema([f for f in penguins.schema if f.name != "body_mass_g"])
    for signature in ("serving_default", "predict_tensors", "classify"):
        with pytest.raises(InputError, match="'body_mass_g'"):
            BulkInference(path, lacking, signature)
    mistyped = pa.schema(
        [
            pa.field(f.name, arrow.column_type(arrow.INT)) if f.name == "bill_depth_mm" else f
            for f in penguins.schema
        ]
    )
    for signature in ("serving_default", "predict_tensors", "regress"):
        with pytest.raises(InputError, match=r"'bill_depth_mm'.*INT"):
            BulkInference(path, mistyped, signature)


def test_cli_reports_bad_model_as_input_error(tmp_path, examples_dir, capsys):
    rc = run_cli(
        "infer",
        "--examples",
        examples_dir,
        "--model",
        tmp_path / "missing",
        "--output",
        tmp_path / "out",
    )
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_names_mistyped_feature_of_csv_input(tmp_path, model_dir, capsys):
    """penguins.csv holds body_mass_g as integers (INT); the model parses it as float."""
    rc = run_cli(
        "infer", "--input", _penguins_csv(), "--model", model_dir[0], "--output", tmp_path / "out"
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "'body_mass_g'" in err and "INT" in err and "float32" in err


# --- predictions ----------------------------------------------------------------


def test_example_signature_matches_model_and_writes_bulkinferrer_layout(
    tmp_path, model_dir, examples_dir
):
    from tensorflow_serving.apis import prediction_log_pb2

    path, expected = model_dir
    out = tmp_path / "out"
    assert infer_with_output_examples(out, examples_dir, path) == 0

    assert_predictions_match(out, expected)
    files = sorted(os.listdir(out / "inference_result"))
    assert files and all(f.startswith("prediction_logs-") and f.endswith(".gz") for f in files)
    assert all("-of-" in f for f in files)
    logs = [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in read_records(str(out / "inference_result" / "*.gz"))
    ]
    assert len(logs) == len(expected)

    import tensorflow as tf

    for log in logs[:20]:
        req, resp = log.predict_log.request, log.predict_log.response
        assert req.model_spec.signature_name == "serving_default"
        example = tf.train.Example.FromString(tf.make_ndarray(req.inputs["examples"])[0])
        row_id = example.features.feature["id"].int64_list.value[0]
        probs = tf.make_ndarray(resp.outputs["probabilities"])
        assert probs.shape == (1, 3)
        np.testing.assert_allclose(probs[0], expected[row_id], atol=1e-6)

    summary = json.loads((out / "inference_summary.json").read_text())
    assert summary["examples_in"] == summary["examples_predicted"] == len(expected)
    assert summary["examples_dead_lettered"] == 0


def test_batch_boundaries_do_not_change_results(tmp_path, model_dir, penguins):
    import apache_beam as beam

    from conveyor.beam_utils.io import WriteExamples
    from conveyor.components.inference import AppendPredictions, BulkInference

    path, expected = model_dir
    complete = arrow.take_rows(penguins, complete_rows(penguins))
    # Input batches of uneven sizes, so pieces and batches straddle them.
    cuts = [0, 5, 100, 101, 250, complete.num_rows]
    inputs = [complete.slice(a, b - a) for a, b in itertools.pairwise(cuts)]
    sizes = {"one": (1, 1), "odd": (7, 13), "big": (64, 4096)}
    with beam.Pipeline() as p:
        batches = p | beam.Create(inputs, reshuffle=False)
        for name, (lo, hi) in sizes.items():
            for signature in ("serving_default", "predict_tensors"):
                infer = BulkInference(
                    path, complete.schema, signature, min_batch_size=lo, max_batch_size=hi
                )
                result = batches | f"Infer[{name},{signature}]" >> infer
                (
                    result.predictions
                    | f"Append[{name},{signature}]"
                    >> AppendPredictions(result.prediction_schema, result.prediction_columns)
                    | f"Write[{name},{signature}]"
                    >> WriteExamples(str(tmp_path / name / signature))
                )
    for name in sizes:
        for signature in ("serving_default", "predict_tensors"):
            got = probabilities_by_id(read_examples(str(tmp_path / name / signature / "*.gz")))
            assert sorted(got) == sorted(expected)
            for i, probs in got.items():
                np.testing.assert_allclose(probs, expected[i], rtol=0, atol=1e-6)


def test_tensor_signature_dead_letters_incomplete_rows(tmp_path, model_dir, penguins):
    """Rows with a missing feature fail their batch; the run goes on and counts reconcile."""
    path, expected = model_dir
    examples = write_examples_dir(tmp_path / "examples", {"all": penguins})
    out = tmp_path / "out"
    rc = run_cli(
        "infer",
        "--examples",
        examples,
        "--model",
        path,
        "--signature",
        "predict_tensors",
        "--batch-size",
        "1:1",
        "--output",
        out,
        "--output-examples",
    )
    assert rc == 0
    assert_predictions_match(out, expected, splits=("all",))

    dead = read_examples(str(out / "dead_letters" / "Split-all" / "*.gz"))
    incomplete = ids_of(penguins)[~complete_rows(penguins)]
    assert sorted(ids_of(dead).tolist()) == sorted(incomplete.tolist())
    errors = set(column(dead, "inference_error").flatten().to_pylist())
    assert errors and all(b"no value" in e and b"input '" in e for e in errors)

    summary = json.loads((out / "inference_summary.json").read_text())
    assert summary["examples_in"] == penguins.num_rows
    assert summary["examples_predicted"] == len(expected)
    assert summary["examples_dead_lettered"] == len(incomplete)
    assert (
        summary["examples_in"] == summary["examples_predicted"] + summary["examples_dead_lettered"]
    )
    logs = read_records(str(out / "inference_result" / "*.gz"))
    assert len(logs) == len(expected)

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    by_features = {
        tuple(np.concatenate([feature_matrix(penguins.slice(i, 1))[f][0] for f in FEATURES])): i
        for i in expected
    }
    for record in logs[:20]:
        log = prediction_log_pb2.PredictionLog.FromString(record).predict_log
        assert log.request.model_spec.signature_name == "predict_tensors"
        assert sorted(log.request.inputs) == sorted(FEATURES)
        values = [tf.make_ndarray(log.request.inputs[f]) for f in FEATURES]
        assert all(v.shape == (1, 1) and v.dtype == np.float32 for v in values)
        row_id = by_features[tuple(np.concatenate(values).reshape(-1))]
        probs = tf.make_ndarray(log.response.outputs["probabilities"])
        np.testing.assert_allclose(probs[0], expected[row_id], atol=1e-6)


def test_classify_and_regress_logs(tmp_path, model_dir, examples_dir):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path, expected = model_dir
    for signature in ("classify", "regress"):
        out = tmp_path / signature
        assert (
            run_cli(
                "infer",
                "--examples",
                examples_dir,
                "--splits",
                "eval",
                "--model",
                path,
                "--signature",
                signature,
                "--output",
                out,
            )
            == 0
        )
        logs = [
            prediction_log_pb2.PredictionLog.FromString(r)
            for r in read_records(str(out / "inference_result" / "*.gz"))
        ]
        eval_ids = [i for i in expected if i % 2 == 1]
        assert len(logs) == len(eval_ids)
        seen = set()
        for log in logs:
            if signature == "classify":
                assert log.WhichOneof("log_type") == "classify_log"
                (example,) = log.classify_log.request.input.example_list.examples
                (result,) = log.classify_log.response.result.classifications
                assert [c.label.encode() for c in result.classes] == SPECIES
                got = np.array([c.score for c in result.classes], dtype=np.float32)
            else:
                assert log.WhichOneof("log_type") == "regress_log"
                (example,) = log.regress_log.request.input.example_list.examples
                (result,) = log.regress_log.response.result.regressions
                got = np.array([result.value], dtype=np.float32)
            row_id = example.features.feature["id"].int64_list.value[0]
            seen.add(row_id)
            want = expected[row_id] if signature == "classify" else expected[row_id][:1]
            np.testing.assert_allclose(got, want, atol=1e-6)
        assert seen == set(eval_ids)
        assert isinstance(tf.train.Example(), type(example))


def test_loads_tf_keras_2_saved_model(tmp_path, penguins):
    """A model exported by tf_keras (TF_USE_LEGACY_KERAS=1) loads too (run in a subprocess)."""
    import apache_beam as beam

    from conveyor.beam_utils.io import WriteExamples
    from conveyor.components.inference import AppendPredictions, BulkInference, dead_letter_examples

    path = tmp_path / "legacy"
    script = f"""
import numpy as np, tensorflow as tf
import tf_keras
keras = tf.keras
assert keras.Model is tf_keras.Model, "TF_USE_LEGACY_KERAS did not select tf_keras"
inp = keras.Input(shape=(1,), name="bill_length_mm")
model = keras.Model(inp, keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")(inp))
@tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="bill_length_mm")])
def serve(x):
    return {{"y": model(x)}}
tf.saved_model.save(model, {str(path)!r}, signatures={{"serving_default": serve}})
"""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([PYTHON, "-c", script], check=True, env=env, timeout=180)

    names = ["id", "bill_length_mm"]
    batch = pa.RecordBatch.from_arrays([column(penguins, n) for n in names], names=names).slice(
        0, 1
    )
    with beam.Pipeline() as p:
        result = p | beam.Create([batch]) | BulkInference(str(path), batch.schema)
        (
            result.predictions
            | "Append" >> AppendPredictions(result.prediction_schema, result.prediction_columns)
            | ("Write" >> WriteExamples(str(tmp_path / "out")))
        )
        (
            result.dead_letters
            | "DeadLetters" >> beam.Map(dead_letter_examples)
            | ("WriteDead" >> WriteExamples(str(tmp_path / "dead")))
        )
    assert not read_records(str(tmp_path / "dead" / "*.gz"))
    out = read_examples(str(tmp_path / "out" / "*.gz"))
    x = column(batch, "bill_length_mm").flatten().to_numpy()[0]
    np.testing.assert_allclose(column(out, "y").flatten().to_numpy(), [x + 1, x + 1], rtol=1e-6)


# --- other runners --------------------------------------------------------------


def test_multi_processing_gives_same_predictions(tmp_path, model_dir, examples_dir):
    path, expected = model_dir
    out = tmp_path / "out"
    rc = infer_with_output_examples(
        out,
        examples_dir,
        path,
        "--batch-size",
        "16:64",
        "--",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    )
    assert rc == 0
    assert_predictions_match(out, expected)
    assert len(read_records(str(out / "inference_result" / "*.gz"))) == len(expected)


def test_portable_runner_gives_same_predictions(tmp_path, model_dir, examples_dir, job_endpoint):
    path, expected = model_dir
    out = tmp_path / "out"
    rc = infer_with_output_examples(out, examples_dir, path, "--", *portable_args(job_endpoint))
    assert rc == 0
    assert_predictions_match(out, expected)


# --- the pipeline component -----------------------------------------------------


def test_summary_counts_must_reconcile():
    from conveyor.components.inference.component import summarize

    info = {"model": "m", "signature": "serving_default", "splits": ["a", "b"]}
    counts = {
        ("a", "rows_read"): 10,
        ("a", "rows_rejected_on_read"): 1,
        ("a", "examples_in"): 9,
        ("a", "examples_predicted"): 7,
        ("a", "examples_dead_lettered"): 2,
        ("b", "rows_read"): 4,
        ("b", "examples_in"): 4,
        ("b", "examples_predicted"): 4,
    }
    summary = summarize(counts, info)
    assert summary["examples_in"] == 13 and summary["examples_predicted"] == 11
    assert summary["examples_dead_lettered"] == 2 and summary["rows_rejected_on_read"] == 1
    assert summary["split_counts"]["b"]["examples_dead_lettered"] == 0
    with pytest.raises(RuntimeError, match=r"split 'a': examples in \(9\) != predicted"):
        summarize({**counts, ("a", "examples_predicted"): 6}, info)
    with pytest.raises(
        RuntimeError,
        match=r"split 'b': row counts do not reconcile: read 5 != accepted 4 \+ rejected 0",
    ):
        summarize({**counts, ("b", "rows_read"): 5}, info)


def test_bulk_inferrer_parameters_are_checked():
    from orchestration_components import CopyModel, CsvExamples

    from conveyor.components.inference import BulkInferrer
    from conveyor.components.inference.node import batch_bounds
    from conveyor.orchestration import PipelineDefinitionError

    gen = CsvExamples(csv="x.csv")
    model = CopyModel(saved_model="m")
    assert batch_bounds("256:4096") == (256, 4096)
    assert batch_bounds("8") == batch_bounds(8) == (8, 8)
    assert batch_bounds((16, 64)) == batch_bounds([16, 64]) == (16, 64)
    for bad in ("0:4", "9:4", "a:b", (4,), True):
        with pytest.raises(PipelineDefinitionError, match="batch_size"):
            BulkInferrer(
                examples=gen.outputs["examples"], model=model.outputs["model"], batch_size=bad
            )
    with pytest.raises(PipelineDefinitionError, match="splits"):
        BulkInferrer(examples=gen.outputs["examples"], model=model.outputs["model"], splits=[])
    with pytest.raises(PipelineDefinitionError, match="missing required input 'model'"):
        BulkInferrer(examples=gen.outputs["examples"])


def test_bulk_inferrer_in_a_pipeline(tmp_path, model_dir):
    """Examples + a Model (TFX Trainer layout) -> PredictionLogs; a NOT_BLESSED model is skipped."""
    import csv

    import tensorflow as tf
    from orchestration_components import Bless, CopyModel, CsvExamples
    from tensorflow_serving.apis import prediction_log_pb2

    from conveyor.components.inference import BulkInferrer
    from conveyor.orchestration import LocalDagRunner, Metadata, Pipeline

    path, expected = model_dir
    # The rows the model can take (no missing feature), as ExampleGen would read them.
    data = tmp_path / "penguins.csv"
    with open(_penguins_csv(), newline="") as f, open(data, "w", newline="") as g:
        rows = csv.DictReader(f)
        writer = csv.DictWriter(g, rows.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in rows if all(r[c] != "NA" for c in FEATURES))
    schema = {"species": "BYTES", "island": "BYTES", "sex": "BYTES", "year": "INT"}
    schema.update({c: "FLOAT" for c in FEATURES})

    gen = CsvExamples(csv=str(data), schema=schema)
    model = CopyModel(saved_model=path)
    not_blessed = Bless(blessed=False)
    examples, saved = gen.outputs["examples"], model.outputs["model"]
    infer = BulkInferrer(examples=examples, model=saved)
    skipped = BulkInferrer(
        id="InferSkipped",
        examples=examples,
        model=saved,
        model_blessing=not_blessed.outputs["blessing"],
    )
    pipeline = Pipeline(
        "infer", root=str(tmp_path / "root"), components=[gen, model, not_blessed, infer, skipped]
    )
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)
    outputs = {
        cid: md.latest_outputs("infer", result["run_id"], cid)
        for cid in ("CsvExamples", "BulkInferrer", "InferSkipped")
    }
    split_rows = json.loads(
        (Path(outputs["CsvExamples"]["examples"].uri) / "summary.json").read_text()
    )["splits"]
    assert sorted(split_rows) == ["eval", "train"]
    assert sum(split_rows.values()) == len(expected)

    artifact = outputs["BulkInferrer"]["inference_result"]
    assert artifact.type_name == "InferenceResult"
    assert int(artifact.properties["examples_predicted"]) == len(expected)
    assert int(artifact.properties["examples_dead_lettered"]) == 0
    assert json.loads(artifact.properties["splits"]) == ["eval", "train"]
    summary = json.loads((Path(artifact.uri) / "inference_summary.json").read_text())
    assert summary["examples_in"] == summary["examples_predicted"] == len(expected)
    assert summary["model"].endswith("/Format-Serving")
    logs = [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in read_records(f"{artifact.uri}/inference_result/prediction_logs-*.gz")
    ]
    assert len(logs) == len(expected)
    # The model's own predictions, in some order.
    got = np.concatenate(
        [tf.make_ndarray(log.predict_log.response.outputs["probabilities"]) for log in logs]
    )
    want = np.stack(list(expected.values()))
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(want, axis=0), rtol=0, atol=1e-6)

    skip = outputs["InferSkipped"]["inference_result"]
    assert os.listdir(skip.uri) == ["SKIPPED_NOT_BLESSED"]
    assert skip.properties["skipped"] == "NOT_BLESSED"


def test_bulk_inferrer_blessing_model_dir_and_splits(tmp_path):
    """What decides whether and on what BulkInferrer runs, before any Beam pipeline."""
    from orchestration_components import CopyModel, CsvExamples

    from conveyor.components.inference import BulkInferrer
    from conveyor.components.inference.node import is_blessed, serving_model_dir
    from conveyor.dsl import ExecutionContext
    from conveyor.dsl.artifacts import Artifact

    blessing = tmp_path / "blessing"
    blessing.mkdir()
    with pytest.raises(InputError, match="without a BLESSED or NOT_BLESSED"):
        is_blessed(str(blessing))
    (blessing / "BLESSED").touch()
    assert is_blessed(str(blessing))
    (blessing / "NOT_BLESSED").touch()
    assert not is_blessed(str(blessing))

    model = tmp_path / "model"
    model.mkdir()
    assert serving_model_dir(str(model)) == str(model)
    (model / "Format-Serving").mkdir()
    assert serving_model_dir(str(model)) == str(model / "Format-Serving")

    examples = write_examples_dir(tmp_path / "examples", {"train": penguins_batch().slice(0, 3)})
    node = BulkInferrer(
        examples=CsvExamples(csv="x.csv").outputs["examples"],
        model=CopyModel(saved_model="m").outputs["model"],
        splits="train,test",
    )
    out = tmp_path / "out"
    out.mkdir()
    ctx = ExecutionContext(
        {"examples": Artifact("Examples", str(examples)), "model": Artifact("Model", str(model))},
        {"inference_result": Artifact("InferenceResult", str(out))},
        dict(node.parameters),
        [],
        "r1",
        str(tmp_path),
    )
    with pytest.raises(InputError, match=r"no split\(s\) test \(it has train\)"):
        node.execute(ctx)


# --- a clean exit: the loaded model is freed while TensorFlow is up -------------

#: What Python prints when a TensorFlow function is garbage-collected after
#: TensorFlow's modules are torn down (a loaded model freed at interpreter exit).
EXIT_NOISE = "Exception ignored"

TFT_LAYER_PREPROCESSING = """
import tensorflow as tf
import tensorflow_transform as tft


def preprocessing_fn(inputs):
    mass = tf.cast(tf.sparse.to_dense(inputs["body_mass_g"])[:, 0], tf.float32)
    island = tf.sparse.to_dense(inputs["island"], default_value=b"")[:, 0]
    return {"mass_z": tft.scale_to_z_score(mass), "island_id": tft.compute_and_apply_vocabulary(island)}
"""


def build_tft_layer_model(root: Path) -> dict:
    """Examples with a 0/1 ``heavy`` label and a SavedModel that embeds a tf.Transform layer.

    Such a model (what the flights template's Trainer exports) holds loaded
    TensorFlow functions in reference cycles: if the process still holds it at
    exit, each of them prints "Exception ignored in: AtomicFunction.__del__".
    Returns ``{"csv", "examples", "model", "schema"}`` (paths).
    """
    import pyarrow.csv as pcsv
    import tensorflow as tf
    import tensorflow_transform as tft
    from google.protobuf import text_format

    from conveyor.beam_utils.files import read_summary
    from conveyor.beam_utils.io import ReadExamples, read_examples_dir
    from conveyor.components.example_gen import run_example_gen
    from conveyor.components.transform import load_preprocessing_fn, run_transform

    table = pcsv.read_csv(_penguins_csv(), convert_options=pcsv.ConvertOptions(null_values=["NA"]))
    table = table.filter(pa.array(np.asarray(table.column("body_mass_g").is_valid())))
    heavy = (table.column("body_mass_g").to_numpy() > 4000).astype(np.int64)
    table = table.append_column("heavy", pa.array(heavy))
    csv = root / "penguins.csv"
    pcsv.write_csv(table, csv)
    examples = root / "examples"
    run_example_gen({None: ReadExamples(str(csv))}, str(examples))
    schema = arrow.to_metadata_schema(arrow.make_schema(read_summary(str(examples))["features"]))
    (root / "schema.pbtxt").write_text(text_format.MessageToString(schema))

    module = root / "prep.py"
    module.write_text(TFT_LAYER_PREPROCESSING)
    reads = {s: read_examples_dir(str(examples), s) for s in ("train", "eval")}
    run_transform(reads, str(root / "transform"), load_preprocessing_fn(str(module)))
    output = tft.TFTransformOutput(str(root / "transform" / "transform_graph"))
    layer = output.transform_features_layer()
    raw_spec = output.raw_feature_spec()

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            features = self.layer(tf.io.parse_example(serialized, raw_spec))
            return {"p": tf.sigmoid(features["mass_z"])}

    model = Model()
    tf.saved_model.save(model, str(root / "model"), signatures={"serving_default": model.serve})
    return {
        "csv": str(csv),
        "examples": str(examples),
        "model": str(root / "model"),
        "schema": str(root / "schema.pbtxt"),
    }


@pytest.fixture(scope="module")
def tft_layer_model(tmp_path_factory):
    return build_tft_layer_model(tmp_path_factory.mktemp("tft_layer_model"))


def conveyor_cli(*argv) -> subprocess.CompletedProcess:
    """``conveyor ARGV`` in a fresh process (what happens at its exit is the point)."""
    return subprocess.run(
        [PYTHON, "-m", "conveyor.orchestration.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_infer_exits_without_tensorflow_noise(tmp_path, tft_layer_model):
    proc = conveyor_cli(
        "infer",
        "--examples",
        tft_layer_model["examples"],
        "--model",
        tft_layer_model["model"],
        "--output",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "342 examples in, 342 predicted, 0 dead-lettered" in proc.stdout
    assert EXIT_NOISE not in proc.stderr and "AtomicFunction" not in proc.stderr, proc.stderr[
        -3000:
    ]


def test_cli_monitor_with_a_model_exits_without_tensorflow_noise(tmp_path, tft_layer_model):
    import shutil

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(tft_layer_model["csv"], incoming / "part-0.csv")
    proc = conveyor_cli(
        "monitor",
        "--input",
        incoming / "*.csv",
        "--schema",
        tft_layer_model["schema"],
        "--output",
        tmp_path / "out",
        "--window-seconds",
        "60",
        "--model",
        tft_layer_model["model"],
        "--poll-interval",
        "1",
        "--stop-after",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model: 342 examples predicted, 0 dead-lettered" in proc.stdout
    assert EXIT_NOISE not in proc.stderr and "AtomicFunction" not in proc.stderr, proc.stderr[
        -3000:
    ]


def test_bulk_inferrer_and_evaluator_nodes_exit_without_tensorflow_noise(tmp_path, tft_layer_model):
    """Each component runs in its own process; its log is where the noise would go."""
    from orchestration_components import CopyModel, CsvExamples

    from conveyor.components import Evaluator
    from conveyor.components.inference import BulkInferrer
    from conveyor.orchestration import LocalDagRunner, Pipeline

    gen = CsvExamples(csv=tft_layer_model["csv"])
    model = CopyModel(saved_model=tft_layer_model["model"])
    infer = BulkInferrer(examples=gen.outputs["examples"], model=model.outputs["model"])
    evaluate = Evaluator(
        examples=gen.outputs["examples"], model=model.outputs["model"], label_key="heavy"
    )
    pipeline = Pipeline(
        "quiet_exit", root=str(tmp_path / "root"), components=[gen, model, infer, evaluate]
    )
    result = LocalDagRunner(quiet=True).run(pipeline)
    logs = tmp_path / "root" / ".conveyor" / "runs" / result["run_id"]
    for cid in ("BulkInferrer", "Evaluator"):
        text = (logs / f"{cid}.log").read_text()
        assert "STATUS " in text
        assert EXIT_NOISE not in text and "AtomicFunction" not in text, (cid, text[-3000:])
