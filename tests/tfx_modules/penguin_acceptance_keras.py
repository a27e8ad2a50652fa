"""The acceptance pipeline's module file, in TFX's style: preprocessing_fn, tuner_fn and run_fn.

Used by ``tests/tfx_penguin_pipeline.py`` for the Transform, the Tuner and the
Trainer. The model it saves has TFX's two signatures: ``serving_default``
(serialized raw tf.Examples in, species probabilities out) and
``transform_features`` (serialized raw tf.Examples in, the transform graph's
outputs out, ``species_xf`` included), which the Evaluator runs as its
preprocessing function to find the label. Helper names come from
``penguin_constants``, the module beside this file.
"""

import keras
import keras_tuner
import penguin_constants as constants
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from conveyor import tfx

TRAIN_BATCH_SIZE = 16
EVAL_BATCH_SIZE = 16


def _flat(x, default):
    """A [batch] tensor of a [batch, 1] feature (dense, or sparse when optional)."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default,
        )
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    """Measures as z-scores (``<name>_xf``), the species as its vocabulary index (``species_xf``)."""
    outputs = {
        constants.xf(name): tft.scale_to_z_score(tf.cast(_flat(inputs[name], 0), tf.float32))
        for name in constants.NUMERIC_FEATURES
    }
    outputs[constants.xf(constants.LABEL)] = tft.compute_and_apply_vocabulary(
        _flat(inputs[constants.LABEL], b""), vocab_filename="species"
    )
    return outputs


def _dataset(files, data_accessor, tf_transform_output, batch_size):
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=constants.xf(constants.LABEL), shuffle_seed=11
        ),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _hyperparameters() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [0.02, 0.05], default=0.05)
    hp.Int("num_layers", 1, 2, default=1)
    return hp


def _model(hp: keras_tuner.HyperParameters) -> keras.Model:
    inputs = {
        constants.xf(name): keras.Input(shape=(), name=constants.xf(name))
        for name in constants.NUMERIC_FEATURES
    }
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(v) for v in inputs.values()])
    for _ in range(int(hp.get("num_layers"))):
        x = keras.layers.Dense(8, activation="relu")(x)
    outputs = keras.layers.Dense(constants.SPECIES, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """Two random trials over the learning rate and the depth."""
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(
        _model,
        max_trials=2,
        hyperparameters=_hyperparameters(),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_sparse_categorical_accuracy", "max"),
        seed=5,
        directory=fn_args.working_dir,
        project_name="penguin_acceptance",
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _dataset(
                fn_args.train_files, fn_args.data_accessor, transform_output, TRAIN_BATCH_SIZE
            ),
            "validation_data": _dataset(
                fn_args.eval_files, fn_args.data_accessor, transform_output, EVAL_BATCH_SIZE
            ),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def _export(model, transform_output, path):
    """Writes the SavedModel with ``serving_default`` and ``transform_features``."""
    layer = transform_output.transform_features_layer()
    raw_spec = transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != constants.LABEL}
    examples = [tf.TensorSpec([None], tf.string, name="examples")]

    def serve(serialized):
        transformed = layer(tf.io.parse_example(serialized, serving_spec))
        features = {
            constants.xf(n): transformed[constants.xf(n)] for n in constants.NUMERIC_FEATURES
        }
        return {"outputs": model(features)}

    def transform_features(serialized):
        return layer(tf.io.parse_example(serialized, raw_spec))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(layer)
    archive.add_endpoint("serving_default", serve, input_signature=examples)
    archive.add_endpoint("transform_features", transform_features, input_signature=examples)
    archive.write_out(path, verbose=False)


def run_fn(fn_args: tfx.components.FnArgs):
    """Trains with the Tuner's best hyperparameters and saves the model with its signatures."""
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if fn_args.hyperparameters:
        hp = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hp = _hyperparameters()
    keras.utils.set_random_seed(3)
    model = _model(hp)
    model.fit(
        _dataset(fn_args.train_files, fn_args.data_accessor, transform_output, TRAIN_BATCH_SIZE),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_dataset(
            fn_args.eval_files, fn_args.data_accessor, transform_output, EVAL_BATCH_SIZE
        ),
        validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    _export(model, transform_output, fn_args.serving_model_dir)
