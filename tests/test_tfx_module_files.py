"""Module files written for TFX run unchanged: FnArgs with TFX's fields, the DataAccessor over
our examples, helper modules beside a module file, and a Transform -> Tuner -> Trainer pipeline.

``tfx_modules/penguin_keras.py`` is a penguin-species classifier in TFX's
module-file style (``preprocessing_fn``, ``_input_fn`` through
``fn_args.data_accessor.tf_dataset_factory``, a two-trial KerasTuner
``tuner_fn`` and a ``run_fn`` reading ``fn_args.hyperparameters``); it imports
``penguin_constants``, a helper module beside it. The pipeline is defined with
``conveyor.tfx``'s names (TFX's) and runs on ``LocalDagRunner(in_process=True)``
over a small palmerpenguins sample.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples, read_examples_dir
from conveyor.components.example_gen.component import run_example_gen
from conveyor.components.trainer import (
    DataAccessor,
    FnArgs,
    make_data_accessor,
    make_fn_args,
    read_hyperparameters,
    run_trainer,
)
from conveyor.dsl import layout

TESTS = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(TESTS, "tfx_modules")
PENGUIN_MODULE = os.path.join(MODULES, "penguin_keras.py")
COLUMNS = ["species", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def write_penguins(folder, every: int = 2) -> str:
    """Every ``every``-th complete row of palmerpenguins (species and the four measures)."""
    import palmerpenguins

    os.makedirs(folder, exist_ok=True)
    frame = palmerpenguins.load_penguins()[COLUMNS].dropna().iloc[::every]
    path = os.path.join(folder, "penguins.csv")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """An Examples directory (train/eval) of the penguin sample."""
    base = tmp_path_factory.mktemp("penguin_examples")
    csv = write_penguins(str(base / "data"), every=3)
    out = str(base / "examples")
    run_example_gen({None: ReadExamples(csv)}, out)
    return out


def _reads(examples_dir, splits=("train", "eval")):
    return {s: read_examples_dir(examples_dir, s) for s in splits}


def _raw_schema():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name in COLUMNS:
        feature = schema.feature.add(name=name)
        feature.type = schema_pb2.BYTES if name == "species" else schema_pb2.FLOAT
        feature.shape.dim.add(size=1)  # every row has each (dense, as infer_feature_shape makes)
        feature.presence.min_fraction = 1.0
    return schema


# -- FnArgs and the DataAccessor ----------------------------------------------------------------


def test_fn_args_has_tfx_fields_and_older_names():
    args = FnArgs(
        train_files=["a/Split-train/*"],
        transform_graph_path="graph",
        schema_path="schema.pbtxt",
        hyperparameters={"space": [], "values": {}},
    )
    assert args.transform_output == "graph" and args.schema_file == "schema.pbtxt"
    assert args.eval_files == [] and args.custom_config == {}
    for name in (
        "working_dir",
        "eval_model_dir",
        "model_run_dir",
        "serving_model_dir",
        "train_steps",
        "eval_steps",
        "base_model",
        "data_accessor",
    ):
        assert getattr(args, name) is None, name


def test_make_fn_args_gives_tfx_file_patterns_per_split(examples):
    args = make_fn_args(_reads(examples), ["train", "eval"], ["eval"], train_steps=3)
    assert args.train_files == [
        os.path.join(examples, "Split-train", "*"),
        os.path.join(examples, "Split-eval", "*"),
    ]
    assert args.eval_files == [os.path.join(examples, "Split-eval", "*")]
    assert isinstance(args.data_accessor, DataAccessor) and args.train_steps == 3
    with pytest.raises(InputError, match=r"no split 'test' \(splits: \['eval', 'train'\]\)"):
        make_fn_args(_reads(examples), ["test"], ["eval"])


def test_tf_dataset_factory_reads_gzipped_examples_with_a_label(examples):
    from tfx_bsl.public import tfxio

    accessor = make_data_accessor()
    files = [os.path.join(examples, "Split-train", "*")]
    dataset = accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=8, label_key="species", num_epochs=1),
        _raw_schema(),
    )
    rows, species = 0, set()
    for features, label in dataset:
        assert set(features) == set(COLUMNS) - {"species"}
        assert (
            features["body_mass_g"].shape[1:] == (1,) and features["body_mass_g"].dtype.is_floating
        )
        rows += int(label.shape[0])
        species.update(v.decode() for v in label.numpy().ravel())
    import glob

    import tensorflow as tf

    paths = glob.glob(files[0])
    assert paths and all(p.endswith(".gz") for p in paths)  # TFX's gzip layout, told by name
    expected = sum(1 for _ in tf.data.TFRecordDataset(paths, compression_type="GZIP"))
    assert rows == expected and species == {"Adelie", "Chinstrap", "Gentoo"}


def test_record_batch_factory_gives_arrow_batches(examples):
    from tfx_bsl.public import tfxio

    accessor = make_data_accessor(["Tuner"])
    batches = list(
        accessor.record_batch_factory(
            os.path.join(examples, "Split-eval", "*"),
            tfxio.RecordBatchesOptions(batch_size=10, num_epochs=1, shuffle=False),
            None,
        )
    )
    assert batches and all(b.num_rows <= 10 for b in batches)
    assert set(batches[0].schema.names) == set(COLUMNS)
    assert accessor.data_view_decode_fn is None


def test_data_accessor_errors_name_the_argument(examples, tmp_path):
    from tfx_bsl.public import tfxio

    accessor = make_data_accessor()
    options = tfxio.TensorFlowDatasetOptions(batch_size=4)
    files = [os.path.join(examples, "Split-train", "*")]
    with pytest.raises(FileNotFoundError, match="tf_dataset_factory: no files match .*nothing"):
        accessor.tf_dataset_factory([str(tmp_path / "nothing" / "*")], options, _raw_schema())
    with pytest.raises(ValueError, match="a schema is needed"):
        accessor.tf_dataset_factory(files, options, None)
    with pytest.raises(TypeError, match="schema is a tensorflow_metadata schema_pb2.Schema"):
        accessor.tf_dataset_factory(files, options, "schema.pbtxt")
    with pytest.raises(TypeError, match="options are a tfx_bsl.public.tfxio.TensorFlowDataset"):
        accessor.tf_dataset_factory(files, {"batch_size": 4}, _raw_schema())
    with pytest.raises(KeyError, match="label_key 'kind' is not a feature"):
        accessor.tf_dataset_factory(
            files, tfxio.TensorFlowDatasetOptions(batch_size=4, label_key="kind"), _raw_schema()
        )


def test_read_hyperparameters_reads_the_artifact_file(tmp_path):
    folder = tmp_path / "hp"
    folder.mkdir()
    (folder / layout.HYPERPARAMETERS_FILE).write_text('{"space": [], "values": {"units": 8}}')
    assert read_hyperparameters(str(folder))["values"] == {"units": 8}
    (folder / layout.HYPERPARAMETERS_FILE).write_text("[1, 2]")
    with pytest.raises(InputError, match="a JSON object"):
        read_hyperparameters(str(folder))
    with pytest.raises(InputError, match="no such file"):
        read_hyperparameters(str(tmp_path / "missing"))


# -- a module file's folder is importable while its functions run --------------------------------

HELPER = """
SCALE = 2.5


