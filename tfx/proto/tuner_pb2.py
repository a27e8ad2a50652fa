"""Tuner's message (TFX's ``tuner.proto``): ``TuneArgs``.

Example::

    from conveyor.tfx import proto

    tune_args = proto.TuneArgs(num_parallel_trials=1)
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Int32, Message

__all__ = ["TuneArgs"]


class TuneArgs(Message):
    """How many trials run at once."""

    num_parallel_trials = Int32()
