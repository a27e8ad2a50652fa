"""Span ranges (TFX's ``range_config.proto``): ``RangeConfig``, ``StaticRange``, ``RollingRange``.

Example::

    from conveyor.tfx import proto

    latest_three = proto.RangeConfig(rolling_range=proto.RollingRange(num_spans=3))
    spans_2_to_5 = proto.RangeConfig(
        static_range=proto.StaticRange(start_span_number=2, end_span_number=5))
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Int32, Message, MessageField

__all__ = ["RangeConfig", "RollingRange", "StaticRange"]


class StaticRange(Message):
    """Spans ``start_span_number`` to ``end_span_number``, both included (both required)."""

    start_span_number = Int32()
    end_span_number = Int32()


class RollingRange(Message):
    """The ``num_spans`` newest spans, none before ``start_span_number``."""

    start_span_number = Int32()
    num_spans = Int32()


class RangeConfig(Message):
    """A range of spans: one of ``static_range`` or ``rolling_range``."""

    static_range = MessageField(StaticRange, oneof="range")
    rolling_range = MessageField(RollingRange, oneof="range")
