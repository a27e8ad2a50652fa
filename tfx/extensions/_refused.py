"""The cloud extensions' components: each refuses, when made, naming what Conveyor cannot do."""

from __future__ import annotations

from conveyor.dsl import PipelineDefinitionError

__all__ = ["refused_component"]


def refused_component(name: str, argument: str, why: str) -> type:
    """A class named ``name`` whose construction raises ``PipelineDefinitionError``
    (``"<name>: <argument>: <why>"``)."""

    def __init__(self, *args, **kwargs):
        raise PipelineDefinitionError(f"{name}: {argument}: {why}")

    return type(name, (), {"__init__": __init__, "__doc__": f"TFX's {name}: refused ({why})."})
