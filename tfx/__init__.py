"""TFX's public API, ``tfx.v1``, on Conveyor: a TFX pipeline file runs after one changed line.

Change ``from tfx import v1 as tfx`` to ``from conveyor import tfx``; the rest
of the file (components, protos, DSL, runners) keeps TFX's names, arguments
and output keys, mapped onto Conveyor's own nodes:

- :mod:`conveyor.tfx.components`: ``CsvExampleGen``, ``StatisticsGen``,
  ``SchemaGen``, ``ExampleValidator``, ``Transform``, ``Trainer``,
  ``Evaluator``, ``InfraValidator``, ``Pusher``, ``BulkInferrer``...
- :mod:`conveyor.tfx.proto`: ``Input``, ``Output``, ``SplitConfig``,
  ``TrainArgs``, ``PushDestination``... (Conveyor's own message classes, with
  the fields of TFX's ``.proto`` files).
- :mod:`conveyor.tfx.dsl`: ``Pipeline``, ``Channel``, ``Resolver``,
  ``Importer``, ``Cond``, ``experimental``...
- :mod:`conveyor.tfx.types`: ``standard_artifacts``, ``Channel``.
- :mod:`conveyor.tfx.orchestration`: ``LocalDagRunner``, ``metadata``,
  ``experimental.KubeflowV2DagRunner``, the Airflow and Beam DAG runners.
- :mod:`conveyor.tfx.extensions`: the Google Cloud components, refused when made.

An argument TFX has and Conveyor cannot honour (a custom executor spec,
Vertex or Cloud settings, a feature Conveyor's node does not have) is an
error when the pipeline is defined, naming the argument.

Example::

    from conveyor import tfx

    example_gen = tfx.components.CsvExampleGen(input_base="data/penguins")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    pipeline = tfx.dsl.Pipeline(pipeline_name="penguins", pipeline_root="out/penguins",
                                components=[example_gen, statistics_gen])
    tfx.orchestration.LocalDagRunner().run(pipeline)

The submodules are imported on first use, so importing this package loads
neither Beam nor TensorFlow. Importing it selects Keras 2 (``tf_keras``) for
``tf.keras`` (``TF_USE_LEGACY_KERAS=1``, unless set) and for KerasTuner in
module files that use ``tf.keras``, as TFX 1.16's module files expect.
"""

import importlib

# TFX's pipeline files run ``import absl`` then ``absl.logging.set_verbosity(...)`` in their
# ``__main__`` block, which works because importing TFX loads absl.logging; so does this.
import absl.logging  # noqa: F401

from conveyor.tfx._keras import select_legacy_keras

# tf.keras is Keras 2 for TFX's module files, as under TFX 1.16 (see _keras).
select_legacy_keras()

_SUBMODULES = ("components", "dsl", "extensions", "orchestration", "proto", "types")

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name == "__version__":  # TFX's tfx.__version__: here, Conveyor's version
        from importlib.metadata import version

        return version("conveyor")
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
