"""Trainer: runs a user's ``run_fn(fn_args)`` from a module file and checks the model it saves.

The user's ``run_fn`` trains (Keras or anything TensorFlow) on the examples,
with the transform graph and schema at hand, and saves a SavedModel with a
tf.Example serving signature in ``fn_args.serving_model_dir``
(``<model>/Format-Serving``, TFX's layout) so Evaluator and BulkInferrer can use it.

Names are imported on first use.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {"FnArgs": "fn_args", "run_trainer": "component", "load_run_fn": "component"}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
