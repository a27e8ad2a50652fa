"""``RuntimeParameter``: a component parameter whose value is given when the pipeline runs.

As in TFX, a :class:`RuntimeParameter` stands for a parameter value in the
pipeline's definition; each run gives its value (``LocalDagRunner().run(pipeline,
runtime_parameters={"epochs": 5})``, ``conveyor run create --runtime-parameter
epochs=5``, an Airflow DAG run's conf, a Kubeflow run's parameters) or takes its
default. A parameter without default and without value is an error naming it
before anything runs. The value a component gets counts for its cache key and
is recorded with the execution's parameters.

Example::

    from conveyor.dsl import RuntimeParameter

    epochs = RuntimeParameter("epochs", int, default=10, description="training epochs")
    trainer = Trainer(..., train_args={"num_steps": RuntimeParameter("steps", int, default=100)})
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from conveyor.beam_utils.errors import UsageError

__all__ = [
    "PTYPES",
    "RuntimeParameter",
    "RuntimeParameterError",
    "parse_assignments",
    "resolve_runtime_parameters",
    "runtime_parameters_of",
    "substitute",
    "uses_runtime_parameters",
    "with_runtime_values",
]

#: The types a runtime parameter may have.
PTYPES = (int, float, str, bool)


class RuntimeParameterError(UsageError):
    """A runtime parameter that is unknown, has a value of the wrong type, or has no value."""


class RuntimeParameter:
    """A parameter value set when the pipeline runs (TFX's ``RuntimeParameter``).

    Args:
      name: the parameter's name in a run (a Python identifier: Kubeflow makes it an
        argument of the pipeline function).
      ptype: its type: ``int``, ``float``, ``str`` or ``bool``.
      default: the value a run that gives none uses (``None``: every run must give one).
      description: what it is, for people and for the orchestrators' forms.
    """

    def __init__(self, name: str, ptype: type, default=None, description: str | None = None):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"RuntimeParameter name {name!r} must be a Python identifier")
        if ptype not in PTYPES:
            raise TypeError(
                f"RuntimeParameter {name!r}: ptype must be one of int, float, str, bool, not {ptype!r}"
            )
        self.name = name
        self.ptype = ptype
        self.description = description
        self.default = None if default is None else self.check(default)

    def check(self, value) -> Any:
        """``value`` as this parameter's type (a text is parsed); RuntimeParameterError otherwise."""
        if isinstance(value, str) and self.ptype is not str:
            return self.parse(value)
        if self.ptype is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not self.ptype:
            raise RuntimeParameterError(
                f"runtime parameter {self.name!r} ({self.ptype.__name__}): "
                f"{value!r} is a {type(value).__name__}, not a {self.ptype.__name__}"
            )
        return value

    def parse(self, text: str) -> Any:
        """The value a text (a command-line argument, a template's output) stands for."""
        if self.ptype is str:
            return text
        low = text.strip().lower()
        try:
            if self.ptype is bool:
                if low in ("true", "1", "yes"):
                    return True
                if low in ("false", "0", "no"):
                    return False
                raise ValueError(text)
            return self.ptype(text.strip())
        except ValueError:
            raise RuntimeParameterError(
                f"runtime parameter {self.name!r} ({self.ptype.__name__}): "
                f"{text!r} is not a{'n' if self.ptype is int else ''} {self.ptype.__name__}"
            ) from None

    def spec(self) -> tuple:
        return (self.name, self.ptype, self.default, self.description)

    def __repr__(self) -> str:
        extra = "" if self.default is None else f", default={self.default!r}"
        return f"RuntimeParameter({self.name!r}, {self.ptype.__name__}{extra})"


def _walk(value):
    """The RuntimeParameters inside a parameter value (lists, tuples and dicts looked into)."""
    if isinstance(value, RuntimeParameter):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)


def uses_runtime_parameters(component) -> list[RuntimeParameter]:
    """The runtime parameters a component's parameters and conditions use."""
    found = [p for v in component.parameters.values() for p in _walk(v)]
    for predicate in getattr(component, "conditions", ()) or ():
        found += predicate.runtime_parameters()
    return found


def runtime_parameters_of(pipeline) -> dict[str, RuntimeParameter]:
    """``{name: RuntimeParameter}`` of a pipeline (a Pipeline or a list of components).

    Two different parameters with one name are a ``PipelineDefinitionError``.
    """
    from conveyor.dsl.component import PipelineDefinitionError

    components = getattr(pipeline, "components", pipeline)
    found: dict[str, RuntimeParameter] = {}
    for c in components:
        for p in uses_runtime_parameters(c):
            known = found.setdefault(p.name, p)
            if known is not p and known.spec() != p.spec():
                raise PipelineDefinitionError(
                    f"{c.id}: runtime parameter {p.name!r} is defined twice, differently: "
                    f"{known!r} and {p!r}"
                )
    return found


def resolve_runtime_parameters(pipeline, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every runtime parameter's value in a run: the given one (checked, a text parsed) or its default.

    Raises :class:`RuntimeParameterError` naming a given name the pipeline does
    not have, a value of the wrong type, or parameters with neither value nor default.
    """
    params = runtime_parameters_of(pipeline)
    given = dict(given or {})
    unknown = sorted(set(given) - set(params))
    if unknown:
        has = ", ".join(sorted(params)) or "none"
        raise RuntimeParameterError(
            f"unknown runtime parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; the pipeline's runtime parameters: {has}"
        )
    values = {}
    missing = []
    for name, p in params.items():
        if given.get(name) is not None:
            values[name] = p.check(given[name])
        elif p.default is not None:
            values[name] = p.default
        else:
            missing.append(name)
    if missing:
        raise RuntimeParameterError(
            f"runtime parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} ha{'ve' if len(missing) > 1 else 's'} no value "
            "and no default: give a value (runtime_parameters={name: value}, "
            "--runtime-parameter NAME=VALUE)"
        )
    return values


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["name=value", ...]`` (command-line arguments) as ``{name: "value"}``."""
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise RuntimeParameterError(
                f"--runtime-parameter {item!r}: expected NAME=VALUE (e.g. epochs=5)"
            )
        out[name.strip()] = value
    return out


def substitute(value, values: Mapping[str, Any]):
    """``value`` with each RuntimeParameter in it replaced by its value in ``values``."""
    if isinstance(value, RuntimeParameter):
        if value.name not in values:
            raise RuntimeParameterError(
                f"runtime parameter {value.name!r} has no value in this run"
            )
        return values[value.name]
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute(v, values) for v in value)
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    return value


def with_runtime_values(component, values: Mapping[str, Any]):
    """The component as it runs with these values: a shallow copy whose parameters hold them
    (so its fingerprint, hence its cache key, and what it records count them), or the
    component itself when it uses no runtime parameter."""
    if not any(True for v in component.parameters.values() for _ in _walk(v)):
        return component
    resolved = copy.copy(component)
    resolved.parameters = {k: substitute(v, values) for k, v in component.parameters.items()}
    return resolved
