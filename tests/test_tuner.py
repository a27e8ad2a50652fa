"""Tuner: the user's ``tuner_fn``, the search, the best hyperparameters as TFX writes them, the
node's settings (shared with the Trainer), ``conveyor tune``, and TFX's Tuner on the node.

The module files here tune a one-layer Keras model on a small seeded dataset
(``x1``, ``x2``; ``label`` is whether ``x1 + x2 > 1``) read through
``fn_args.data_accessor``; each search is two trials of a few steps.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples, read_examples_dir
from conveyor.beam_utils.user_modules import UserCodeError
from conveyor.components import ExampleGen, Trainer, Tuner
from conveyor.components.example_gen.component import run_example_gen
from conveyor.components.tuner import TunerFnResult, run_tuner
from conveyor.dsl import PipelineDefinitionError, layout

TUNER_MODULE = """
import json
import os

import keras
import keras_tuner
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

from conveyor.components.tuner import TunerFnResult


def schema():
    s = schema_pb2.Schema()
    for name, kind in (("x1", schema_pb2.FLOAT), ("x2", schema_pb2.FLOAT), ("label", schema_pb2.INT)):
        f = s.feature.add(name=name, type=kind)
        f.shape.dim.add(size=1)
        f.presence.min_fraction = 1.0
    return s


def dataset(fn_args, files):
    return fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=8, label_key="label", shuffle_seed=1),
        schema())


def build(hp):
    inputs = {n: keras.Input(shape=(1,), name=n) for n in ("x1", "x2")}
    x = keras.layers.Concatenate()(list(inputs.values()))
    x = keras.layers.Dense(hp.Choice("units", [2, 6]), activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 0.01, 0.1, sampling="log")),
                  "binary_crossentropy", metrics=["accuracy"])
    return model


def tuner_fn(fn_args):
    record = fn_args.custom_config.get("record")
    if record:
        with open(record, "w") as f:
            json.dump({"working_dir": fn_args.working_dir, "train_files": fn_args.train_files,
                       "eval_files": fn_args.eval_files, "train_steps": fn_args.train_steps,
                       "exists": os.path.isdir(fn_args.working_dir)}, f)
    tuner = keras_tuner.RandomSearch(build, objective="val_accuracy", max_trials=2, seed=5,
                                     directory=fn_args.working_dir, project_name="tiny")
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "x": dataset(fn_args, fn_args.train_files),
        "validation_data": dataset(fn_args, fn_args.eval_files),
        "steps_per_epoch": fn_args.train_steps, "validation_steps": fn_args.eval_steps,
        "epochs": 1, "verbose": 0})
"""

RUN_FN = """

