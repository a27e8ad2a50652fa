"""Placeholders: values a pipeline names when it is defined and reads when it runs (TFX's ``ph``).

``channel.future()`` stands for the artifacts a channel's producer outputs in
the run; ``[0]`` picks one, and ``.custom_property(name)``, ``.property(name)``,
``.value`` (a simple-value artifact's value) and ``.uri`` give a value.
Comparing a value (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) with another or
with a constant (or a :class:`~conveyor.dsl.runtime.RuntimeParameter`) gives a
:class:`Predicate`; ``&``, ``|`` and ``~`` (or :func:`logical_and`,
:func:`logical_or`, :func:`logical_not`) combine predicates. A predicate is what
:class:`~conveyor.dsl.conditions.Cond` takes.

Example::

    from conveyor.dsl import Cond

    blessed = evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1
    with Cond(blessed):
        pusher = Pusher(model=trainer.outputs["model"], ...)

Values are compared as read: a property recorded as the text ``"1"`` equals
the number ``1`` (the text is read as a number or a boolean when the other side
is one); a property that is not set is ``None``, which equals nothing but
``None`` and cannot be ordered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

__all__ = [
    "ArtifactPlaceholder",
    "ChannelWrappedPlaceholder",
    "ConditionError",
    "Placeholder",
    "Predicate",
    "logical_and",
    "logical_not",
    "logical_or",
]


class ConditionError(ValueError):
    """A predicate that cannot be evaluated: a missing artifact, values that cannot be ordered."""


class Placeholder:
    """A value known only when the pipeline runs; comparing it gives a :class:`Predicate`."""

    def __eq__(self, other) -> Predicate:  # type: ignore[override]
        return Predicate("==", (self, other))

    def __ne__(self, other) -> Predicate:  # type: ignore[override]
        return Predicate("!=", (self, other))

    def __lt__(self, other) -> Predicate:
        return Predicate("<", (self, other))

    def __le__(self, other) -> Predicate:
        return Predicate("<=", (self, other))

    def __gt__(self, other) -> Predicate:
        return Predicate(">", (self, other))

    def __ge__(self, other) -> Predicate:
        return Predicate(">=", (self, other))

    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError(
            f"{self!r} has no truth value when the pipeline is defined: use it in "
            "Cond(...), and combine predicates with &, |, ~ (not and, or, not)"
        )

    def channels(self) -> list:
        """The channels this placeholder reads."""
        return []

    def resolve(self, artifacts_of: Callable, values: dict, seen: dict) -> Any:
        """The value at run time. ``artifacts_of(channel)`` gives the channel's artifacts,
        ``values`` the runtime parameters' values; ``seen`` collects ``{text: value}``."""
        raise NotImplementedError


class ChannelWrappedPlaceholder(Placeholder):
    """``channel.future()``: the artifacts of a channel in this run; ``[i]`` picks one.

    ``.custom_property``, ``.property``, ``.value`` and ``.uri`` read its first artifact.
    """

    def __init__(self, channel):
        self.channel = channel

    def __getitem__(self, index: int) -> ArtifactPlaceholder:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"{self!r}[...] takes an artifact index (an int), not {index!r}")
        return ArtifactPlaceholder(self, index)

    def custom_property(self, name: str) -> ArtifactValue:
        return self[0].custom_property(name)

    @property
    def value(self) -> ArtifactValue:
        return self[0].value

    @property
    def uri(self) -> ArtifactValue:
        return self[0].uri

    def channels(self) -> list:
        return [self.channel]

    def property(
        self, name: str
    ) -> ArtifactValue:  # last: it shadows the builtin in the class body
        return self[0].property(name)

    def __repr__(self) -> str:
        producer = getattr(self.channel.producer, "id", "?")
        return f"{producer}.outputs[{self.channel.key!r}].future()"


