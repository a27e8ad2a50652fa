"""Transform: tf.Transform over Conveyor's RecordBatches, in TFX's output layout.

Example::

    from conveyor.components.transform import load_preprocessing_fn, run_transform
    from conveyor.beam_utils.io import read_examples_dir

    reads = {s: read_examples_dir("out/examples", s) for s in ("train", "eval")}
    summary = run_transform(reads, "out/transform", load_preprocessing_fn("prep.py"))
    # out/transform/transform_graph (tft.TFTransformOutput), out/transform/transformed_examples

Names are imported on first use, so ``conveyor.components.transform.cli`` loads
without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_TRAIN_SPLIT": "component",
    "Transform": "component",
    "TransformPlan": "component",
    "TransformResult": "component",
    "plan_transform": "component",
    "run_transform": "component",
    "MissingFeatureError": "user_fn",
    "PreprocessingFn": "user_fn",
    "PreprocessingFnError": "user_fn",
    "load_preprocessing_fn": "user_fn",
    "load_schema": "schema",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
