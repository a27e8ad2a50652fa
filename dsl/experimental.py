"""TFX's ``tfx.dsl.experimental`` names: the resolver strategies.

Example::

    from conveyor.dsl.experimental import LatestArtifactStrategy, LatestBlessedModelStrategy
"""

from conveyor.dsl.resolver import (
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    ResolverStrategy,
    SpanRangeStrategy,
)

__all__ = [
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "ResolverStrategy",
    "SpanRangeStrategy",
]
