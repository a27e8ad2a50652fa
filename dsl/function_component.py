"""Python function components (TFX's ``@component``): a typed function becomes a component class.

The function's arguments, by their annotations (TFX's semantics):

- ``Parameter[T]`` (``T`` int, float, str, bool or bytes): a parameter, known
  when the pipeline is defined (or a ``RuntimeParameter``, or a value read when
  the pipeline runs: ``other.outputs["x"].future()[0].value``); recorded with
  the execution and counted in its cache key. With a default it may be left
  out; the default must be ``None`` or of type ``T``.
- ``int``, ``float``, ``str``, ``bool``, ``bytes`` (or ``Optional[...]`` of
  one), ``dict``, ``list``: a value-artifact input (``Integer``, ``Float``,
  ``String``, ``Boolean``, ``Bytes``, ``JsonValue``): pass another component's
  output; the function gets its value. Optional when it has a default.
- ``InputArtifact[T]``: an input artifact of class ``T``; optional when its
  default is ``None``.
- ``OutputArtifact[T]``: an output artifact of class ``T`` to write into
  (``.uri``) and set properties on; never optional.
- ``BeamComponentParameter[beam.Pipeline] = None`` (with ``@component(use_beam=True)``):
  a Beam pipeline made with the pipeline's and the component's Beam flags.

The return annotation is ``None`` or ``OutputDict(name=type, ...)`` (or a
``TypedDict``) of simple types: each value the function returns becomes an
output artifact of the matching value type, its value in ``<uri>/value`` and
in the artifact's ``value`` property, so ``Cond(node.outputs["accuracy"].future()[0].value > 0.9)``
reads it and another component's parameter can be ``node.outputs["accuracy"].future()[0].value``.

The decorated name is a component class: calling it with keyword arguments
makes a node whose id is the function's name (``.with_id(...)`` renames it).
Its fingerprint (hence its cache key) includes the function's source. It runs
in launcher child processes too: the class pickles by reference when its
module can be imported there, and by value (the function's code with it)
when not.

Example::

    from conveyor.dsl.function_component import (
        InputArtifact, OutputArtifact, OutputDict, Parameter, component)
    from conveyor.dsl.artifact_types import Examples, Model

    @component
    def Train(examples: InputArtifact[Examples], model: OutputArtifact[Model],
              steps: Parameter[int] = 10) -> OutputDict(accuracy=float):
        ...
        return {"accuracy": 0.93}

    train = Train(examples=gen.outputs["examples"], steps=100)
    with Cond(train.outputs["accuracy"].future()[0].value > 0.9):
        ...
"""

from __future__ import annotations

import hashlib
import inspect
import types
import typing
from typing import Any, ClassVar

from conveyor.dsl.artifacts import Artifact, make_artifact
from conveyor.dsl.component import (
    REQUIRED,
    Channel,
    Component,
    InputSpec,
    PipelineDefinitionError,
)

__all__ = [
    "AsyncOutputArtifact",
    "BeamComponentParameter",
    "BeamComponentParameters",
    "FunctionComponent",
    "InputArtifact",
    "OutputArtifact",
    "OutputDict",
    "Parameter",
    "as_class",
    "check_parameter_value",
    "component",
    "fits_type",
    "parameter_value",
    "recorded_properties",
]


# -- annotations ------------------------------------------------------------------------


class _Annotation:
    """``Name[T]``: an argument's role and its type."""

    def __init__(self, type_):
        self.type = type_

    def __class_getitem__(cls, type_):
        return cls(cls._check(type_))

    @classmethod
    def _check(cls, type_):
        return type_

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{getattr(self.type, '__name__', self.type)!r}]"


class _ArtifactAnnotation(_Annotation):
    @classmethod
    def _check(cls, type_):
        if not (isinstance(type_, type) and issubclass(type_, Artifact) and type_.TYPE_NAME):
            raise PipelineDefinitionError(
                f"{cls.__name__}[T] takes an artifact class with a TYPE_NAME "
                f"(conveyor.dsl.artifact_types.Examples, or your own subclass), not {type_!r}"
            )
        return type_


class InputArtifact(_ArtifactAnnotation):
    """``InputArtifact[T]``: an input artifact of class ``T`` (optional with default ``None``)."""


class OutputArtifact(_ArtifactAnnotation):
    """``OutputArtifact[T]``: an output artifact of class ``T``, written by the function."""


