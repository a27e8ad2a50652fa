"""Trainer: runs a user's ``run_fn(fn_args)`` from a module file and checks the model it saves.

The user's ``run_fn`` trains (Keras or anything TensorFlow) on the examples,
with the transform graph and schema at hand, and saves a SavedModel with a
tf.Example serving signature in ``fn_args.serving_model_dir``
(``<model>/Format-Serving``, TFX's layout) so Evaluator and BulkInferrer can use it.
Training is the user's TensorFlow code, not a Beam pipeline: this folder has no
PTransform. ``FnArgs`` has TFX's fields (``train_files``, ``data_accessor``,
``transform_graph_path``, ``hyperparameters``, ``train_steps``...), so module
files written for TFX run unchanged; the settings Trainer shares with the Tuner
(TFX's ``train_args`` / ``eval_args``, the user's function) are in ``settings``.

Example::

    from conveyor.beam_utils.io import read_examples_dir
    from conveyor.components.trainer import run_trainer

    reads = {s: read_examples_dir("out/examples", s) for s in ("train", "eval")}
    summary = run_trainer(reads, "out/model", "trainer_module.py",
                          schema_path="out/schema.pbtxt", custom_config={"epochs": 2})
    print(summary["signature"])   # serving_default(examples) -> score

Names are imported on first use.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "DataAccessor": "data_accessor",
    "FnArgs": "fn_args",
    "find_transform_graph": "fn_args",
    "SplitArgs": "settings",
    "Trainer": "node",
    "check_user_settings": "settings",
    "hyperparameters_config": "settings",
    "install_keras_tuner_hook": "keras_backend",
    "keras_tuner_backend": "keras_backend",
    "legacy_keras_selected": "keras_backend",
    "is_deferred": "settings",
    "load_run_fn": "component",
    "make_data_accessor": "data_accessor",
    "make_fn_args": "fn_args",
    "parse_custom_config": "settings",
    "read_hyperparameters": "fn_args",
    "resolve_splits_and_steps": "settings",
    "resolve_user_function": "settings",
    "run_trainer": "component",
    "split_args": "settings",
    "split_files": "fn_args",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
