"""What the TFX-named components share: refusals, config conversion, outputs, node methods.

Each component of :mod:`conveyor.tfx.components` subclasses the Conveyor node
it maps onto (``CsvExampleGen`` is an ``ExampleGen``) and takes TFX's
constructor arguments. An argument Conveyor cannot honour is refused when the
component is made, with a :class:`~conveyor.dsl.PipelineDefinitionError`
naming the component and the argument (:func:`refuse`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping

from conveyor.dsl import PipelineDefinitionError, RuntimeParameter
from conveyor.tfx.proto import Message

__all__ = [
    "TfxComponent",
    "TfxOutputs",
    "module_and_function",
    "not_runtime",
    "plain",
    "refuse",
    "single_split",
]


def refuse(component: str, argument: str, why: str) -> PipelineDefinitionError:
    """The error for a TFX argument Conveyor cannot honour: ``Trainer: trainer_fn: why``."""
    return PipelineDefinitionError(f"{component}: {argument}: {why}")


def plain(value):
    """A config as Conveyor's nodes keep it: a message as its dict; anything else as it is
    (a dict, JSON text, a protobuf message, a RuntimeParameter)."""
    if isinstance(value, Message):
        return value.to_dict()
    return value


def not_runtime(component: str, argument: str, value) -> None:
    """Refuses a RuntimeParameter for an argument Conveyor splits into several settings."""
    if isinstance(value, RuntimeParameter):
        raise refuse(
            component,
            argument,
            "a RuntimeParameter is not supported here (Conveyor maps its fields onto separate "
            "settings when the pipeline is defined); give the value itself",
        )


def field_of(value, component: str, argument: str, message_type: type[Message]) -> Message:
    """``value`` (a message, dict or JSON text) as a ``message_type`` message."""
    not_runtime(component, argument, value)
    if isinstance(value, message_type):
        return value
    try:
        if isinstance(value, (str, bytes)):
            return message_type.from_json(value)
        if isinstance(value, Mapping):
            return message_type.from_dict(value)
        if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
            from google.protobuf import json_format

            return message_type.from_dict(
                json_format.MessageToDict(value, preserving_proto_field_name=True)
            )
    except (TypeError, ValueError) as e:
        raise refuse(component, argument, str(e)) from None
    raise refuse(
        component,
        argument,
        f"expects a proto.{message_type.__qualname__} (or a dict of its fields), "
        f"not {type(value).__name__}",
    )


def single_split(component: str, argument: str, splits, conveyor_setting: str) -> str | None:
    """The one split a list names (None for an empty list); refuses several."""
    names = list(splits)
    if not names:
        return None
    if len(names) > 1:
        raise refuse(
            component,
            argument,
            f"Conveyor's {component} reads one split ({conveyor_setting}), not {names}",
        )
    return names[0]


def module_and_function(component: str, argument: str, dotted) -> tuple[str, str]:
    """``("/path/to/module.py", "function")`` for TFX's ``"package.module.function"`` path."""
    if isinstance(dotted, RuntimeParameter):
        raise refuse(component, argument, "a RuntimeParameter is not supported for a function path")
    if not isinstance(dotted, str) or "." not in dotted.strip("."):
        raise refuse(
            component,
            argument,
            f"a Python path to a function ('my_module.{argument}'), not {dotted!r}",
        )
    module, _, name = dotted.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise refuse(component, argument, f"cannot find module {module!r}: {e}") from None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise refuse(
            component, argument, f"module {module!r} of {dotted!r} is not importable from here"
        )
    if not spec.origin.endswith(".py"):
        raise refuse(
            component, argument, f"module {module!r} is {spec.origin}, not a Python source file"
        )
    return os.path.abspath(spec.origin), name


class TfxOutputs(dict):
    """A component's outputs by TFX's keys; a TFX output Conveyor does not make is a KeyError
    that says so (``Transform.outputs['post_transform_stats']``)."""

    def __init__(self, outputs: Mapping, component, not_made: Mapping[str, str]):
        super().__init__(outputs)
        self.component = component
        self.not_made = dict(not_made)

    @property
    def component_id(self) -> str:
        """The component's id as it is now (``with_id`` may have renamed it)."""
        return self.component.id

    def __missing__(self, key):
        if key in self.not_made:
            raise KeyError(
                f"{self.component_id}.outputs[{key!r}]: TFX's {key!r} output is not made by "
                f"Conveyor: {self.not_made[key]}; its outputs: {sorted(self)}"
            )
        raise KeyError(f"{self.component_id} has no output {key!r}; its outputs: {sorted(self)}")


class TfxComponent:
    """The mix-in of the TFX-named components: TFX's outputs view and node methods.

    Subclasses set ``TFX_OUTPUTS_NOT_MADE`` (``{key: why}``) for TFX outputs
    their Conveyor node does not make.
    """

    TFX_OUTPUTS_NOT_MADE: dict[str, str] = {}

    def _tfx_outputs(self) -> None:
        self.outputs = TfxOutputs(self.outputs, self, self.TFX_OUTPUTS_NOT_MADE)

    def with_platform_config(self, config):
        """TFX's platform config (Vertex, Kubernetes settings) has no Conveyor meaning: refused."""
        raise refuse(self.id, "with_platform_config", "platform configs are not supported")

    def with_node_execution_options(self, options):
        """TFX's node execution options (retries, triggers) are not supported: refused."""
        raise refuse(
            self.id, "with_node_execution_options", "node execution options are not supported"
        )


def local_path(path):
    """A local path made absolute (components may run in another folder); URIs as they are."""
    if isinstance(path, str) and path and "://" not in path:
        return os.path.abspath(path)
    return path


def drop_none(**kwargs) -> dict:
    """The keyword arguments that are not None (Conveyor's defaults stand for the others)."""
    return {k: v for k, v in kwargs.items() if v is not None}