class AsyncOutputArtifact(_ArtifactAnnotation):
    """TFX's intermediate outputs of a still-running component: not supported by Conveyor
    (a component's outputs are published when it ends); ``@component`` refuses it."""


#: The types a ``Parameter[T]`` may have.
PARAMETER_TYPES = (int, float, str, bool, bytes)


class Parameter(_Annotation):
    """``Parameter[T]``: a parameter of type ``T`` (int, float, str, bool or bytes)."""

    @classmethod
    def _check(cls, type_):
        if type_ not in PARAMETER_TYPES:
            raise PipelineDefinitionError(
                f"Parameter[T] takes int, float, str, bool or bytes, not {type_!r}"
            )
        return type_


class BeamComponentParameter(_Annotation):
    """``BeamComponentParameter[beam.Pipeline] = None``: the Beam pipeline of a ``use_beam`` component."""


#: The name the issue uses; TFX's is :class:`BeamComponentParameter`.
BeamComponentParameters = BeamComponentParameter


class OutputDict:
    """The return annotation ``OutputDict(name=type, ...)``: the simple values the function returns."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in self.kwargs.items())
        return f"OutputDict({inner})"


# -- what an argument or a returned value is -----------------------------------------------

INPUT, OUTPUT, VALUE, PARAMETER, BEAM = "input", "output", "value", "parameter", "beam"

#: A simple type as the value artifact type that carries it.
_VALUE_TYPES = {
    int: "Integer",
    float: "Float",
    str: "String",
    bool: "Boolean",
    bytes: "Bytes",
    dict: "JsonValue",
    list: "JsonValue",
}
#: Value types whose value is also recorded as the artifact's ``value`` property.
_RECORDED_VALUE_TYPES = ("Integer", "Float", "String", "Boolean")
#: Names every component takes itself.
_TAKEN = ("id", "beam_args")


def _simple_type(hint):
    """``int`` for ``int`` or ``Optional[int]`` (``Dict``/``List`` generics as dict/list); None otherwise."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _simple_type(args[0]) if len(args) == 1 else None
    if origin in (dict, list):
        return origin
    return hint if hint in _VALUE_TYPES else None


def _argument(func, name: str, hint, default) -> tuple[str, Any]:
    """``(format, type)`` of one argument; a PipelineDefinitionError says what is wrong."""
    where = f"@component {func.__name__}: argument {name!r}"
    has_default = default is not inspect.Parameter.empty
    if isinstance(hint, AsyncOutputArtifact):
        raise PipelineDefinitionError(
            f"{where}: AsyncOutputArtifact is not supported: Conveyor publishes a component's "
            "outputs when it ends (use OutputArtifact)"
        )
    if isinstance(hint, InputArtifact):
        if has_default and default is not None:
            raise PipelineDefinitionError(f"{where}: an optional input's default must be None")
        return INPUT, hint.type
    if isinstance(hint, OutputArtifact):
        if has_default:
            raise PipelineDefinitionError(f"{where}: an output artifact cannot be optional")
        return OUTPUT, hint.type
    if isinstance(hint, Parameter):
        if has_default and default is not None and not fits_type(default, hint.type):
            raise PipelineDefinitionError(
                f"{where}: the default {default!r} is not a {hint.type.__name__} (nor None)"
            )
        return PARAMETER, hint.type
    if isinstance(hint, BeamComponentParameter):
        if default is not None:
            raise PipelineDefinitionError(
                f"{where}: a BeamComponentParameter's default must be None"
            )
        return BEAM, hint.type
    simple = _simple_type(hint)
    if simple is not None:
        if has_default and default is not None and not fits_type(default, simple):
            raise PipelineDefinitionError(
                f"{where}: the default {default!r} is not a {simple.__name__} (nor None)"
            )
        return VALUE, simple
    if isinstance(hint, type) and issubclass(hint, Artifact):
        raise PipelineDefinitionError(
            f"{where}: say whether the artifact is read or written: "
            f"InputArtifact[{hint.__name__}] or OutputArtifact[{hint.__name__}]"
        )
    raise PipelineDefinitionError(
        f"{where}: unknown annotation {hint!r}; use Parameter[T], InputArtifact[T], "
        "OutputArtifact[T], BeamComponentParameter[beam.Pipeline] or int/float/str/bool/bytes"
    )


def fits_type(value, type_) -> bool:
    """Whether ``value`` is a ``type_`` (an int is a float; a bool is neither int nor float)."""
    if type_ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type_)


