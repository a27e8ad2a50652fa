"""TFX's data components on Conveyor's nodes: ExampleGen, StatisticsGen, SchemaGen, ExampleValidator.

Example::

    from conveyor import tfx

    example_gen = tfx.components.CsvExampleGen(input_base="data/penguins")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
"""

from __future__ import annotations

import json

from conveyor.components import ExampleGen as _ExampleGen
from conveyor.components import ExampleValidator as _ExampleValidator
from conveyor.components import ImportSchemaGen as _ImportSchemaGen
from conveyor.components import SchemaGen as _SchemaGen
from conveyor.components import StatisticsGen as _StatisticsGen
from conveyor.tfx.components._base import TfxComponent, drop_none, local_path, plain, refuse
from conveyor.tfx.proto.example_gen_pb2 import FileFormat, PayloadFormat

__all__ = [
    "CsvExampleGen",
    "ExampleValidator",
    "ImportExampleGen",
    "ImportSchemaGen",
    "SchemaGen",
    "StatisticsGen",
]


def _payload(component: str, argument: str, value) -> None:
    """Conveyor's Examples hold tf.Examples: only that payload format is taken."""
    if value is None:
        return
    try:
        fmt = PayloadFormat(value) if not isinstance(value, str) else PayloadFormat[value]
    except (ValueError, KeyError):
        raise refuse(component, argument, f"not a PayloadFormat: {value!r}") from None
    if fmt != PayloadFormat.FORMAT_TF_EXAMPLE:
        raise refuse(
            component,
            argument,
            f"{fmt.name} is not supported: Conveyor's Examples hold tf.Examples "
            "(FORMAT_TF_EXAMPLE)",
        )


def _file_format(component: str, value) -> None:
    if value is None:
        return
    try:
        fmt = FileFormat(value) if not isinstance(value, str) else FileFormat[value]
    except (ValueError, KeyError):
        raise refuse(component, "output_file_format", f"not a FileFormat: {value!r}") from None
    if fmt != FileFormat.FORMAT_TFRECORDS_GZIP:
        raise refuse(
            component,
            "output_file_format",
            f"{fmt.name} is not supported: Conveyor writes gzip TFRecords (FORMAT_TFRECORDS_GZIP)",
        )


def _no_exclude_splits(component: str, exclude_splits) -> None:
    if exclude_splits:
        raise refuse(
            component,
            "exclude_splits",
            f"Conveyor's {component} covers every split; excluding {list(exclude_splits)} is "
            "not supported",
        )


class _FileBasedExampleGen(TfxComponent, _ExampleGen):
    """TFX's file-based ExampleGen arguments on Conveyor's ExampleGen (``FORMAT`` set by subclasses)."""

    FORMAT = ""

    def __init__(
        self,
        input_base: str | None = None,
        input_config=None,
        output_config=None,
        custom_config=None,
        range_config=None,
        output_data_format=PayloadFormat.FORMAT_TF_EXAMPLE,
        output_file_format=FileFormat.FORMAT_TFRECORDS_GZIP,
        custom_executor_spec=None,
    ):
        name = type(self).__name__
        if input_base is None:
            raise refuse(name, "input_base", "required: the folder (or file, or glob) to read")
        if custom_config is not None:
            raise refuse(name, "custom_config", "custom ExampleGen settings are not supported")
        if custom_executor_spec is not None:
            raise refuse(
                name,
                "custom_executor_spec",
                "Conveyor runs its own ExampleGen; a custom executor (Avro, Parquet, ... "
                "executors) is not supported: use conveyor.components.ExampleGen(format=...)",
            )
        _payload(name, "output_data_format", output_data_format)
        _file_format(name, output_file_format)
        super().__init__(
            **drop_none(
                input_base=local_path(input_base),
                input_config=plain(input_config),
                output_config=plain(output_config),
                range_config=plain(range_config),
            ),
            format=self.FORMAT,
        )
        self._tfx_outputs()


class CsvExampleGen(_FileBasedExampleGen):
    """TFX's CsvExampleGen: CSV files under ``input_base`` -> an ``examples`` artifact of split
    gzip TFRecords of tf.Example (train 2 : eval 1 unless ``output_config`` or pre-split
    ``input_config`` says otherwise).

    Args: TFX's ``input_base``, ``input_config`` (``proto.Input``), ``output_config``
    (``proto.Output``), ``range_config`` (``proto.RangeConfig``), ``output_data_format``
    (``FORMAT_TF_EXAMPLE`` only) and ``output_file_format`` (gzip TFRecords only);
    ``custom_config`` and ``custom_executor_spec`` are refused.

    Example::

        example_gen = CsvExampleGen(input_base="data/penguins")
    """

    FORMAT = "csv"