class ArtifactPlaceholder(Placeholder):
    """One artifact of a channel at run time (``channel.future()[index]``)."""

    def __init__(self, wrapped: ChannelWrappedPlaceholder, index: int):
        self.wrapped = wrapped
        self.index = index

    def custom_property(self, name: str) -> ArtifactValue:
        """The artifact's custom property ``name`` (``None`` if it is not set)."""
        return ArtifactValue(self, "custom_property", name)

    @property
    def value(self) -> ArtifactValue:
        """A simple-value artifact's value: its ``value`` property, or the ``value`` file in its folder."""
        return ArtifactValue(self, "value", None)

    @property
    def uri(self) -> ArtifactValue:
        return ArtifactValue(self, "uri", None)

    def channels(self) -> list:
        return self.wrapped.channels()

    def artifact(self, artifacts_of: Callable):
        found = artifacts_of(self.wrapped.channel)
        if found is None:
            found = []
        elif not isinstance(found, (list, tuple)):
            found = [found]
        try:
            return found[self.index]
        except IndexError:
            raise ConditionError(
                f"{self!r}: {self.wrapped!r} has {len(found)} artifact(s) in this run"
            ) from None

    def __repr__(self) -> str:
        return f"{self.wrapped!r}[{self.index}]"

    def property(
        self, name: str
    ) -> ArtifactValue:  # last: it shadows the builtin in the class body
        """The artifact's property ``name`` (in Conveyor, properties and custom ones are one set)."""
        return ArtifactValue(self, "property", name)


class ArtifactValue(Placeholder):
    """A value of one artifact: a (custom) property, its simple value or its URI."""

    def __init__(self, artifact: ArtifactPlaceholder, kind: str, name: str | None):
        self.artifact = artifact
        self.kind = kind
        self.name = name

    def channels(self) -> list:
        return self.artifact.channels()

    def resolve(self, artifacts_of, values, seen):
        art = self.artifact.artifact(artifacts_of)
        if self.kind == "uri":
            value = art.uri
        elif self.kind == "value":
            value = _value_of(art)
        else:
            value = art.properties.get(self.name)
        seen[repr(self)] = value
        return value

    def __repr__(self) -> str:
        if self.kind in ("value", "uri"):
            return f"{self.artifact!r}.{self.kind}"
        return f"{self.artifact!r}.{self.kind}({self.name!r})"


def _value_of(art):
    """A simple-value artifact's value: a value artifact's (``Integer``...) as its class decodes
    its file; else its ``value`` property, or the ``value`` file read as JSON or text."""
    from conveyor.dsl.artifact_types import ValueArtifact

    if isinstance(art, ValueArtifact):
        try:
            return art.read()
        except (FileNotFoundError, ValueError):
            return None
    return art.properties["value"] if "value" in art.properties else _read_value(art.uri)


def _read_value(uri: str):
    """A simple-value artifact's value: the file at ``uri`` or ``<uri>/value``, JSON if it parses."""
    path = os.path.join(uri, "value") if os.path.isdir(uri) else uri
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


