"""Transform: tf.Transform over Conveyor's RecordBatches, in TFX's output layout.

Example::

    from conveyor.components.transform import load_preprocessing_fn, run_transform
    from conveyor.beam_utils.io import read_examples_dir

    examples = {s: read_examples_dir("out/examples", s) for s in ("train", "eval")}
    summary = run_transform(examples, "out/transform", load_preprocessing_fn("prep.py"))
    # out/transform/transform_graph (tft.TFTransformOutput), out/transform/transformed_examples

In a pipeline of your own, :class:`TransformExamples` is the PTransform:
``{split: PCollection of RecordBatch} | TransformExamples(fn, data_schema, temp_dir=...)``.
The pipeline node is ``conveyor.components.Transform``.

Names are imported on first use, so ``conveyor.components.transform.cli`` loads
without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_TRAIN_SPLIT": "transform",
    "TransformExamples": "transform",
    "TransformPlan": "transform",
    "TransformResult": "transform",
    "plan_transform": "transform",
    "run_transform": "component",
    "MissingFeatureError": "user_fn",
    "PreprocessingFn": "user_fn",
    "PreprocessingFnError": "user_fn",
    "load_preprocessing_fn": "user_fn",
    "load_schema": "schema",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
