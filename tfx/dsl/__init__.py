"""TFX's ``tfx.v1.dsl``: ``Pipeline``, ``Channel``, ``Resolver``, ``Importer``, ``Cond``,
``Artifact``, ``experimental`` and ``components`` (Python function components).

``Channel``, ``Resolver``, ``Importer``, ``Cond`` and ``RuntimeParameter`` are
Conveyor's own, which take TFX's arguments; :class:`Pipeline` takes TFX's
(``pipeline_name``, ``pipeline_root``, ``enable_cache`` False by default...).
Every node has TFX's ``with_id``, ``add_upstream_node`` and
``with_beam_pipeline_args``.

Example::

    from conveyor import tfx

    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(model=trainer.outputs["model"], push_destination=...)
    pipeline = tfx.dsl.Pipeline(pipeline_name="penguins", pipeline_root="out/penguins",
                                components=[..., pusher], enable_cache=True)

``components``, ``experimental``, ``io`` (``io.fileio``) and ``placeholders`` are imported on
first use.
"""

import importlib

from conveyor.dsl import Channel, Cond, Importer, Resolver, RuntimeParameter
from conveyor.dsl.artifacts import Artifact
from conveyor.tfx.dsl.pipeline import ExecutionMode, Pipeline

_SUBMODULES = ("components", "experimental", "io", "placeholders")

__all__ = [
    "Artifact",
    "Channel",
    "Cond",
    "ExecutionMode",
    "Importer",
    "Pipeline",
    "Resolver",
    "RuntimeParameter",
    "components",
    "experimental",
    "io",
    "placeholders",
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return list(__all__)
