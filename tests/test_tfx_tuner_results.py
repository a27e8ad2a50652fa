"""Tuner's ``tuner_results`` output (TFX's TunerResults): every trial of the search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conveyor import tfx
from conveyor.beam_utils.io import ReadExamples
from conveyor.components.example_gen.component import run_example_gen
from conveyor.components.tuner import TUNER_RESULTS_FILE
from conveyor.dsl.artifacts import make_artifact
from conveyor.dsl.component import ExecutionContext

MODULE = """
import keras
import keras_tuner
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio
from conveyor import tfx

SCHEMA = schema_pb2.Schema()
for name, kind in (("x1", schema_pb2.FLOAT), ("x2", schema_pb2.FLOAT), ("label", schema_pb2.INT)):
    feature = SCHEMA.feature.add(name=name, type=kind)
    feature.presence.min_fraction = 1.0
    feature.shape.dim.add(size=1)


def build(hp):
    inputs = {n: keras.Input(shape=(1,), name=n) for n in ("x1", "x2")}
    x = keras.layers.Concatenate()(list(inputs.values()))
    x = keras.layers.Dense(hp.Choice("units", [2, 4]), activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def tuner_fn(fn_args):
    def data(files):
        options = tfxio.TensorFlowDatasetOptions(batch_size=10, label_key="label")
        return fn_args.data_accessor.tf_dataset_factory(files, options, SCHEMA).repeat()

    tuner = keras_tuner.RandomSearch(build, objective="val_accuracy", max_trials=2, seed=3,
                                     directory=fn_args.working_dir, project_name="tiny")
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": data(fn_args.train_files), "validation_data": data(fn_args.eval_files),
        "steps_per_epoch": 2, "validation_steps": 1, "epochs": 1, "verbose": 0})
"""


@pytest.fixture()
def examples(tmp_path):
    rng = np.random.default_rng(7)
    rows = ["x1,x2,label"] + [
        f"{a:.3f},{b:.3f},{int(a + b > 1)}" for a, b in rng.uniform(0, 1, (60, 2))
    ]
    csv = tmp_path / "tiny.csv"
    csv.write_text("\n".join(rows) + "\n")
    run_example_gen({None: ReadExamples(str(csv))}, str(tmp_path / "examples"))
    return str(tmp_path / "examples")


def test_tuner_writes_every_trial_to_tuner_results(tmp_path, examples):
    module = tmp_path / "tiny_tuning.py"
    module.write_text(MODULE)
    gen = tfx.components.CsvExampleGen(input_base=str(tmp_path))
    tuner = tfx.components.Tuner(
        module_file=str(module),
        examples=gen.outputs["examples"],
        train_args=tfx.proto.TrainArgs(num_steps=2),
        eval_args=tfx.proto.EvalArgs(num_steps=1),
    )
    assert tuner.outputs["tuner_results"].type_name == "TunerResults"
    assert tfx.types.standard_artifacts.TunerResults.TYPE_NAME == "TunerResults"
    outputs = {
        key: make_artifact(channel.type_name, str(tmp_path / key))
        for key, channel in tuner.outputs.items()
    }
    inputs = {"examples": make_artifact("Examples", examples)}
    ctx = ExecutionContext(inputs, outputs, dict(tuner.parameters), [], "r1", str(tmp_path))
    properties = tuner.execute(ctx)
    trials = json.loads((tmp_path / "tuner_results" / TUNER_RESULTS_FILE).read_text())
    assert len(trials) == 2 == properties["tuner_results"]["trials"]
    assert {t["hyperparameters"]["units"] for t in trials} <= {2, 4}
    assert all(t["status"] == "COMPLETED" and 0 <= t["score"] <= 1 for t in trials)
    assert properties["best_hyperparameters"]["best_score"] == max(t["score"] for t in trials)