def run_fn(fn_args):
    import tensorflow as tf

    hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    model = build(hp)
    model.fit(dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps,
              epochs=1, verbose=0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        spec = {n: tf.io.FixedLenFeature([1], tf.float32) for n in ("x1", "x2")}
        return {"p": model(tf.io.parse_example(serialized, spec))}

    tf.saved_model.save(model, fn_args.serving_model_dir, signatures={"serving_default": serve})
    return {"units": hp.get("units")}
"""


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """90 seeded rows as an Examples directory (train/eval)."""
    base = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(19)
    x1, x2 = rng.uniform(0, 1, 90), rng.uniform(0, 1, 90)
    lines = ["x1,x2,label"] + [f"{a:.4f},{b:.4f},{int(a + b > 1)}" for a, b in zip(x1, x2)]
    csv = base / "tiny.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = str(base / "examples")
    run_example_gen({None: ReadExamples(str(csv))}, out)
    return out


@pytest.fixture()
def module(tmp_path):
    path = tmp_path / "tiny_tuning.py"
    path.write_text(TUNER_MODULE + RUN_FN)
    return str(path)


def _reads(examples_dir):
    return {s: read_examples_dir(examples_dir, s) for s in ("train", "eval")}


def test_run_tuner_writes_the_best_config_and_keeps_its_trials(examples, module, tmp_path):
    import keras_tuner

    out, work = tmp_path / "best", tmp_path / "work"
    summary = run_tuner(
        _reads(examples), str(out), module, working_dir=str(work), train_steps=3, eval_steps=2
    )
    assert os.listdir(out) == [layout.HYPERPARAMETERS_FILE]
    config = json.loads((out / layout.HYPERPARAMETERS_FILE).read_text())
    hp = keras_tuner.HyperParameters.from_config(config)
    assert hp.get("units") in (2, 6) and 0.01 <= hp.get("learning_rate") <= 0.1
    assert hp.values == summary["best_hyperparameters"]
    assert [t["status"] for t in summary["trials"]] == ["COMPLETED", "COMPLETED"]
    assert summary["objective"] == "val_accuracy"
    assert summary["best_score"] == max(t["score"] for t in summary["trials"])
    assert json.loads((work / "tuner_summary.json").read_text()) == summary
    assert (work / "tiny").is_dir()  # the tuner's trials, in fn_args.working_dir


def test_without_a_working_dir_a_temporary_one_is_removed(examples, module, tmp_path):
    record = tmp_path / "record.json"
    run_tuner(
        _reads(examples),
        str(tmp_path / "best"),
        module,
        train_steps=2,
        eval_steps=1,
        custom_config={"record": str(record)},
    )
    got = json.loads(record.read_text())
    assert got["exists"] and not os.path.exists(got["working_dir"])
    assert got["train_steps"] == 2
    assert got["train_files"] == [os.path.join(examples, "Split-train", "*")]
    assert got["eval_files"] == [os.path.join(examples, "Split-eval", "*")]


@pytest.mark.parametrize(
    "body, error, match",
    [
        (
            "    return {'tuner': 1}",
            InputError,
            r"must return a TunerFnResult\(tuner=..., fit_kwargs",
        ),
        ("    return TunerFnResult(tuner=object(), fit_kwargs={})", InputError, "without search"),
        (
            "    return TunerFnResult(tuner=Fake(), fit_kwargs=[1])",
            InputError,
            "fit_kwargs of type list",
        ),
        (
            "    return TunerFnResult(tuner=Fake(), fit_kwargs={})",
            InputError,
            "no trial of the search finished",
        ),
        (
            "    return 1 / 0",
            UserCodeError,
            r"ZeroDivisionError.*\[at .*bad_tuner.py:\d+ in tuner_fn",
        ),
        (
            "    return TunerFnResult(tuner=Fake(fail=True), fit_kwargs={})",
            UserCodeError,
            r"tuner.search of tuner_fn .* raised ValueError: no data",
        ),
    ],
)
def test_what_tuner_fn_returns_is_checked(examples, tmp_path, body, error, match):
    source = (
        "from conveyor.components.tuner import TunerFnResult\n\n"
        "class Fake:\n"
        "    def __init__(self, fail=False):\n"
        "        self.fail = fail\n"
        "    def search(self, **kwargs):\n"
        "        if self.fail:\n"
        "            raise ValueError('no data')\n"
        "    def get_best_hyperparameters(self):\n"
        "        return []\n\n"
        f"def tuner_fn(fn_args):\n{body}\n"
    )
    path = tmp_path / "bad_tuner.py"
    path.write_text(source)
    with pytest.raises(error, match=match):
        run_tuner(_reads(examples), str(tmp_path / "best"), str(path))
    assert not (tmp_path / "best").exists()


def test_missing_function_and_split_are_input_errors(examples, tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("X = 1\n")
    with pytest.raises(InputError, match="defines no function 'tuner_fn'"):
        run_tuner(_reads(examples), str(tmp_path / "best"), str(path))
    with pytest.raises(InputError, match=r"no split 'test'"):
        run_tuner(_reads(examples), str(tmp_path / "best"), str(path), eval_split="test")


def test_tuner_fn_result_is_tfx_named_tuple():
    result = TunerFnResult(tuner="t", fit_kwargs={"x": 1})
    assert result._fields == ("tuner", "fit_kwargs") and result.tuner == "t"
    from conveyor import tfx

    assert tfx.components.TunerFnResult is TunerFnResult


# -- the node's settings ------------------------------------------------------------------------


@pytest.fixture()
def gen(tmp_path):
    return ExampleGen(input_base=str(tmp_path))


def test_tuner_node_takes_tfx_settings_in_their_plain_form(gen, module):
    tuner = Tuner(
        examples=gen.outputs["examples"],
        module_file=module,
        train_args='{"splits": ["train"], "num_steps": "30"}',
        eval_args={"num_steps": 5},
        tune_args={"num_parallel_trials": 1},
    )
    assert tuner.parameters["train_args"] == {"splits": ["train"], "num_steps": 30}
    assert tuner.parameters["eval_args"] == {"num_steps": 5}
    assert tuner.outputs["best_hyperparameters"].type_name == "HyperParameters"
    trainer = Trainer(
        examples=gen.outputs["examples"],
        module_file=module,
        hyperparameters=tuner.outputs["best_hyperparameters"],
    )
    assert trainer.inputs["hyperparameters"] is tuner.outputs["best_hyperparameters"]
    assert set(trainer.upstream) == {gen, tuner}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "give module_file, or tuner_fn as a Python path"),
        ({"tune_args": {"num_parallel_trials": 3}}, "runs one trial at a time"),
        ({"tune_args": {"trials": 3}}, r"unknown field\(s\) \['trials'\]"),
        ({"train_args": {"splits": "train"}}, r"train_args.splits: a list of split names"),
        ({"train_args": {"num_steps": -1}}, r"train_args.num_steps: a whole number"),
        ({"train_args": {"num_steps": 5}, "train_steps": 6}, "disagree: give one"),
        ({"eval_args": {"splits": ["a"]}, "eval_split": "b"}, "disagree: give one"),
        ({"train_args": "{nope"}, "train_args: not JSON"),
        ({"custom_config": [1]}, "custom_config must be a dict"),
        ({"tuner_fn": "no_such_module_here.tuner_fn"}, "not importable from here"),
    ],
)
def test_tuner_node_settings_errors_name_the_setting(gen, module, kwargs, match):
    if kwargs and "tuner_fn" not in kwargs:
        kwargs = {"module_file": module, **kwargs}
    with pytest.raises(PipelineDefinitionError, match=match):
        Tuner(examples=gen.outputs["examples"], **kwargs)


def test_a_tfx_python_path_becomes_the_module_file(gen, tmp_path, monkeypatch):
    package = tmp_path / "my_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "penguin.py").write_text("def run_fn(fn_args):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trainer = Trainer(examples=gen.outputs["examples"], run_fn="my_models.penguin.run_fn")
    assert trainer.parameters["module_file"] == str(package / "penguin.py")
    assert trainer.parameters["run_fn"] == "run_fn"


def test_trainer_hyperparameters_as_a_value(gen, module):
    import keras_tuner

    trainer = Trainer(
        examples=gen.outputs["examples"], module_file=module, hyperparameters={"units": 6}
    )
    config = trainer.parameters["hyperparameters"]
    assert keras_tuner.HyperParameters.from_config(config).get("units") == 6
    assert "hyperparameters" not in trainer.inputs
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [3, 4])
    again = Trainer(examples=gen.outputs["examples"], module_file=module, hyperparameters=hp)
    assert again.parameters["hyperparameters"] == hp.get_config()
    with pytest.raises(PipelineDefinitionError, match=r"hyperparameters\['units'\]: a fixed"):
        Trainer(examples=gen.outputs["examples"], module_file=module, hyperparameters={"units": []})


def test_tfx_tuner_is_conveyors_tuner_node(gen, module):
    from conveyor import tfx

    tuner = tfx.components.Tuner(
        module_file=module,
        examples=gen.outputs["examples"],
        train_args=tfx.proto.TrainArgs(num_steps=20),
        eval_args=tfx.proto.EvalArgs(num_steps=5),
        tune_args=tfx.proto.TuneArgs(num_parallel_trials=1),
        custom_config={"a": 1},
    )
    assert isinstance(tuner, Tuner) and tuner.id == "Tuner"
    assert tuner.parameters["train_steps"] == 20 and tuner.parameters["eval_steps"] == 5
    assert tuner.parameters["module_file"] == module and tuner.parameters["tuner_fn"] == "tuner_fn"
    trainer = tfx.components.Trainer(
        module_file=module,
        examples=gen.outputs["examples"],
        hyperparameters=tuner.outputs["best_hyperparameters"],
    )
    assert trainer.inputs["hyperparameters"].producer is tuner


# -- conveyor tune, then conveyor train --hyperparameters ---------------------------------------


def test_tune_then_train_from_the_command_line(examples, module, tmp_path, capsys):
    import tensorflow as tf

    tuned = tmp_path / "tuned"
    status = run_cli(
        "tune",
        "--examples",
        examples,
        "--module-file",
        module,
        "--output",
        tuned,
        "--train-steps",
        3,
        "--eval-steps",
        1,
    )
    out = capsys.readouterr().out
    assert status == 0, out
    best = tuned / "best_hyperparameters" / layout.HYPERPARAMETERS_FILE
    assert str(best) in out and "trials: 2" in out
    summary = json.loads((tuned / "tuner" / "tuner_summary.json").read_text())
    status = run_cli(
        "train",
        "--examples",
        examples,
        "--module-file",
        module,
        "--output",
        tmp_path / "trained",
        "--hyperparameters",
        tuned / "best_hyperparameters",
        "--train-steps",
        2,
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"units: {summary['best_hyperparameters']['units']}" in out
    model = tf.saved_model.load(str(tmp_path / "trained" / "model" / layout.SERVING_DIR))
    example = tf.train.Example()
    example.features.feature["x1"].float_list.value.append(0.9)
    example.features.feature["x2"].float_list.value.append(0.8)
    p = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))
    assert p["p"].shape == (1, 1)


def test_tune_command_errors(examples, module, tmp_path, capsys):
    status = run_cli(
        "tune",
        "--examples",
        examples,
        "--module-file",
        module,
        "--output",
        tmp_path / "o",
        "--custom-config",
        "[1]",
    )
    assert status == 2 and "--custom-config must be a dict" in capsys.readouterr().err
    status = run_cli(
        "tune",
        "--examples",
        examples,
        "--module-file",
        tmp_path / "missing.py",
        "--output",
        tmp_path / "o",
    )
    assert status == 2 and "no such module file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