def _returned(func, hints: dict) -> dict[str, type]:
    """``{output key: simple type}`` of the return annotation."""
    ret = hints.get("return", None)
    if ret is None or ret is type(None):
        return {}
    if isinstance(ret, OutputDict):
        fields = ret.kwargs
    elif isinstance(ret, type) and typing.is_typeddict(ret):
        fields = typing.get_type_hints(ret)
    else:
        raise PipelineDefinitionError(
            f"@component {func.__name__}: the return annotation is None, OutputDict(name=type, ...) "
            f"or a TypedDict, not {ret!r}"
        )
    out = {}
    for key, hint in fields.items():
        simple = _simple_type(hint)
        if simple is None:
            raise PipelineDefinitionError(
                f"@component {func.__name__}: returned value {key!r} must be int, float, str, "
                f"bool, bytes, dict or list, not {hint!r} (an artifact is an OutputArtifact argument)"
            )
        out[key] = simple
    return out


def _source_digest(func) -> str:
    """A digest of the function's source (its code and constants when the source is not found)."""
    h = hashlib.sha256()
    try:
        h.update(inspect.getsource(func).encode())
    except (OSError, TypeError):
        code = func.__code__
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    return h.hexdigest()


# -- the component classes ---------------------------------------------------------------


class FunctionComponent(Component):
    """The base of the classes :func:`component` makes; one instance is one node.

    Args:
      **kwargs: the function's arguments: inputs (channels) and parameters, by name.
    """

    #: The user's function (a staticmethod).
    FUNCTION: ClassVar[Any] = None
    #: ``{argument: format}`` (INPUT, OUTPUT, VALUE, PARAMETER or BEAM), in the function's order.
    ARG_FORMATS: ClassVar[dict[str, str]] = {}
    #: ``{argument: type}``: an input's or output's artifact class, a parameter's or value's type.
    ARG_TYPES: ClassVar[dict[str, Any]] = {}
    #: The arguments that have a default.
    OPTIONAL: ClassVar[frozenset] = frozenset()
    #: ``{output key: simple type}`` of the values the function returns.
    RETURNED: ClassVar[dict[str, type]] = {}
    #: The sha256 of the function's source: part of the fingerprint.
    SOURCE_DIGEST: ClassVar[str] = ""
    USE_BEAM: ClassVar[bool] = False

    def __init__(self, *args, **kwargs):
        if args:
            raise PipelineDefinitionError(
                f"{type(self).__name__} takes keyword arguments only ({', '.join(self._arguments())})"
            )
        for key, value in kwargs.items():
            fmt = self.ARG_FORMATS.get(key)
            if fmt == VALUE and value is not None and not isinstance(value, Channel):
                raise PipelineDefinitionError(
                    f"{type(self).__name__}: {key!r} is a value input "
                    f"({self.ARG_TYPES[key].__name__}, carried by a value artifact): pass another "
                    f"component's output, or annotate it Parameter[{self.ARG_TYPES[key].__name__}] "
                    "for a value known when the pipeline is defined"
                )
            if fmt == PARAMETER:
                check_parameter_value(type(self).__name__, key, self.ARG_TYPES[key], value)
        super().__init__(**kwargs)

    @classmethod
    def _arguments(cls) -> list[str]:
        return [k for k, f in cls.ARG_FORMATS.items() if f in (INPUT, VALUE, PARAMETER)]

    def with_beam_pipeline_args(self, beam_pipeline_args) -> FunctionComponent:
        """Adds Beam flags for this component (TFX's ``with_beam_pipeline_args``); returns it."""
        self.beam_args = list(self.beam_args) + list(beam_pipeline_args)
        return self

    def fingerprint(self) -> str:
        """The base fingerprint and the function's source."""
        h = hashlib.sha256(super().fingerprint().encode())
        h.update(self.SOURCE_DIGEST.encode())
        return h.hexdigest()

    def execute(self, ctx):
        """Calls the function with its artifacts, values and parameters; records what it returns."""
        outputs = {key: as_class(a, self.ARG_TYPES.get(key)) for key, a in ctx.outputs.items()}
        call = {}
        for name, fmt in self.ARG_FORMATS.items():
            if fmt == OUTPUT:
                call[name] = outputs[name]
            elif fmt == BEAM:  # the function runs it: ``with beam_pipeline as p: ...``
                call[name] = _beam_pipeline(ctx.beam_args)
            elif fmt == PARAMETER:
                value = ctx.parameters.get(name)
                if value is None and name in self.OPTIONAL:
                    continue  # the function's own default
                call[name] = parameter_value(self.id, name, self.ARG_TYPES[name], value)
            elif name in ctx.inputs:
                art = as_class(ctx.inputs[name], self.ARG_TYPES[name] if fmt == INPUT else None)
                call[name] = art if fmt == INPUT else art.read()
        returned = type(self).FUNCTION(**call)
        self._write_returned(returned, outputs)
        return {key: recorded_properties(art) for key, art in outputs.items()}

    def _write_returned(self, returned, outputs: dict[str, Artifact]) -> None:
        if returned is None:
            returned = {}
        if not isinstance(returned, dict):
            raise TypeError(
                f"{self.id}: the function returned {returned!r}; it returns a dict of "
                f"{sorted(self.RETURNED)} (its OutputDict)"
                if self.RETURNED
                else f"{self.id}: the function returned {returned!r}; its return annotation says None"
            )
        missing = sorted(set(self.RETURNED) - set(returned))
        if missing:
            raise ValueError(f"{self.id}: the function did not return {missing} (its OutputDict)")
        for key, kind in self.RETURNED.items():
            value = returned[key]
            if value is not None and not fits_type(value, kind):
                raise TypeError(
                    f"{self.id}: returned {key!r} is {value!r} ({type(value).__name__}), "
                    f"not a {kind.__name__}"
                )
            outputs[key].write(float(value) if kind is float and value is not None else value)