def double(x):
    return x * 2
"""

PREPROCESSING = """
import tensorflow as tf
import tensorflow_transform as tft

import shelf_helper_{tag}


def preprocessing_fn(inputs):
    x = tf.reshape(tf.sparse.to_dense(inputs["body_mass_g"]), [-1])
    return {{"mass_xf": shelf_helper_{tag}.double(tft.scale_to_0_1(x))}}
"""

RUN_FN = """
import tensorflow as tf

import shelf_helper_{tag}


def run_fn(fn_args):
    scale = shelf_helper_{tag}.SCALE

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            return {{"score": tf.fill(tf.shape(serialized), scale)}}

    model = Model()
    tf.saved_model.save(model, fn_args.serving_model_dir,
                        signatures={{"serving_default": model.serve}})
    return {{"scale": scale}}
"""


def _module_with_helper(folder, source: str, tag: str) -> str:
    """A module file in a folder of its own that imports ``shelf_helper_<tag>`` beside it."""
    os.makedirs(folder)
    with open(os.path.join(folder, f"shelf_helper_{tag}.py"), "w") as f:
        f.write(HELPER)
    path = os.path.join(folder, "module.py")
    with open(path, "w") as f:
        f.write(source.format(tag=tag))
    return path


def test_transform_module_imports_a_helper_beside_it(examples, tmp_path):
    from conveyor.components.transform import load_preprocessing_fn, run_transform

    module = _module_with_helper(str(tmp_path / "prep"), PREPROCESSING, "transform")
    summary = run_transform(_reads(examples), str(tmp_path / "out"), load_preprocessing_fn(module))
    import tensorflow_transform as tft

    graph = tft.TFTransformOutput(os.path.join(str(tmp_path / "out"), "transform_graph"))
    assert "mass_xf" in graph.transformed_feature_spec()
    assert summary  # ran to the end


def test_trainer_module_imports_a_helper_beside_it(examples, tmp_path):
    module = _module_with_helper(str(tmp_path / "train"), RUN_FN, "trainer")
    summary = run_trainer(_reads(examples), str(tmp_path / "model"), module)
    assert summary["run_fn_result"] == {"scale": 2.5}


# -- Transform -> Tuner -> Trainer, TFX's names, in one process ----------------------------------


def penguin_pipeline(root: str, data: str, records: str):
    """CsvExampleGen -> Transform -> Tuner -> Trainer, in TFX's names and arguments."""
    from conveyor import tfx

    example_gen = tfx.components.CsvExampleGen(input_base=data)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], module_file=PENGUIN_MODULE
    )
    common = dict(
        module_file=PENGUIN_MODULE,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(num_steps=4),
        eval_args=tfx.proto.EvalArgs(num_steps=2),
        custom_config={"record_dir": records},
    )
    tuner = tfx.components.Tuner(**common)
    trainer = tfx.components.Trainer(
        hyperparameters=tuner.outputs["best_hyperparameters"], **common
    )
    return tfx.dsl.Pipeline(
        pipeline_name="penguin_tuning",
        pipeline_root=root,
        components=[example_gen, transform, tuner, trainer],
    )


