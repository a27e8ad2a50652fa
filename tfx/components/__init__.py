"""TFX's ``tfx.v1.components`` on Conveyor's nodes: same names, arguments and output keys.

Each component subclasses the Conveyor node it maps onto
(:mod:`conveyor.components`) and takes TFX's constructor arguments; one that
Conveyor cannot honour is a definition error naming it. Ids default to the
TFX class name (``CsvExampleGen``), as in TFX.

Example::

    from conveyor import tfx

    example_gen = tfx.components.CsvExampleGen(input_base="data/penguins")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])

``FnArgs``, ``DataAccessor`` and ``TunerFnResult`` are what a module file's
``run_fn`` / ``tuner_fn`` receives and returns (from Conveyor's Trainer and
Tuner when they define them). Names are imported on first use.
"""

import importlib
from typing import Any, NamedTuple

_COMPONENTS = {
    "CsvExampleGen": "data",
    "ImportExampleGen": "data",
    "StatisticsGen": "data",
    "SchemaGen": "data",
    "ImportSchemaGen": "data",
    "ExampleValidator": "data",
    "Transform": "training",
    "Trainer": "training",
    "Tuner": "training",
    "Evaluator": "model",
    "InfraValidator": "model",
    "Pusher": "model",
    "BulkInferrer": "model",
}
#: Module-file types, looked up in Conveyor's Trainer and Tuner folders, in this order.
_UDF_TYPES = ("FnArgs", "DataAccessor", "TunerFnResult")
_UDF_HOMES = ("conveyor.components.trainer", "conveyor.components.tuner")

__all__ = sorted([*_COMPONENTS, *_UDF_TYPES])


class _DataAccessor(NamedTuple):
    """TFX's DataAccessor: how a module file reads examples (until Conveyor's Trainer has one)."""

    tf_dataset_factory: Any
    record_batch_factory: Any
    data_view_decode_fn: Any


class _TunerFnResult(NamedTuple):
    """TFX's TunerFnResult: what ``tuner_fn`` returns (until Conveyor's Tuner has one)."""

    tuner: Any
    fit_kwargs: dict[str, Any]


_FALLBACKS = {"DataAccessor": _DataAccessor, "TunerFnResult": _TunerFnResult}


def _udf_type(name: str):
    for home in _UDF_HOMES:
        try:
            module = importlib.import_module(home)
        except ImportError:
            continue
        try:
            return getattr(module, name)
        except AttributeError:
            continue
    if name in _FALLBACKS:
        return _FALLBACKS[name]
    raise AttributeError(f"Conveyor's Trainer has no {name}")


def __getattr__(name: str):
    if name in _COMPONENTS:
        module = importlib.import_module(f"{__name__}.{_COMPONENTS[name]}")
        return getattr(module, name)
    if name in _UDF_TYPES:
        return _udf_type(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return list(__all__)
