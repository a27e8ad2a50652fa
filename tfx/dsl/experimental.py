"""TFX's ``tfx.dsl.experimental``: the resolver strategies and ``RuntimeParameter``.

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

__all__ = [
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "ResolverStrategy",
    "RuntimeParameter",
    "SpanRangeStrategy",
]


def __getattr__(name: str):
    if name == "create_container_component":
        # Container components are their own piece of work; found here once they exist.
        import importlib

        for home in ("conveyor.tfx.dsl.components", "conveyor.dsl.container_component"):
            try:
                module = importlib.import_module(home)
            except ImportError:
                continue
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            "conveyor.tfx.dsl.experimental has no create_container_component yet: Conveyor has "
            "no container components"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
