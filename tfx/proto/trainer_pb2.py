"""Trainer's messages (TFX's ``trainer.proto``): ``TrainArgs`` and ``EvalArgs``.

Example::

    from conveyor.tfx import proto

    train_args = proto.TrainArgs(num_steps=100)
    eval_args = proto.EvalArgs(splits=["eval"], num_steps=5)
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Int32, Message, Repeated, String

__all__ = ["EvalArgs", "TrainArgs"]


class TrainArgs(Message):
    """The splits to train on (default ``train``) and the number of steps (0: until done)."""

    splits = Repeated(String())
    num_steps = Int32()


class EvalArgs(Message):
    """The splits to evaluate on (default ``eval``) and the number of steps (0: all)."""

    splits = Repeated(String())
    num_steps = Int32()
