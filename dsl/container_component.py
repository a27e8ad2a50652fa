"""Container components (TFX's ``create_container_component``): a command line with placeholders.

``create_container_component(name, image, command, inputs, outputs, parameters)``
makes a component class whose work is one command. The command is a list of
strings and placeholders, filled when the component runs:

- ``InputUriPlaceholder(key)`` / ``input(key).uri``: an input artifact's URI;
- ``OutputUriPlaceholder(key)`` / ``output(key).uri``: where to write an output;
- ``InputValuePlaceholder(key)``: an input value artifact's value, or a parameter's;
  ``input(key).value``, ``exec_property(name)``;
- ``input(key).property(name)`` / ``.custom_property(name)``, ``input(key)[i]``;
- ``ConcatPlaceholder([...])`` or ``+``: pieces joined into one argument.

The URI of a value artifact (``Integer``, ``String``...) is the file that holds
its value (``<folder>/value``), as TFX has it: a command writes its value there.

Where it runs:

- On the local runners (LocalDagRunner, BeamDagRunner, ``conveyor component
  run``, Airflow's tasks) the command runs as a subprocess of the launcher,
  not in a shell. There is no container engine here: the image is recorded
  (in the execution's parameters in ML Metadata, and in the cache key), not
  pulled, so the command's programs must be installed where it runs. A
  command that exits non-zero fails the component with the end of its stderr.
- In the Kubeflow export it is a container task in ``image`` running the
  command (see :mod:`conveyor.orchestration.kubeflow`).

Example::

    from conveyor.dsl.container_component import (
        InputUriPlaceholder, OutputUriPlaceholder, create_container_component)
    from conveyor.dsl.artifact_types import Examples, Model

    Train = create_container_component(
        name="Train", image="registry.example/trainer:1",
        command=["python3", "train.py", "--data", InputUriPlaceholder("examples"),
                 "--model", OutputUriPlaceholder("model"),
                 "--steps", InputValuePlaceholder("steps")],
        inputs={"examples": Examples}, outputs={"model": Model}, parameters={"steps": int})
    train = Train(examples=gen.outputs["examples"], steps=100)
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
from typing import ClassVar

from conveyor.dsl.artifacts import Artifact
from conveyor.dsl.component import (
    REQUIRED,
    Component,
    InputSpec,
    PipelineDefinitionError,
    type_name_of,
)
from conveyor.dsl.function_component import (
    as_class,
    check_parameter_value,
    parameter_value,
    recorded_properties,
)

__all__ = [
    "CommandPlaceholder",
    "ConcatPlaceholder",
    "ContainerCommandError",
    "ContainerComponent",
    "InputPathPlaceholder",
    "InputUriPlaceholder",
    "InputValuePlaceholder",
    "OutputPathPlaceholder",
    "OutputUriPlaceholder",
    "create_container_component",
    "exec_property",
    "input",
    "output",
    "render_command",
]

#: The execution parameters that record the image and the command in ML Metadata.
IMAGE_PARAMETER, COMMAND_PARAMETER = "container_image", "container_command"
#: The end of a failed command's stderr kept in the error.
STDERR_TAIL_LINES = 20


class ContainerCommandError(RuntimeError):
    """A container component's command failed: not found, or a non-zero exit (with its stderr's end)."""


# -- placeholders -------------------------------------------------------------------------


class CommandPlaceholder:
    """A piece of a command line filled when the component runs; ``+`` joins pieces."""

    def render(self, ctx: _Filling) -> str:
        """The text of this piece in one execution."""
        raise NotImplementedError

    def refs(self) -> list[tuple[str, str]]:
        """``[(kind, key)]``: the inputs (``input``), outputs (``output``) and parameters
        (``parameter``; ``value``: an input or a parameter) it reads."""
        return []

    def __add__(self, other) -> ConcatPlaceholder:
        return ConcatPlaceholder([self, other])

    def __radd__(self, other) -> ConcatPlaceholder:
        return ConcatPlaceholder([other, self])

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class _Keyed(CommandPlaceholder):
    KIND = ""

    def __init__(self, key: str):
        if not isinstance(key, str) or not key:
            raise PipelineDefinitionError(
                f"{type(self).__name__} takes a key (a string), not {key!r}"
            )
        self.key = key

    def refs(self):
        return [(self.KIND, self.key)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class InputValuePlaceholder(_Keyed):
    """The value of an input value artifact, or of a parameter, named ``input_name``."""

    KIND = "value"

    def __init__(self, input_name: str):
        super().__init__(input_name)

    def render(self, ctx):
        return ctx.value_of(self.key)


class InputUriPlaceholder(_Keyed):
    """The URI of the input artifact ``input_name``."""

    KIND = "input"

    def __init__(self, input_name: str):
        super().__init__(input_name)

    def render(self, ctx):
        return ctx.uri_of(ctx.input(self.key, 0))


class InputPathPlaceholder(InputUriPlaceholder):
    """The local path of the input artifact ``input_name`` (its URI here)."""


class OutputUriPlaceholder(_Keyed):
    """The URI where the output artifact ``output_name`` is written."""

    KIND = "output"

    def __init__(self, output_name: str):
        super().__init__(output_name)

    def render(self, ctx):
        return ctx.uri_of(ctx.output(self.key))


class OutputPathPlaceholder(OutputUriPlaceholder):
    """The local path of the output artifact ``output_name`` (its URI here)."""


class ConcatPlaceholder(CommandPlaceholder):
    """Pieces (strings and placeholders) joined into one argument."""

    def __init__(self, items: list):
        if not isinstance(items, (list, tuple)):
            raise PipelineDefinitionError(
                f"ConcatPlaceholder takes a list of pieces, not {items!r}"
            )
        flat = []
        for item in items:
            _check_piece(item)
            flat += item.items if isinstance(item, ConcatPlaceholder) else [item]
        self.items = flat

    def render(self, ctx):
        return "".join(_render(item, ctx) for item in self.items)

    def refs(self):
        return [
            r for item in self.items if isinstance(item, CommandPlaceholder) for r in item.refs()
        ]

    def __repr__(self) -> str:
        return " + ".join(repr(i) for i in self.items)


class _ArtifactRef(CommandPlaceholder):
    """``input(key)`` / ``output(key)`` (TFX's ``ph.input``/``ph.output``), ``[i]`` one artifact."""

    def __init__(self, kind: str, key: str, index: int = 0, attr: str = "uri", name: str = ""):
        self.kind, self.key, self.index, self.attr, self.name = kind, key, index, attr, name

    def __getitem__(self, index: int) -> _ArtifactRef:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"{self!r}[...] takes an artifact index, not {index!r}")
        return _ArtifactRef(self.kind, self.key, index)

    @property
    def uri(self) -> _ArtifactRef:
        return _ArtifactRef(self.kind, self.key, self.index, "uri")

    @property
    def value(self) -> _ArtifactRef:
        return _ArtifactRef(self.kind, self.key, self.index, "value")

    def custom_property(self, name: str) -> _ArtifactRef:
        return _ArtifactRef(self.kind, self.key, self.index, "property", name)

    def refs(self):
        return [(self.kind, self.key)]

    def render(self, ctx):
        if self.kind == "output":
            if self.attr != "uri":
                raise ContainerCommandError(
                    f"{ctx.component_id}: {self!r}: an output has only a uri before the command runs"
                )
            return ctx.uri_of(ctx.output(self.key))
        art = ctx.input(self.key, self.index)
        if self.attr == "uri":
            return ctx.uri_of(art)
        if self.attr == "value":
            return _text(ctx.read_value(art, self.key))
        return _text(art.properties.get(self.name, ""))

    def __repr__(self) -> str:
        tail = {"uri": ".uri", "value": ".value"}.get(self.attr, f".property({self.name!r})")
        return f"{self.kind}({self.key!r})[{self.index}]{tail}"

    def property(self, name: str) -> _ArtifactRef:  # last: it shadows the builtin in the class
        return _ArtifactRef(self.kind, self.key, self.index, "property", name)


