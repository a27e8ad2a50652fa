"""TFX's ``tfx.dsl.experimental``: the resolver strategies, ``RuntimeParameter`` and
``create_container_component``.

Example::

    from conveyor import tfx

    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing))
    train_steps = tfx.dsl.experimental.RuntimeParameter(name="train_steps", ptype=int, default=100)
"""

from conveyor.dsl import (
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    ResolverStrategy,
    RuntimeParameter,
    SpanRangeStrategy,
)
from conveyor.dsl.container_component import create_container_component

__all__ = [
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "ResolverStrategy",
    "RuntimeParameter",
    "SpanRangeStrategy",
    "create_container_component",
]
