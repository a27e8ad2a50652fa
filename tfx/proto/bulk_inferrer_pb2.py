"""BulkInferrer's messages (TFX's ``bulk_inferrer.proto``): ``ModelSpec``, ``DataSpec``,
``OutputExampleSpec`` and the output column specs.

Example::

    from conveyor.tfx import proto

    model_spec = proto.ModelSpec(model_signature_name=["serving_default"])
    data_spec = proto.DataSpec(example_splits=["unlabelled"])
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Message, MessageField, Repeated, String

__all__ = [
    "ClassifyOutput",
    "DataSpec",
    "ModelSpec",
    "OutputColumnsSpec",
    "OutputExampleSpec",
    "PredictOutput",
    "PredictOutputCol",
    "RegressOutput",
]


class ModelSpec(Message):
    """The signatures to run (none: ``serving_default``) and the SavedModel's tags."""

    model_signature_name = Repeated(String())
    tag = Repeated(String())


class DataSpec(Message):
    """The splits of the examples to run on (none: every split)."""

    example_splits = Repeated(String())


class ClassifyOutput(Message):
    """The output columns of a classification signature."""

    label_column = String()
    score_column = String()


class RegressOutput(Message):
    """The output column of a regression signature."""

    value_column = String()


class PredictOutputCol(Message):
    """One output of a predict signature and the column it goes to."""

    output_key = String()
    output_column = String()


class PredictOutput(Message):
    """The output columns of a predict signature."""

    output_columns = Repeated(PredictOutputCol)


class OutputColumnsSpec(Message):
    """How one signature's outputs become columns of the output examples."""

    signature_name = String()
    classify_output = MessageField(ClassifyOutput, oneof="output_type")
    regress_output = MessageField(RegressOutput, oneof="output_type")
    predict_output = MessageField(PredictOutput, oneof="output_type")


class OutputExampleSpec(Message):
    """Write the examples with the predictions as columns, as these specs say."""

    output_columns_spec = Repeated(OutputColumnsSpec)
