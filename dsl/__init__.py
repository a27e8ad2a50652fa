"""The base every pipeline node stands on: components, channels, pipelines, artifacts, layout.

Nothing here imports Beam or TensorFlow when imported, so pipeline definitions,
the command line and the UI load fast. Components (``conveyor.components``)
build on this package; orchestration (``conveyor.orchestration``) runs what it
defines.

Example::

    from conveyor.dsl import Pipeline
    from conveyor.components import ExampleGen, StatisticsGen

    gen = ExampleGen(input_base="data/flights.csv")
    stats = StatisticsGen(examples=gen.outputs["examples"])
    pipeline = Pipeline("flights", root="out/pipeline", components=[gen, stats])
"""

from conveyor.dsl import artifact_types, layout
from conveyor.dsl.artifacts import ARTIFACT_TYPES, Artifact, Property, PropertyType, check_type
from conveyor.dsl.component import (
    REQUIRED,
    Channel,
    Component,
    ExecutionContext,
    InputSpec,
    PipelineDefinitionError,
    file_digest,
)
from conveyor.dsl.conditions import Cond
from conveyor.dsl.container_component import create_container_component
from conveyor.dsl.function_component import (
    BeamComponentParameter,
    InputArtifact,
    OutputArtifact,
    OutputDict,
    Parameter,
    component,
)
from conveyor.dsl.importer import Importer
from conveyor.dsl.pipeline import Pipeline
from conveyor.dsl.placeholders import Predicate, logical_and, logical_not, logical_or
from conveyor.dsl.resolver import (
    ArtifactStore,
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    Resolver,
    ResolverStrategy,
    SpanRangeStrategy,
)
from conveyor.dsl.runtime import RuntimeParameter, RuntimeParameterError

__all__ = [
    "ARTIFACT_TYPES",
    "REQUIRED",
    "Artifact",
    "ArtifactStore",
    "BeamComponentParameter",
    "Channel",
    "Component",
    "Cond",
    "ExecutionContext",
    "Importer",
    "InputArtifact",
    "InputSpec",
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "OutputArtifact",
    "OutputDict",
    "Parameter",
    "Pipeline",
    "PipelineDefinitionError",
    "Predicate",
    "Property",
    "PropertyType",
    "Resolver",
    "ResolverStrategy",
    "RuntimeParameter",
    "RuntimeParameterError",
    "SpanRangeStrategy",
    "artifact_types",
    "check_type",
    "component",
    "create_container_component",
    "file_digest",
    "layout",
    "logical_and",
    "logical_not",
    "logical_or",
]