_COMPARISONS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Predicate(Placeholder):
    """A condition on placeholders, evaluated when the pipeline runs.

    Built by comparing placeholders; ``a & b``, ``a | b`` and ``~a`` (or
    :meth:`logical_and`, :meth:`logical_or`, :meth:`logical_not`) combine them.
    """

    def __init__(self, op: str, operands: tuple):
        self.op = op
        self.operands = tuple(operands)
        if op in ("and", "or", "not"):
            for p in self.operands:
                if not isinstance(p, Predicate):
                    raise TypeError(
                        f"{op} combines predicates (comparisons of placeholders), not {p!r}"
                    )

    def __and__(self, other) -> Predicate:
        return logical_and(self, other)

    def __or__(self, other) -> Predicate:
        return logical_or(self, other)

    def __invert__(self) -> Predicate:
        return logical_not(self)

    def logical_and(self, other: Predicate) -> Predicate:
        return logical_and(self, other)

    def logical_or(self, other: Predicate) -> Predicate:
        return logical_or(self, other)

    def logical_not(self) -> Predicate:
        return logical_not(self)

    def channels(self) -> list:
        found: dict[int, Any] = {}
        for p in self.operands:
            if isinstance(p, Placeholder):
                for ch in p.channels():
                    found.setdefault(id(ch), ch)
        return list(found.values())

    def runtime_parameters(self) -> list:
        """The :class:`~conveyor.dsl.runtime.RuntimeParameter` objects the predicate compares with."""
        from conveyor.dsl.runtime import RuntimeParameter

        out = []
        for p in self.operands:
            if isinstance(p, Predicate):
                out += p.runtime_parameters()
            elif isinstance(p, RuntimeParameter):
                out.append(p)
        return out

    def resolve(self, artifacts_of, values, seen) -> bool:
        if self.op == "not":
            return not self.operands[0].resolve(artifacts_of, values, seen)
        if self.op in ("and", "or"):
            results = [p.resolve(artifacts_of, values, seen) for p in self.operands]
            return all(results) if self.op == "and" else any(results)
        a, b = (_operand(p, artifacts_of, values, seen) for p in self.operands)
        a, b = _comparable(a, b)
        if self.op not in ("==", "!=") and (a is None or b is None):
            raise ConditionError(f"{self!r}: cannot order {a!r} and {b!r} (a value is not set)")
        try:
            return bool(_COMPARISONS[self.op](a, b))
        except TypeError:
            raise ConditionError(f"{self!r}: cannot compare {a!r} with {b!r}") from None

    def evaluate(self, artifacts_of: Callable, values: dict | None = None) -> tuple[bool, dict]:
        """``(holds, {placeholder text: value read})`` in a run.

        ``artifacts_of(channel)`` gives a channel's artifacts in the run (a list, or
        one artifact), ``values`` the runtime parameters' values by name.
        """
        seen: dict = {}
        return self.resolve(artifacts_of, dict(values or {}), seen), seen

    def __repr__(self) -> str:
        if self.op == "not":
            return f"~({self.operands[0]!r})"
        if self.op in ("and", "or"):
            joint = " & " if self.op == "and" else " | "
            return joint.join(f"({p!r})" for p in self.operands)
        a, b = self.operands
        return f"{_text(a)} {self.op} {_text(b)}"


def _text(operand) -> str:
    from conveyor.dsl.runtime import RuntimeParameter

    if isinstance(operand, RuntimeParameter):
        return f"RuntimeParameter({operand.name!r})"
    return repr(operand)


def _operand(p, artifacts_of, values, seen):
    from conveyor.dsl.runtime import RuntimeParameter

    if isinstance(p, Predicate):
        raise ConditionError(f"{p!r}: a predicate is not a value to compare")
    if isinstance(p, Placeholder):
        return p.resolve(artifacts_of, values, seen)
    if isinstance(p, RuntimeParameter):
        if p.name not in values:
            raise ConditionError(f"runtime parameter {p.name!r} has no value in this run")
        seen[_text(p)] = values[p.name]
        return values[p.name]
    return p


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _comparable(a, b):
    """Text read as the other side's kind: ``"1"`` and ``1``, ``"true"`` and ``True`` compare equal."""
    if isinstance(a, str) and not isinstance(b, str):
        return _from_text(a, b), b
    if isinstance(b, str) and not isinstance(a, str):
        return a, _from_text(b, a)
    return a, b


def _from_text(text: str, like):
    if isinstance(like, bool):
        low = text.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if isinstance(like, (int, float)):
        for kind in (int, float):
            try:
                return kind(text.strip())
            except ValueError:
                pass
    return text


def logical_and(*predicates: Predicate) -> Predicate:
    """Holds when every predicate holds (also ``a & b``)."""
    return Predicate("and", _flat("and", predicates))


def logical_or(*predicates: Predicate) -> Predicate:
    """Holds when any predicate holds (also ``a | b``)."""
    return Predicate("or", _flat("or", predicates))


def logical_not(predicate: Predicate) -> Predicate:
    """Holds when the predicate does not (also ``~a``)."""
    return Predicate("not", (predicate,))


def _flat(op: str, predicates) -> tuple:
    if len(predicates) < 2:
        raise TypeError(f"logical_{op} takes two or more predicates")
    out = []
    for p in predicates:
        out += list(p.operands) if isinstance(p, Predicate) and p.op == op else [p]
    return tuple(out)
