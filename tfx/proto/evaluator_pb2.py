"""Evaluator's legacy slicing messages (TFX's ``evaluator.proto``).

Example::

    from conveyor.tfx import proto

    slicing = proto.FeatureSlicingSpec(specs=[proto.SingleSlicingSpec(column_for_slicing=["island"])])
"""

from __future__ import annotations

from conveyor.tfx.proto.message import Message, Repeated, String

__all__ = ["FeatureSlicingSpec", "SingleSlicingSpec"]


class SingleSlicingSpec(Message):
    """One slicing: by the columns named (none: the whole data set)."""

    column_for_slicing = Repeated(String())


class FeatureSlicingSpec(Message):
    """The slicings to compute metrics on."""

    specs = Repeated(SingleSlicingSpec)
