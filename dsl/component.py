"""Pipeline nodes: a component's typed inputs, outputs and parameters, and its channels.

A component declares typed inputs, typed outputs and parameters. Passing one
component's output to another's input (``StatisticsGen(examples=gen.outputs["examples"])``)
is what makes an edge of the DAG; :class:`~conveyor.dsl.pipeline.Pipeline` checks
the wiring when it is built.

Example::

    from conveyor.dsl import Component, InputSpec

    class CountRows(Component):
        INPUTS = {"examples": InputSpec("Examples")}
        OUTPUTS = {"statistics": "ExampleStatistics"}
        PARAMETERS = {"limit": None}

        def execute(self, ctx):
            ...
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from conveyor.dsl.artifacts import Artifact, check_type
from conveyor.dsl.conditions import active_conditions, condition_channels

__all__ = [
    "REQUIRED",
    "Channel",
    "Component",
    "ExecutionContext",
    "InputSpec",
    "PipelineDefinitionError",
    "file_digest",
]


class PipelineDefinitionError(ValueError):
    """A pipeline whose wiring is wrong: a cycle, a missing input, a type mismatch."""


def type_name_of(artifact_type) -> str:
    """The artifact type name of ``"Model"`` or of an object with a ``TYPE_NAME`` (an artifact class)."""
    name = (
        artifact_type
        if isinstance(artifact_type, str)
        else getattr(artifact_type, "TYPE_NAME", None)
    )
    if not isinstance(name, str):
        raise PipelineDefinitionError(
            f"an artifact type is a type name ('Model') or a class with a TYPE_NAME, "
            f"not {artifact_type!r}"
        )
    try:
        return check_type(name)
    except ValueError as e:
        raise PipelineDefinitionError(str(e)) from None


class Channel:
    """Artifacts of one type: a component's output, or (unbound) what a Resolver looks for.

    Two forms, as in TFX:

    - ``component.outputs[key]``: the output ``key`` of a component of the
      pipeline (``producer`` and ``key`` set). Passing it to another component's
      input makes an edge of the DAG.
    - ``Channel(type="Model", producer_component_id=None, output_key=None)``:
      unbound, naming artifacts to find in ML Metadata (of that type, produced
      by that component id and on that output key when given). Only a
      :class:`~conveyor.dsl.resolver.Resolver` takes one as input.

    ``type`` is a type name (``"Model"``) or anything with a ``TYPE_NAME``
    attribute (an artifact class).

    Attributes:
      type: what was given as the type (the name or the class).
      type_name: the artifact type's name.
      producer: the producing component (None for an unbound channel).
      key: the producer's output key (``output_key`` for an unbound channel).
      producer_component_id, output_key: the producer's id and output key
        (those given, for an unbound channel).
    """

    def __init__(
        self,
        type=None,
        producer_component_id: str | None = None,
        output_key: str | None = None,
        *,
        producer: Component | None = None,
        key: str | None = None,
        type_name: str | None = None,
    ):
        # The old positional form: Channel(producer, key, type_name).
        if isinstance(type, Component):
            type, producer, key = output_key, type, producer_component_id
            producer_component_id = output_key = None
        if type is None:
            type = type_name
        if type is None:
            raise PipelineDefinitionError("Channel needs a type: Channel(type='Model')")
        self.type = type
        self.type_name = type_name_of(type)
        self.producer = producer
        self._producer_component_id = producer_component_id
        self._key = key if key is not None else output_key

    @classmethod
    def output_of(cls, producer: Component, key: str, type_name: str) -> Channel:
        """The channel of ``producer.outputs[key]``."""
        return cls(type_name, producer=producer, key=key)

    @property
    def key(self) -> str | None:
        return self._key

    @property
    def output_key(self) -> str | None:
        return self._key

    @property
    def producer_component_id(self) -> str | None:
        # The producer's id as it is now: with_id() may rename it after its outputs were made.
        return self.producer.id if self.producer is not None else self._producer_component_id

    @property
    def bound(self) -> bool:
        """Whether this is a component's output (False: a standalone channel for a Resolver)."""
        return self.producer is not None

    def _identity(self):
        return (id(self.producer), self._producer_component_id, self._key, self.type_name)

    def __eq__(self, other) -> bool:
        return isinstance(other, Channel) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        if self.producer is not None:
            return f"Channel({self.producer.id}.outputs[{self.key!r}]: {self.type_name})"
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("producer_component_id", self._producer_component_id),
                ("output_key", self._key),
            )
            if value is not None
        )
        return f"Channel(type={self.type_name}{extra})"

    def future(self):
        """A placeholder for this channel's artifacts when the pipeline runs (TFX's ``future()``):
        ``channel.future()[0].custom_property("blessed") == 1`` is a predicate for ``Cond``."""
        from conveyor.dsl.placeholders import ChannelWrappedPlaceholder

        return ChannelWrappedPlaceholder(self)


