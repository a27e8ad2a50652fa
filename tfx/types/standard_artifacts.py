"""TFX's ``tfx.types.standard_artifacts``: the artifact classes, Conveyor's own
(:mod:`conveyor.dsl.artifact_types`).

Example::

    from conveyor import tfx

    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
"""

from conveyor.components.tuner import TunerResults
from conveyor.dsl.artifact_types import (
    Boolean,
    Bytes,
    ExampleAnomalies,
    Examples,
    ExampleStatistics,
    Float,
    HyperParameters,
    InferenceResult,
    InfraBlessing,
    Integer,
    JsonValue,
    Model,
    ModelBlessing,
    ModelEvaluation,
    ModelRun,
    PushedModel,
    Schema,
    String,
    TransformCache,
    TransformGraph,
)

__all__ = [
    "Boolean",
    "Bytes",
    "ExampleAnomalies",
    "ExampleStatistics",
    "Examples",
    "Float",
    "HyperParameters",
    "InferenceResult",
    "InfraBlessing",
    "Integer",
    "JsonValue",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "ModelRun",
    "PushedModel",
    "Schema",
    "String",
    "TransformCache",
    "TransformGraph",
    "TunerResults",
]
