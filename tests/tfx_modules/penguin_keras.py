"""A penguin-species classifier as a TFX module file: preprocessing_fn, tuner_fn and run_fn.

Written against TFX's module-file interface with the one import line changed
(``from conveyor import tfx`` for ``from tfx import v1 as tfx``). The examples are
read through ``fn_args.data_accessor``, the hyperparameters come from the Tuner's
``best_hyperparameters`` (``fn_args.hyperparameters``), and the model serves
serialized raw tf.Examples through the transform graph. When
``custom_config["record_dir"]`` is set, tuner_fn and run_fn write what they were
given there (tests read it).
"""

import json
import os

import keras
import keras_tuner
import penguin_constants as constants  # the helper beside this file
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from conveyor import tfx

BATCH_SIZE = 16


def _dense(x, default):
    """A [batch] tensor of a feature that may arrive sparse (optional) or as [batch, 1]."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default,
        )
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    """Numbers as z-scores; the species as an index into its vocabulary."""
    outputs = {}
    for name in constants.NUMERIC_FEATURES:
        value = tf.cast(_dense(inputs[name], 0), tf.float32)
        outputs[constants.xf(name)] = tft.scale_to_z_score(value)
    outputs[constants.xf(constants.LABEL)] = tft.compute_and_apply_vocabulary(
        _dense(inputs[constants.LABEL], b""), vocab_filename="species"
    )
    return outputs


def _input_fn(file_pattern, data_accessor, tf_transform_output, batch_size=BATCH_SIZE):
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=constants.xf(constants.LABEL), shuffle_seed=7
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def _search_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [4, 12])
    hp.Choice("learning_rate", [0.01, 0.05])
    return hp


def _build_keras_model(hp):
    inputs = {
        constants.xf(name): keras.Input(shape=(), name=constants.xf(name))
        for name in constants.NUMERIC_FEATURES
    }
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(v) for v in inputs.values()])
    x = keras.layers.Dense(hp.get("units"), activation="relu")(x)
    outputs = keras.layers.Dense(constants.SPECIES, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def _record(fn_args, name, extra=None):
    folder = (fn_args.custom_config or {}).get("record_dir")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    fields = {
        key: getattr(fn_args, key)
        for key in (
            "train_files",
            "eval_files",
            "train_steps",
            "eval_steps",
            "transform_graph_path",
            "transform_output",
            "schema_path",
            "schema_file",
            "serving_model_dir",
            "eval_model_dir",
            "model_run_dir",
            "working_dir",
            "base_model",
            "hyperparameters",
            "custom_config",
        )
    }
    fields["data_accessor"] = sorted(fn_args.data_accessor._fields)
    fields["data_view_decode_fn"] = fn_args.data_accessor.data_view_decode_fn
    fields["working_dir_exists"] = bool(fn_args.working_dir) and os.path.isdir(fn_args.working_dir)
    fields.update(extra or {})
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump(fields, f, indent=2, default=str)


def tuner_fn(fn_args):
    """A small random search over the hidden layer's width and the learning rate."""
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
    tuner = keras_tuner.RandomSearch(
        _build_keras_model,
        hyperparameters=_search_space(),
        objective=keras_tuner.Objective("val_sparse_categorical_accuracy", "max"),
        max_trials=2,
        seed=3,
        directory=fn_args.working_dir,
        project_name="penguin_tuning",
    )
    _record(fn_args, "tuner_fn")
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train,
            "validation_data": evaluation,
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "epochs": 1,
            "verbose": 0,
        },
    )


def _serving_signature(model, tf_transform_output):
    """serving_default(examples): raw serialized tf.Examples in, species probabilities out."""
    transform_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    raw_spec.pop(constants.LABEL)

    def serve(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        transformed = transform_layer(raw)
        features = {
            constants.xf(n): transformed[constants.xf(n)] for n in constants.NUMERIC_FEATURES
        }
        return {"probabilities": model(features)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(transform_layer)
    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
    )
    return archive


def run_fn(fn_args):
    """Trains with the tuned hyperparameters (the search space's first values without them)."""
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if fn_args.hyperparameters:
        hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hp = _search_space()
    train = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
    model = _build_keras_model(hp)
    history = model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        epochs=1,
        verbose=0,
    )
    _record(fn_args, "run_fn", {"units": hp.get("units"), "learning_rate": hp.get("learning_rate")})
    _serving_signature(model, tf_transform_output).write_out(
        fn_args.serving_model_dir, verbose=False
    )
    return {"val_accuracy": float(history.history["val_sparse_categorical_accuracy"][-1])}
