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


@dataclass(frozen=True)
class Channel:
    """An output of a component, as another component's input refers to it."""

    producer: Component
    key: str
    type_name: str

    def __repr__(self) -> str:
        return f"Channel({self.producer.id}.outputs[{self.key!r}]: {self.type_name})"


@dataclass(frozen=True)
class InputSpec:
    """A declared input: its artifact type and whether it may be left out."""

    type_name: str
    optional: bool = False


class ExecutionContext:
    """What a component's :meth:`Component.execute` gets: its artifacts and settings.

    Attributes:
      inputs: ``{key: Artifact}`` for each connected input.
      outputs: ``{key: Artifact}``; write into ``outputs[key].uri`` (a temporary
        directory, published when the execution succeeds).
      parameters: the component's parameters.
      beam_args: the pipeline's and the component's Beam flags.
      run_id: the pipeline run this execution belongs to.
    """

    def __init__(self, inputs, outputs, parameters, beam_args, run_id, pipeline_root):
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
        self.outputs = {key: Channel(self, key, check_type(t)) for key, t in self.OUTPUTS.items()}

    def _set_input(self, key: str, value) -> None:
        spec = self.INPUTS[key]
        if value is None:
            return
        if not isinstance(value, Channel):
            raise PipelineDefinitionError(
                f"{self.id}: input {key!r} must be another component's output "
                f"(e.g. gen.outputs['examples']), not {type(value).__name__}"
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

    @property
    def upstream(self) -> list[Component]:
        """The components this one waits for."""
        seen = {}
        for ch in self.inputs.values():
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
