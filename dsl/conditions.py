"""``Cond``: components that run only when a predicate holds in the run (TFX's ``Cond``).

Components created inside ``with Cond(predicate):`` carry the predicate (nested
blocks AND theirs together) and wait for the producers of the channels it
reads. When the pipeline runs, a component whose predicate is false is
SKIPPED: not executed, recorded in ML Metadata as skipped, and so are the
components that need one of its outputs (an optional input from a skipped
producer is left out instead).

Example::

    from conveyor.dsl import Cond

    with Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = Pusher(model=trainer.outputs["model"], push_destination=...)
"""

from __future__ import annotations

import threading

from conveyor.dsl.placeholders import Predicate

__all__ = ["Cond", "active_conditions", "conditions_of", "condition_channels"]

_local = threading.local()


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


class Cond:
    """A block whose components run only when ``predicate`` holds.

    Args:
      predicate: a :class:`~conveyor.dsl.placeholders.Predicate`, such as
        ``channel.future()[0].custom_property("blessed") == 1``.
    """

    def __init__(self, predicate: Predicate):
        if not isinstance(predicate, Predicate):
            raise TypeError(
                "Cond takes a predicate on a channel's artifacts, e.g. "
                "Cond(evaluator.outputs['blessing'].future()[0].custom_property('blessed') == 1), "
                f"not {predicate!r}"
            )
        if not predicate.channels():
            raise TypeError(
                f"Cond({predicate!r}) reads no channel: it would be fixed before the run"
            )
        unbound = [ch for ch in predicate.channels() if getattr(ch, "producer", None) is None]
        if unbound:
            raise TypeError(
                f"Cond({predicate!r}) reads {unbound[0]!r}, which no component produces"
            )
        self.predicate = predicate

    def __enter__(self) -> Cond:
        _stack().append(self.predicate)
        return self

    def __exit__(self, *exc) -> bool:
        _stack().pop()
        return False

    def __repr__(self) -> str:
        return f"Cond({self.predicate!r})"


def active_conditions() -> tuple[Predicate, ...]:
    """The predicates of the ``Cond`` blocks around the code that calls it, outermost first."""
    return tuple(_stack())


def conditions_of(component) -> tuple[Predicate, ...]:
    """The predicates a component runs under (all must hold)."""
    return tuple(getattr(component, "conditions", ()) or ())


def condition_channels(predicates) -> list:
    """The channels the predicates read, each once."""
    found: dict[int, object] = {}
    for p in predicates:
        for ch in p.channels():
            found.setdefault(id(ch), ch)
    return list(found.values())