def check_parameter_value(component: str, name: str, type_, value) -> None:
    """Checks a parameter's value when the pipeline is defined: of its type, a runtime parameter,
    or a placeholder read when it runs; a PipelineDefinitionError names it otherwise."""
    from conveyor.dsl.placeholders import Placeholder, Predicate
    from conveyor.dsl.runtime import RuntimeParameter

    if isinstance(value, Predicate):
        raise PipelineDefinitionError(
            f"{component}: parameter {name!r} is a predicate ({value!r}); a placeholder value "
            "(channel.future()[0].value) or a constant is"
        )
    if value is None or isinstance(value, Placeholder) or fits_type(value, type_):
        return
    if isinstance(value, RuntimeParameter):
        if value.ptype is type_ or (type_ is float and value.ptype is int):
            return
        raise PipelineDefinitionError(
            f"{component}: parameter {name!r} is Parameter[{type_.__name__}]; "
            f"{value!r} is a {value.ptype.__name__}"
        )
    raise PipelineDefinitionError(
        f"{component}: parameter {name!r} is Parameter[{type_.__name__}], not {value!r} "
        f"({type(value).__name__})"
    )


def parameter_value(component_id: str, name: str, type_, value):
    """A parameter's value when the component runs (maybe read from an artifact), checked: a
    text is parsed as an int, float or bool parameter needs; a TypeError names it otherwise."""
    if isinstance(value, str) and type_ in (int, float, bool):
        from conveyor.dsl.runtime import RuntimeParameter

        value = RuntimeParameter(name, type_).parse(value)
    if not fits_type(value, type_):
        raise TypeError(
            f"{component_id}: parameter {name!r} is Parameter[{type_.__name__}], "
            f"but its value in this run is {value!r}"
        )
    return float(value) if type_ is float else value


def as_class(art: Artifact, cls=None) -> Artifact:
    """``art`` as an instance of its class (``cls``, or its type's registered class)."""
    if cls is not None and isinstance(art, cls) or cls is None and type(art) is not Artifact:
        return art
    if cls is not None and cls.TYPE_NAME == art.type_name:
        return cls(uri=art.uri, id=art.id, properties=art.properties)
    return make_artifact(art.type_name, art.uri, art.id, art.properties)


def recorded_properties(art: Artifact) -> dict:
    """What to record of an output artifact: its properties, and a simple value (an Integer's,
    Float's, String's or Boolean's, if written) as ``value``."""
    from conveyor.dsl.artifact_types import ValueArtifact

    props = dict(art.properties)
    if isinstance(art, ValueArtifact) and art.type_name in _RECORDED_VALUE_TYPES:
        try:
            value = art.read()
        except (FileNotFoundError, ValueError):
            value = None
        if value is not None:
            props["value"] = value
    return props


def _beam_pipeline(beam_args):
    """A Beam pipeline with these flags (and Conveyor's local defaults)."""
    import apache_beam as beam

    from conveyor.beam_utils.options import pipeline_options

    return beam.Pipeline(options=pipeline_options(beam_args))


