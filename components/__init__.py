"""Conveyor's components: one subpackage per pipeline step.

Each step is a Beam PTransform in its own subpackage (``conveyor.components.statistics``,
...) and a pipeline component, importable from here::

    from conveyor.components import ExampleGen, StatisticsGen, SchemaGen, ExampleValidator
    from conveyor.components import Transform, Tuner, Trainer, Evaluator, BulkInferrer
    from conveyor.components import InfraValidator, Pusher

Names are imported on first use so that the command line starts fast.
"""

from conveyor.beam_utils.lazy import lazy_exports

_NODES = {
    "ExampleGen": "conveyor.components.example_gen.node",
    "StatisticsGen": "conveyor.components.statistics.node",
    "SchemaGen": "conveyor.components.schema_gen.node",
    "ImportSchemaGen": "conveyor.components.schema_gen.node",
    "ExampleValidator": "conveyor.components.validation.node",
    "Transform": "conveyor.components.transform.node",
    "Trainer": "conveyor.components.trainer.node",
    "Tuner": "conveyor.components.tuner.node",
    "Evaluator": "conveyor.components.evaluation.node",
    "BulkInferrer": "conveyor.components.inference.node",
    "InfraValidator": "conveyor.components.infra_validator.node",
    "Pusher": "conveyor.components.pusher.node",
}

__getattr__, __dir__ = lazy_exports(__name__, _NODES)
