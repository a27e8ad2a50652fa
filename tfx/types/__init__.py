"""TFX's ``tfx.v1.types``: ``standard_artifacts``, ``Channel`` and the artifact base class.

``Artifact`` (with ``Property`` and ``PropertyType``) is the base of custom
artifact types, as TFX's; ``BaseChannel`` / ``OutputChannel`` and
``BaseNode`` / ``BaseComponent`` are there for type hints.

Example::

    from conveyor import tfx

    class Report(tfx.types.Artifact):
        TYPE_NAME = "Report"
        PROPERTIES = {"pages": tfx.types.Property(type=tfx.types.PropertyType.INT)}

    channel = tfx.types.Channel(type=tfx.types.standard_artifacts.Model)
"""

from conveyor.dsl import Channel, Component
from conveyor.dsl.artifacts import Artifact, Property, PropertyType
from conveyor.tfx.types import standard_artifacts

#: TFX's type-hint names: every channel is a Channel, every node a Component.
BaseChannel = Channel
OutputChannel = Channel
BaseNode = Component
BaseComponent = Component

__all__ = [
    "Artifact",
    "BaseChannel",
    "BaseComponent",
    "BaseNode",
    "Channel",
    "OutputChannel",
    "Property",
    "PropertyType",
    "standard_artifacts",
]
