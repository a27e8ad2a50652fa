"""Trainer: runs a user's ``run_fn(fn_args)`` from a module file and checks the model it saves.

The user's ``run_fn`` trains (Keras or anything TensorFlow) on the examples,
with the transform graph and schema at hand, and saves a SavedModel with a
tf.Example serving signature in ``fn_args.serving_model_dir``
(``<model>/Format-Serving``, TFX's layout) so Evaluator and BulkInferrer can use it.

Names are imported on first use.
"""

_EXPORTS = {"FnArgs": "fn_args", "run_trainer": "component", "load_run_fn": "component"}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