class ImportExampleGen(_FileBasedExampleGen):
    """TFX's ImportExampleGen: TFRecord files of tf.Example under ``input_base`` -> ``examples``.

    Args: as :class:`CsvExampleGen`, with ``payload_format`` (``FORMAT_TF_EXAMPLE`` only) for
    TFX's ``output_data_format``.

    Example::

        example_gen = ImportExampleGen(input_base="data/tfrecords")
    """

    FORMAT = "tfrecord"

    def __init__(
        self,
        input_base: str | None = None,
        input_config=None,
        output_config=None,
        range_config=None,
        payload_format=PayloadFormat.FORMAT_TF_EXAMPLE,
    ):
        _payload(type(self).__name__, "payload_format", payload_format)
        super().__init__(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
        )


def _stats_options_settings(stats_options) -> dict:
    """The Conveyor settings of a ``tfdv.StatsOptions``: its weight feature; refuses the rest."""
    if stats_options is None:
        return {}
    if not hasattr(stats_options, "to_json"):
        raise refuse(
            "StatisticsGen",
            "stats_options",
            f"a tfdv.StatsOptions, not {type(stats_options).__name__}",
        )
    import tensorflow_data_validation as tfdv

    given = json.loads(stats_options.to_json())
    default = json.loads(tfdv.StatsOptions().to_json())
    changed = sorted(k for k, v in given.items() if default.get(k) != v)
    other = [k.lstrip("_") for k in changed if k != "weight_feature"]
    if other:
        raise refuse(
            "StatisticsGen",
            "stats_options",
            f"only weight_feature is supported; {', '.join(other)} set. Conveyor's "
            "StatisticsGen has slice_by and bytes_features "
            "(conveyor.components.StatisticsGen)",
        )
    return drop_none(weight_feature=given.get("weight_feature"))


class StatisticsGen(TfxComponent, _StatisticsGen):
    """TFX's StatisticsGen: TFDV-compatible statistics of every split -> ``statistics``.

    Args: ``examples``; ``stats_options`` (a ``tfdv.StatsOptions``: its
    ``weight_feature`` is used, any other setting is refused). ``schema`` (TFX
    configures the statistics from it) and ``exclude_splits`` are refused.

    Example::

        statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    """

    def __init__(self, examples=None, schema=None, stats_options=None, exclude_splits=None):
        if schema is not None:
            raise refuse(
                "StatisticsGen",
                "schema",
                "statistics configured from a schema are not supported; leave it out",
            )
        _no_exclude_splits("StatisticsGen", exclude_splits)
        super().__init__(examples=examples, **_stats_options_settings(stats_options))
        self._tfx_outputs()


class SchemaGen(TfxComponent, _SchemaGen):
    """TFX's SchemaGen: a schema inferred from the ``train`` split's statistics -> ``schema``.

    Args: ``statistics``; ``infer_feature_shape`` (default True, as TFX 1.x; a
    RuntimeParameter is taken). ``exclude_splits`` is refused (Conveyor infers
    from the train split).

    Example::

        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    """

    def __init__(self, statistics=None, infer_feature_shape=True, exclude_splits=None):
        _no_exclude_splits("SchemaGen", exclude_splits)
        super().__init__(
            statistics=statistics,
            infer_feature_shape=True if infer_feature_shape is None else infer_feature_shape,
        )
        self._tfx_outputs()


class ImportSchemaGen(TfxComponent, _ImportSchemaGen):
    """TFX's ImportSchemaGen: a curated ``schema.pbtxt`` brought in as ``schema``.

    Example::

        schema_gen = ImportSchemaGen(schema_file="schema/schema.pbtxt")
    """

    def __init__(self, schema_file: str | None = None):
        if not schema_file:
            raise refuse("ImportSchemaGen", "schema_file", "required: the schema.pbtxt to import")
        super().__init__(schema_file=local_path(schema_file))
        self._tfx_outputs()


class ExampleValidator(TfxComponent, _ExampleValidator):
    """TFX's ExampleValidator: every split's statistics checked against the schema -> ``anomalies``.

    Args: ``statistics``, ``schema``. ``exclude_splits`` and
    ``custom_validation_config`` (SQL validations) are refused.

    Example::

        example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                             schema=schema_gen.outputs["schema"])
    """

    def __init__(
        self, statistics=None, schema=None, exclude_splits=None, custom_validation_config=None
    ):
        _no_exclude_splits("ExampleValidator", exclude_splits)
        if custom_validation_config is not None:
            raise refuse(
                "ExampleValidator",
                "custom_validation_config",
                "SQL-based custom validations are not supported",
            )
        super().__init__(statistics=statistics, schema=schema)
        self._tfx_outputs()
