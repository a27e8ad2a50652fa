"""Bulk inference: a TensorFlow SavedModel over examples, on Beam's RunInference.

:class:`BulkInference` checks a SavedModel signature against the input schema,
then runs it on batches of ``pyarrow.RecordBatch`` with a model loaded once per
worker process. :class:`WritePredictionLogs` writes ``PredictionLog`` protos in
TFX BulkInferrer's layout and :class:`AppendPredictions` adds prediction
columns to the examples. :func:`run_bulk_inference` wires them into a pipeline;
the ``conveyor infer`` command and the :class:`BulkInferrer` pipeline component
call it. Other steps that run a model (evaluation, the monitor, the trainer's
checks) use these names: :class:`SavedModelHandler` for Beam's
``RunInference``, :func:`read_signature` to read what a signature takes
without loading the model, and :func:`release_models` to free loaded models
when their pipeline ends.

Example::

    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.inference import run_bulk_inference

    summary = run_bulk_inference(
        {"eval": ReadExamples("data/Split-eval/*.gz")}, "model/", "out/infer",
        output_examples=True)
    print(summary["examples_predicted"], summary["examples_dead_lettered"])

Names are imported on first use, so ``conveyor.components.inference.cli``
loads without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "BatchPrediction": "handler",
    "SavedModelHandler": "handler",
    "release_models": "handler",
    "column_tensor": "handler",
    "output_feature_type": "logs",
    "prediction_column": "logs",
    "InputPlan": "model",
    "SignatureInfo": "model",
    "plan_inputs": "model",
    "read_signature": "model",
    "BulkInferrer": "node",
    "run_bulk_inference": "component",
    "AppendPredictions": "transform",
    "BulkInference": "transform",
    "DeadLetter": "transform",
    "InferenceResult": "transform",
    "WritePredictionLogs": "transform",
    "dead_letter_examples": "transform",
}

__all__ = [
    "AppendPredictions",
    "BatchPrediction",
    "BulkInference",
    "BulkInferrer",
    "DeadLetter",
    "InferenceResult",
    "InputPlan",
    "SavedModelHandler",
    "SignatureInfo",
    "WritePredictionLogs",
    "column_tensor",
    "dead_letter_examples",
    "output_feature_type",
    "plan_inputs",
    "prediction_column",
    "read_signature",
    "release_models",
    "run_bulk_inference",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