@pytest.fixture(scope="module")
def penguin_tuning_run(tmp_path_factory):
    """The penguin pipeline, run once in this process."""
    from conveyor.orchestration import LocalDagRunner

    base = tmp_path_factory.mktemp("penguin_tuning")
    data = write_penguins(str(base / "data"), every=2)
    records = str(base / "records")
    pipeline = penguin_pipeline(str(base / "root"), os.path.dirname(data), records)
    result = LocalDagRunner(in_process=True, quiet=True).run(pipeline)
    return {"base": base, "pipeline": pipeline, "result": result, "records": records}


def _record(penguin_tuning_run, name: str) -> dict:
    """What ``name`` (tuner_fn, run_fn) recorded of its fn_args; an output folder as published
    (the node wrote it into ``.<id>.tmp``, renamed to ``<id>`` when the execution succeeded)."""
    with open(os.path.join(penguin_tuning_run["records"], f"{name}.json")) as f:
        got = json.load(f)
    for key in ("serving_model_dir", "eval_model_dir", "model_run_dir"):
        if got.get(key):
            got[key] = re.sub(r"/\.(\d+)\.tmp(?=/|$)", r"/\1", got[key])
    return got


def _artifact(penguin_tuning_run, node: str, key: str):
    from conveyor.orchestration import Metadata

    pipeline = penguin_tuning_run["pipeline"]
    md = Metadata(pipeline.metadata_path)
    return md.latest_outputs(pipeline.name, penguin_tuning_run["result"]["run_id"], node)[key]