class _ExecProperty(_Keyed):
    KIND = "parameter"

    def render(self, ctx):
        return ctx.value_of(self.key)

    def __repr__(self) -> str:
        return f"exec_property({self.key!r})"


def input(key: str) -> _ArtifactRef:
    """TFX's ``ph.input(key)``: the input's artifacts; ``.uri``, ``.value``, ``[i]``, ``.property(name)``."""
    return _ArtifactRef("input", _Keyed(key).key)


def output(key: str) -> _ArtifactRef:
    """TFX's ``ph.output(key)``: the output artifact; ``.uri``."""
    return _ArtifactRef("output", _Keyed(key).key)


def exec_property(key: str) -> _ExecProperty:
    """TFX's ``ph.exec_property(name)``: a parameter's value."""
    return _ExecProperty(key)


def _check_piece(item) -> None:
    if not isinstance(item, (str, CommandPlaceholder)):
        raise PipelineDefinitionError(
            f"a command's pieces are strings and placeholders (InputUriPlaceholder('x'), "
            f"output('y').uri, ...), not {item!r} ({type(item).__name__})"
        )


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def _render(item, ctx) -> str:
    return item if isinstance(item, str) else item.render(ctx)


class _Filling:
    """What a command's placeholders read in one execution: its artifacts and parameters."""

    def __init__(self, component_id, inputs, outputs, parameters, parameter_types):
        self.component_id = component_id
        self.inputs = {k: [as_class(a) for a in v] for k, v in inputs.items()}
        self.outputs = {k: as_class(a) for k, a in outputs.items()}
        self.parameters = parameters
        self.parameter_types = parameter_types

    def input(self, key: str, index: int) -> Artifact:
        arts = self.inputs.get(key)
        if not arts:
            raise ContainerCommandError(
                f"{self.component_id}: the command reads input {key!r}, which has no artifact"
            )
        if index >= len(arts):
            raise ContainerCommandError(
                f"{self.component_id}: the command reads input {key!r}[{index}]; it has {len(arts)} artifact(s)"
            )
        return arts[index]

    def output(self, key: str) -> Artifact:
        return self.outputs[key]

    @staticmethod
    def uri_of(art: Artifact) -> str:
        """A value artifact's value file, else the artifact's folder."""
        from conveyor.dsl.artifact_types import ValueArtifact

        return art.value_path() if isinstance(art, ValueArtifact) else art.uri

    def read_value(self, art: Artifact, key: str):
        from conveyor.dsl.artifact_types import ValueArtifact

        if not isinstance(art, ValueArtifact):
            raise ContainerCommandError(
                f"{self.component_id}: the command reads the value of input {key!r}, a "
                f"{art.type_name} (only value artifacts, Integer, String..., have one)"
            )
        return art.read()

    def value_of(self, key: str) -> str:
        if key in self.parameters:
            value = self.parameters[key]
            if key in self.parameter_types:
                value = parameter_value(self.component_id, key, self.parameter_types[key], value)
            return _text(value)
        return _text(self.read_value(self.input(key, 0), key))


