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

from conveyor.dsl import layout
from conveyor.dsl.artifacts import ARTIFACT_TYPES, Artifact, check_type
from conveyor.dsl.component import (
    REQUIRED,
    Channel,
    Component,
    ExecutionContext,
    InputSpec,
    PipelineDefinitionError,
    file_digest,
)
from conveyor.dsl.importer import Importer
from conveyor.dsl.pipeline import Pipeline
from conveyor.dsl.resolver import (
    ArtifactStore,
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    Resolver,
    ResolverStrategy,
    SpanRangeStrategy,
)

__all__ = [
    "ARTIFACT_TYPES",
    "REQUIRED",
    "Artifact",
    "ArtifactStore",
    "Channel",
    "Component",
    "ExecutionContext",
    "Importer",
    "InputSpec",
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "Pipeline",
    "PipelineDefinitionError",
    "Resolver",
    "ResolverStrategy",
    "SpanRangeStrategy",
    "check_type",
    "file_digest",
    "layout",
]
