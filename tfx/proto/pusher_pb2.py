"""Pusher's messages (TFX's ``pusher.proto``): ``PushDestination`` and ``Versioning``.

Example::

    from conveyor.tfx import proto

    destination = proto.PushDestination(
        filesystem=proto.PushDestination.Filesystem(base_directory="serving/penguins"))
"""

from __future__ import annotations

from conveyor.tfx.proto.message import EnumField, Message, MessageField, ProtoEnum, String

__all__ = ["AUTO", "UNIX_TIMESTAMP", "PushDestination", "Versioning"]


class Versioning(ProtoEnum):
    """How a pushed model's version folder is named."""

    AUTO = 0
    UNIX_TIMESTAMP = 1


class PushDestination(Message):
    """Where Pusher copies a blessed model: a folder on a filesystem."""

    class Filesystem(Message):
        """The folder the model goes under (``<base_directory>/<version>``)."""

        base_directory = String()
        versioning = EnumField(Versioning)

    filesystem = MessageField(Filesystem, oneof="destination")


AUTO = Versioning.AUTO
UNIX_TIMESTAMP = Versioning.UNIX_TIMESTAMP