def render_command(
    component: ContainerComponent, inputs: dict, outputs: dict, parameters: dict
) -> list[str]:
    """The command line of one execution: ``inputs`` ``{key: [Artifact, ...]}``, ``outputs``
    ``{key: Artifact}`` (where they are written), ``parameters`` the values."""
    filling = _Filling(component.id, inputs, outputs, parameters, component.PARAMETER_TYPES)
    return [_render(item, filling) for item in component.COMMAND]


# -- the component ----------------------------------------------------------------------


class ContainerComponent(Component):
    """The base of the classes :func:`create_container_component` makes."""

    IMAGE: ClassVar[str] = ""
    COMMAND: ClassVar[list] = []
    PARAMETER_TYPES: ClassVar[dict[str, type]] = {}

    def __init__(self, *args, **kwargs):
        if args:
            raise PipelineDefinitionError(f"{type(self).__name__} takes keyword arguments only")
        for key, value in kwargs.items():
            if key in self.PARAMETER_TYPES:
                check_parameter_value(type(self).__name__, key, self.PARAMETER_TYPES[key], value)
        super().__init__(**kwargs)
        # recorded with each execution in ML Metadata, and part of the fingerprint
        self.parameters[IMAGE_PARAMETER] = self.IMAGE
        self.parameters[COMMAND_PARAMETER] = [
            item if isinstance(item, str) else repr(item) for item in self.COMMAND
        ]

    def execute(self, ctx):
        """Runs the command with its placeholders filled; records the outputs' values."""
        argv = render_command(self, ctx.input_lists, ctx.outputs, ctx.parameters)
        run_command(self.id, self.IMAGE, argv)
        return {key: recorded_properties(as_class(a)) for key, a in ctx.outputs.items()}


