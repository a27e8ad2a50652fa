"""Transform's message (TFX's ``transform.proto``): ``SplitsConfig``.

Example::

    from conveyor.tfx import proto

    splits_config = proto.SplitsConfig(analyze_splits=["train"],
                                       transform_splits=["train", "eval"])
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Message, Repeated, String

__all__ = ["SplitsConfig"]


class SplitsConfig(Message):
    """The splits the analyzers read and the splits that are transformed."""

    analyze_splits = Repeated(String())
    transform_splits = Repeated(String())