def test_pipeline_runs_every_node(penguin_tuning_run):
    states = {cid: s["state"] for cid, s in penguin_tuning_run["result"]["components"].items()}
    assert states == dict.fromkeys(["CsvExampleGen", "Transform", "Tuner", "Trainer"], "COMPLETE")


def test_tuner_writes_best_hyperparameters_as_tfx_does(penguin_tuning_run):
    import keras_tuner

    artifact = _artifact(penguin_tuning_run, "Tuner", "best_hyperparameters")
    assert os.listdir(artifact.uri) == [layout.HYPERPARAMETERS_FILE]
    with open(os.path.join(artifact.uri, layout.HYPERPARAMETERS_FILE)) as f:
        config = json.load(f)
    hp = keras_tuner.HyperParameters.from_config(config)
    assert hp.get("units") in (4, 12) and hp.get("learning_rate") in (0.01, 0.05)
    assert artifact.properties["trials"] == 2
    assert 0.0 <= artifact.properties["best_score"] <= 1.0


def test_tuner_fn_got_tfx_fn_args(penguin_tuning_run):
    got = _record(penguin_tuning_run, "tuner_fn")
    assert got["train_steps"] == 4 and got["eval_steps"] == 2
    assert [os.path.basename(os.path.dirname(p)) for p in got["train_files"]] == ["Split-train"]
    assert [os.path.basename(os.path.dirname(p)) for p in got["eval_files"]] == ["Split-eval"]
    assert all(p.endswith("/*") for p in got["train_files"] + got["eval_files"])
    assert got["working_dir_exists"] and got["hyperparameters"] is None
    assert got["transform_graph_path"] == got["transform_output"]
    assert got["data_accessor"] == sorted(DataAccessor._fields)
    assert got["data_view_decode_fn"] is None
    assert got["serving_model_dir"] is None and got["custom_config"]["record_dir"]


def test_trainer_reads_the_tuned_hyperparameters_into_fn_args(penguin_tuning_run):
    best = _artifact(penguin_tuning_run, "Tuner", "best_hyperparameters")
    with open(os.path.join(best.uri, layout.HYPERPARAMETERS_FILE)) as f:
        config = json.load(f)
    got = _record(penguin_tuning_run, "run_fn")
    assert got["hyperparameters"] == config
    assert got["units"] == config["values"]["units"]
    assert got["learning_rate"] == config["values"]["learning_rate"]
    model = _artifact(penguin_tuning_run, "Trainer", "model")
    assert got["serving_model_dir"] == os.path.join(model.uri, layout.SERVING_DIR)
    assert got["eval_model_dir"] == os.path.join(model.uri, layout.EVAL_MODEL_DIR)
    assert got["model_run_dir"] == _artifact(penguin_tuning_run, "Trainer", "model_run").uri
    assert got["train_steps"] == 4 and got["eval_steps"] == 2
    assert (
        got["transform_graph_path"]
        == _artifact(penguin_tuning_run, "Transform", "transform_graph").uri
    )
    assert got["working_dir_exists"] and not os.path.exists(got["working_dir"])  # removed after


def test_trained_model_serves_raw_examples(penguin_tuning_run):
    import numpy as np
    import tensorflow as tf

    model = _artifact(penguin_tuning_run, "Trainer", "model")
    loaded = tf.saved_model.load(os.path.join(model.uri, layout.SERVING_DIR))
    rows = [
        {
            "bill_length_mm": 39.1,
            "bill_depth_mm": 18.7,
            "flipper_length_mm": 181.0,
            "body_mass_g": 3750.0,
        },
        {
            "bill_length_mm": 46.5,
            "bill_depth_mm": 14.8,
            "flipper_length_mm": 217.0,
            "body_mass_g": 5200.0,
        },
    ]
    serialized = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    k: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                    for k, v in row.items()
                }
            )
        ).SerializeToString()
        for row in rows
    ]
    out = loaded.signatures["serving_default"](examples=tf.constant(serialized))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