def run_command(component_id: str, image: str, argv: list[str]) -> None:
    """Runs ``argv`` (no shell), its stderr shown as it comes; a :class:`ContainerCommandError`
    with the end of its stderr if it cannot start or exits non-zero."""
    try:
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    except OSError as e:
        raise ContainerCommandError(
            f"{component_id}: cannot run {argv[0]!r} ({e.strerror or e}): the command runs here, "
            f"without its image {image!r} (there is no container engine), so {argv[0]!r} must be "
            "installed where the component runs"
        ) from None
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)

    def relay():
        for line in iter(proc.stderr.readline, b""):
            text = line.decode("utf-8", "replace")
            tail.append(text.rstrip("\n"))
            sys.stderr.write(text)
        sys.stderr.flush()

    reader = threading.Thread(target=relay, name=f"{component_id}-stderr", daemon=True)
    reader.start()
    try:
        rc = proc.wait()
    except BaseException:  # stopped: the command stops with it
        proc.kill()
        proc.wait()
        raise
    reader.join(timeout=5)
    if rc != 0:
        shown = " ".join(argv)
        shown = shown if len(shown) <= 300 else shown[:297] + "..."
        stderr = "\n".join(tail) or "(no stderr)"
        raise ContainerCommandError(
            f"{component_id}: the command exited with status {rc}: {shown}\nstderr (end):\n{stderr}"
        )


def create_container_component(
    name: str,
    image: str,
    command: list,
    inputs: dict | None = None,
    outputs: dict | None = None,
    parameters: dict | None = None,
) -> type:
    """A component class that runs ``command`` (TFX's ``create_container_component``); see the module.

    Args:
      name: the class's name and the nodes' default id.
      image: the container image (recorded; pulled only by Kubeflow).
      command: the command line: strings and placeholders.
      inputs: ``{key: artifact class or type name}``.
      outputs: ``{key: artifact class or type name}``.
      parameters: ``{key: int, float, str or bool}``.
    """
    if not isinstance(name, str) or not name:
        raise PipelineDefinitionError("create_container_component: name must be a non-empty string")
    where = f"create_container_component({name!r})"
    if not isinstance(image, str) or not image:
        raise PipelineDefinitionError(f"{where}: image must be an image name, not {image!r}")
    if not isinstance(command, (list, tuple)) or not command:
        raise PipelineDefinitionError(f"{where}: command must be a non-empty list")
    for item in command:
        _check_piece(item)
    inputs, outputs, parameters = dict(inputs or {}), dict(outputs or {}), dict(parameters or {})
    _check_parameter_types(where, parameters)
    _check_names(where, inputs, outputs, parameters)
    _check_refs(where, command, inputs, outputs, parameters)
    namespace = {
        "INPUTS": {k: InputSpec(type_name_of(t)) for k, t in inputs.items()},
        "OUTPUTS": {k: type_name_of(t) for k, t in outputs.items()},
        "PARAMETERS": {k: REQUIRED for k in parameters},
        "PARAMETER_TYPES": parameters,
        "IMAGE": image,
        "COMMAND": list(command),
        "__module__": sys._getframe(1).f_globals.get("__name__", __name__),
        "__doc__": f"Container component {name!r}: runs {image!r}.",
    }
    return type(name, (ContainerComponent,), namespace)


def _check_parameter_types(where: str, parameters: dict) -> None:
    for key, t in parameters.items():
        if t not in (int, float, str, bool):
            raise PipelineDefinitionError(
                f"{where}: parameter {key!r} has type {t!r}; parameters are int, float, str or bool"
            )


def _check_names(where: str, inputs: dict, outputs: dict, parameters: dict) -> None:
    taken = {"id", "beam_args", IMAGE_PARAMETER, COMMAND_PARAMETER}
    keys = [*inputs, *outputs, *parameters]
    for key in keys:
        if not isinstance(key, str) or not key.isidentifier():
            raise PipelineDefinitionError(
                f"{where}: {key!r} is not a valid name (a Python identifier)"
            )
        if key in taken:
            raise PipelineDefinitionError(
                f"{where}: the name {key!r} is taken by Conveyor; rename it"
            )
        if keys.count(key) > 1:
            raise PipelineDefinitionError(
                f"{where}: {key!r} names more than one of inputs, outputs and parameters"
            )


def _check_refs(where: str, command: list, inputs: dict, outputs: dict, parameters: dict) -> None:
    known = {
        "input": set(inputs),
        "output": set(outputs),
        "parameter": set(parameters),
        "value": set(inputs) | set(parameters),
    }
    for item in command:
        for kind, key in item.refs() if isinstance(item, CommandPlaceholder) else []:
            if key not in known[kind]:
                what = {"value": "inputs or parameters", "parameter": "parameters"}.get(
                    kind, f"{kind}s"
                )
                raise PipelineDefinitionError(
                    f"{where}: the command's {item!r} names {key!r}, which is not one of its "
                    f"{what} ({', '.join(sorted(known[kind])) or 'none'})"
                )
