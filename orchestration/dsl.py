"""Defining pipelines: components wired by the artifacts they pass.

A component declares typed inputs, typed outputs and parameters. Passing one
component's output to another's input (``StatisticsGen(examples=gen.outputs["examples"])``)
is what makes the edge of the DAG. :class:`Pipeline` checks the wiring when it is
built: a cycle, an input whose producer is not in the pipeline, a type mismatch
or a duplicate id is an error then, not at run time.

Example::

    from conveyor.orchestration import Pipeline, LocalDagRunner
    from conveyor.components import ExampleGen, StatisticsGen

    gen = ExampleGen(input_base="data/flights.csv")
    stats = StatisticsGen(examples=gen.outputs["examples"])
    pipeline = Pipeline("flights", root="out/pipeline", components=[gen, stats])
    LocalDagRunner().run(pipeline)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from conveyor.orchestration.artifacts import Artifact, check_type


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
                raise PipelineDefinitionError(f"{self.id}: missing required input {key!r} ({spec.type_name})")
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
                h.update(_file_digest(path).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


#: The default of a parameter that must be given.
REQUIRED = object()


def _file_digest(path: str) -> str:
    """sha256 of a file, or of every file under a directory (names and contents)."""
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


class Pipeline:
    """A named DAG of components with a root directory and an ML Metadata store.

    Args:
      name: the pipeline's name (its ML Metadata context).
      root: where artifacts go: ``<root>/<component_id>/<output_key>/<execution_id>/``.
      components: the components; every producer of an input must be among them.
      beam_pipeline_args: Beam flags for every component.
      enable_cache: reuse outputs of an identical earlier execution.
      metadata_connection_config: an ML Metadata ``ConnectionConfig`` (default:
        SQLite at ``<root>/metadata.sqlite``).
    """

    def __init__(
        self,
        name: str,
        root: str,
        components: list[Component],
        beam_pipeline_args: list[str] | None = None,
        enable_cache: bool = True,
        metadata_connection_config=None,
    ):
        if not name or any(c in name for c in "/\\ "):
            raise PipelineDefinitionError(f"pipeline name {name!r} must be non-empty, without '/' or spaces")
        self.name = name
        self.root = os.path.abspath(root) if "://" not in root else root
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.enable_cache = enable_cache
        self.metadata_connection_config = metadata_connection_config
        self.components = self._ordered(components)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.root, "metadata.sqlite")

    def component(self, component_id: str) -> Component:
        for c in self.components:
            if c.id == component_id:
                return c
        raise KeyError(f"pipeline {self.name!r} has no component {component_id!r}; "
                       f"components: {[c.id for c in self.components]}")

    @staticmethod
    def _ordered(components: list[Component]) -> list[Component]:
        ids = [c.id for c in components]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise PipelineDefinitionError(f"duplicate component id(s) {dup}: pass id=... to tell them apart")
        members = {id(c) for c in components}
        for c in components:
            for up in c.upstream:
                if id(up) not in members:
                    keys = [k for k, ch in c.inputs.items() if ch.producer is up]
                    what = f"input {keys[0]!r}" if keys else "upstream dependency"
                    raise PipelineDefinitionError(
                        f"{c.id}: {what} comes from {up.id!r}, which is not in the pipeline's components"
                    )
        # Kahn's algorithm, keeping the given order among ready components.
        remaining = list(components)
        done: set[int] = set()
        order = []
        while remaining:
            ready = [c for c in remaining if all(id(u) in done for u in c.upstream)]
            if not ready:
                cycle = " -> ".join(c.id for c in remaining)
                raise PipelineDefinitionError(f"the pipeline has a cycle among: {cycle}")
            for c in ready:
                order.append(c)
                done.add(id(c))
                remaining.remove(c)
        return order

    def downstream_of(self, component: Component) -> list[Component]:
        return [c for c in self.components if any(u is component for u in c.upstream)]

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, components={[c.id for c in self.components]})"