def component(func=None, /, *, component_annotation=None, use_beam: bool = False):
    """Makes a component class of a typed function (TFX's ``@component``); see the module.

    Also ``@component(use_beam=True)`` for a function that takes a
    ``BeamComponentParameter[beam.Pipeline] = None`` argument.

    Args:
      func: the function (module level: its class must be found by name in other processes).
      component_annotation: TFX's system execution type; not supported (an error).
      use_beam: hand the function a Beam pipeline built with the pipeline's Beam flags.
    """
    if component_annotation is not None:
        raise PipelineDefinitionError(
            "@component(component_annotation=...): system execution annotations are not "
            "supported by Conveyor; leave it out"
        )
    if func is None:
        return lambda f: _make_class(f, use_beam)
    return _make_class(func, use_beam)


def _make_class(func, use_beam: bool) -> type:
    if not isinstance(func, types.FunctionType):
        raise PipelineDefinitionError(f"@component decorates a function, not {func!r}")
    if "<locals>" in func.__qualname__.split("."):
        raise PipelineDefinitionError(
            f"@component {func.__name__}: define the function at module level (it is defined in "
            "a function): launcher processes find its component by module and name"
        )
    spec = inspect.getfullargspec(func)
    if spec.varargs or spec.varkw or spec.kwonlyargs:
        raise PipelineDefinitionError(
            f"@component {func.__name__}: *args, **kwargs and keyword-only arguments are not supported"
        )
    hints = typing.get_type_hints(func) if func.__annotations__ else {}
    signature = inspect.signature(func)
    formats, arg_types, optional = {}, {}, set()
    for name, param in signature.parameters.items():
        if name not in hints:
            raise PipelineDefinitionError(
                f"@component {func.__name__}: argument {name!r} has no annotation"
            )
        if name in _TAKEN:
            raise PipelineDefinitionError(
                f"@component {func.__name__}: argument name {name!r} is taken by every component; "
                "rename it"
            )
        formats[name], arg_types[name] = _argument(func, name, hints[name], param.default)
        if param.default is not inspect.Parameter.empty:
            optional.add(name)
    returned = _returned(func, hints)
    beams = [n for n, f in formats.items() if f == BEAM]
    if beams and not use_beam:
        raise PipelineDefinitionError(
            f"@component {func.__name__}: argument {beams[0]!r} is a BeamComponentParameter: "
            "decorate with @component(use_beam=True)"
        )
    if use_beam and len(beams) != 1:
        raise PipelineDefinitionError(
            f"@component(use_beam=True) {func.__name__}: take one "
            "BeamComponentParameter[beam.Pipeline] = None argument"
        )
    clash = sorted(set(returned) & set(formats))
    if clash:
        raise PipelineDefinitionError(
            f"@component {func.__name__}: {clash} is both an argument and a returned value"
        )
    return _build_class(func, formats, arg_types, optional, returned, use_beam)


def _build_class(func, formats, arg_types, optional, returned, use_beam) -> type:
    inputs = {
        n: InputSpec(
            arg_types[n].TYPE_NAME if f == INPUT else _VALUE_TYPES[arg_types[n]], n in optional
        )
        for n, f in formats.items()
        if f in (INPUT, VALUE)
    }
    outputs = {n: arg_types[n].TYPE_NAME for n, f in formats.items() if f == OUTPUT}
    for key, kind in returned.items():
        outputs[key] = _VALUE_TYPES[kind]
        arg_types[key] = None
    defaults = inspect.signature(func).parameters
    parameters = {
        n: (defaults[n].default if n in optional else REQUIRED)
        for n, f in formats.items()
        if f == PARAMETER
    }
    namespace = {
        "INPUTS": inputs,
        "OUTPUTS": outputs,
        "PARAMETERS": parameters,
        "FUNCTION": staticmethod(func),
        "ARG_FORMATS": formats,
        "ARG_TYPES": arg_types,
        "OPTIONAL": frozenset(optional),
        "RETURNED": returned,
        "SOURCE_DIGEST": _source_digest(func),
        "USE_BEAM": use_beam,
        "__module__": func.__module__,
        "__qualname__": func.__qualname__,
        "__doc__": func.__doc__ or f"The component of the function {func.__name__}.",
    }
    return type(func.__name__, (FunctionComponent,), namespace)