@dataclass(frozen=True)
class InputSpec:
    """A declared input: its artifact type and whether it may be left out."""

    type_name: str
    optional: bool = False


class ExecutionContext:
    """What a component's :meth:`Component.execute` gets: its artifacts and settings.

    Attributes:
      inputs: ``{key: Artifact}`` for each connected input (the first, when an
        input holds several: a Resolver's SpanRangeStrategy gives several Examples).
      input_lists: ``{key: [Artifact, ...]}``, every artifact of each input.
      outputs: ``{key: Artifact}``; write into ``outputs[key].uri`` (a temporary
        directory, published when the execution succeeds).
      parameters: the component's parameters.
      beam_args: the pipeline's and the component's Beam flags.
      run_id: the pipeline run this execution belongs to.
    """

    def __init__(
        self, inputs, outputs, parameters, beam_args, run_id, pipeline_root, input_lists=None
    ):
        if input_lists is None:
            input_lists = {k: [a] for k, a in inputs.items()}
        self.input_lists: dict[str, list[Artifact]] = {k: list(v) for k, v in input_lists.items()}
        self.inputs: dict[str, Artifact] = inputs
        self.outputs: dict[str, Artifact] = outputs
        self.parameters: dict[str, Any] = parameters
        self.beam_args: list[str] = beam_args
        self.run_id: str = run_id
        self.pipeline_root: str = pipeline_root


