"""Bulk inference: a TensorFlow SavedModel over examples, on Beam's RunInference.

:class:`BulkInference` checks a SavedModel signature against the input schema,
then runs it on batches of ``pyarrow.RecordBatch`` with a model loaded once per
worker process. :class:`WritePredictionLogs` writes ``PredictionLog`` protos in
TFX BulkInferrer's layout and :class:`AppendPredictions` adds prediction
columns to the examples. :func:`run_bulk_inference` wires them into a pipeline;
the ``conveyor infer`` command and the :class:`BulkInferrer` pipeline component
call it.

Names are imported on first use, so ``conveyor.components.inference.cli``
loads without Beam or TensorFlow.
"""

from __future__ import annotations

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "BatchPrediction": "handler",
    "SavedModelHandler": "handler",
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
    "dead_letter_examples",
    "plan_inputs",
    "read_signature",
    "run_bulk_inference",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