class Component:
    """Base class of pipeline components.

    Subclasses set ``INPUTS`` (``{key: InputSpec}``), ``OUTPUTS`` (``{key: type}``),
    ``PARAMETERS`` (``{name: default}``; a default of :data:`REQUIRED` must be
    given) and implement :meth:`execute`. Parameters named in ``FILE_PARAMETERS``
    are paths whose contents count for caching (a module file, say).

    Args:
      id: the component's id in the pipeline (default: the class name).
      beam_args: Beam flags for this component, after the pipeline's.
      **kwargs: inputs (Channels) and parameters by name.
    """

    INPUTS: ClassVar[dict[str, InputSpec]] = {}
    OUTPUTS: ClassVar[dict[str, str]] = {}
    PARAMETERS: ClassVar[dict[str, Any]] = {}
    FILE_PARAMETERS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, id: str | None = None, beam_args: list[str] | None = None, **kwargs):
        self.id = id or type(self).__name__
        self.beam_args = list(beam_args or [])
        self.inputs: dict[str, Channel] = {}
        self.parameters: dict[str, Any] = {}
        self._upstream_extra: list[Component] = []
        # The predicates of the Cond blocks it is made in (TFX's Cond); it waits for what they read.
        self.conditions = active_conditions()
        self._upstream_extra += [ch.producer for ch in condition_channels(self.conditions)]
        for key, value in kwargs.items():
            if key in self.INPUTS:
                self._set_input(key, value)
            elif key in self.PARAMETERS:
                self.parameters[key] = value
            else:
                raise PipelineDefinitionError(
                    f"{self.id}: unknown argument {key!r}; inputs: {sorted(self.INPUTS)}, "
                    f"parameters: {sorted(self.PARAMETERS)}"
                )
        for key, spec in self.INPUTS.items():
            if key not in self.inputs and not spec.optional:
                raise PipelineDefinitionError(
                    f"{self.id}: missing required input {key!r} ({spec.type_name})"
                )
        for name, default in self.PARAMETERS.items():
            if name not in self.parameters:
                if default is REQUIRED:
                    raise PipelineDefinitionError(f"{self.id}: missing required parameter {name!r}")
                self.parameters[name] = default
        # A parameter read when the pipeline runs (other.outputs["x"].future()[0].value): it waits
        # for that output's producer; the launcher puts the value in.
        self._upstream_extra += [
            ch.producer for ch in placeholder_channels(self.parameters) if ch.producer is not None
        ]
        self.outputs = {
            key: Channel.output_of(self, key, type_name_of(t)) for key, t in self.OUTPUTS.items()
        }

    def with_id(self, id: str) -> Component:
        """Sets the component's id in the pipeline (TFX's ``with_id``); returns the component."""
        if not id or not isinstance(id, str):
            raise PipelineDefinitionError(f"a component id is a non-empty string, not {id!r}")
        self.id = id
        return self

    def _set_input(self, key: str, value) -> None:
        spec = self.INPUTS[key]
        if value is None:
            return
        if not isinstance(value, Channel):
            raise PipelineDefinitionError(
                f"{self.id}: input {key!r} must be another component's output "
                f"(e.g. gen.outputs['examples']), not {type(value).__name__}"
            )
        if not value.bound:
            raise PipelineDefinitionError(
                f"{self.id}: input {key!r} is {value!r}, a standalone channel: only a Resolver "
                f"takes one (Resolver(strategy_class=..., {key}={value!r}).outputs[{key!r}])"
            )
        if value.type_name != spec.type_name:
            raise PipelineDefinitionError(
                f"{self.id}: input {key!r} expects {spec.type_name}, but "
                f"{value.producer.id}.outputs[{value.key!r}] is {value.type_name}"
            )
        self.inputs[key] = value

    def add_upstream(self, other: Component) -> Component:
        """Makes this component run after ``other`` without passing an artifact."""
        self._upstream_extra.append(other)
        return self

    def add_upstream_node(self, upstream_node: Component) -> Component:
        """TFX's name of :meth:`add_upstream`."""
        return self.add_upstream(upstream_node)

    def add_downstream_node(self, downstream_node: Component) -> Component:
        """Makes ``downstream_node`` run after this component (TFX's ``add_downstream_node``)."""
        downstream_node.add_upstream(self)
        return self

    def with_beam_pipeline_args(self, beam_pipeline_args) -> Component:
        """Adds Beam flags for this component, after the pipeline's (TFX's
        ``with_beam_pipeline_args``); returns the component."""
        self.beam_args = list(self.beam_args) + list(beam_pipeline_args)
        return self

    @property
    def upstream(self) -> list[Component]:
        """The components this one waits for."""
        seen = {}
        for ch in self.inputs.values():
            if ch.producer is not None:  # a Resolver's standalone channels wait for nothing
                seen[id(ch.producer)] = ch.producer
        for c in self._upstream_extra:
            seen[id(c)] = c
        return list(seen.values())

    def execute(self, ctx: ExecutionContext) -> dict | None:
        """Does the work. Returns optional properties to record per output key."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hash of what decides the outputs besides the inputs: type, parameters, files."""
        h = hashlib.sha256()
        h.update(f"{type(self).__module__}.{type(self).__qualname__}".encode())
        h.update(json.dumps(self.parameters, sort_keys=True, default=str).encode())
        for name in self.FILE_PARAMETERS:
            path = self.parameters.get(name)
            if path:
                h.update(name.encode())
                h.update(file_digest(path).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


#: The default of a parameter that must be given.
REQUIRED = object()


def placeholder_channels(parameters: dict) -> list:
    """The channels read by the placeholders among parameter values (``channel.future()[0].value``)."""
    from conveyor.dsl.placeholders import Placeholder

    return [
        ch
        for value in parameters.values()
        if isinstance(value, Placeholder)
        for ch in value.channels()
    ]


def file_digest(path: str) -> str:
    """The sha256 of a file, or of every file under a directory (names and contents)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                h.update(os.path.relpath(full, path).encode())
                with open(full, "rb") as f:
                    h.update(f.read())
    elif os.path.exists(path):
        with open(path, "rb") as f:
            h.update(f.read())
    else:
        h.update(b"<missing>")
    return h.hexdigest()
