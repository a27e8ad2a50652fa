"""TFX's ``DataAccessor``: how a module file reads its examples, on tfx_bsl's TFXIO.

``fn_args.data_accessor.tf_dataset_factory(files, options, schema)`` gives a
``tf.data.Dataset`` of parsed batches and ``record_batch_factory(files, options,
schema)`` an iterator of ``pyarrow.RecordBatch``, as TFX's do: both read the
split files (gzipped TFRecords of ``tf.Example``, TFX's layout, the compression
told by the ``.gz`` names) through ``tfx_bsl.public.tfxio.TFExampleRecord``.

Example (a module file's input function, as TFX module files write it)::

    from tfx_bsl.public import tfxio

    def _input_fn(file_pattern, data_accessor, tf_transform_output, batch_size=32):
        return data_accessor.tf_dataset_factory(
            file_pattern,
            tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key="species"),
            tf_transform_output.transformed_metadata.schema)
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

__all__ = ["DataAccessor", "make_data_accessor"]


class DataAccessor(NamedTuple):
    """For accessing the examples on disk (TFX's ``DataAccessor``): ``fn_args.data_accessor``.

    Attributes:
      tf_dataset_factory: ``(file_pattern, tfxio.TensorFlowDatasetOptions, schema) ->
        tf.data.Dataset`` of ``{feature: Tensor}`` batches, or ``(features, label)``
        with ``label_key``.
      record_batch_factory: ``(file_pattern, tfxio.RecordBatchesOptions, schema) ->
        Iterator[pyarrow.RecordBatch]``.
      data_view_decode_fn: None (TFX's data views are not supported).
    """

    tf_dataset_factory: Callable[..., Any]
    record_batch_factory: Callable[..., Iterator[Any]]
    data_view_decode_fn: Callable[..., Any] | None


def _patterns(file_pattern, factory: str) -> list[str]:
    """``file_pattern`` (one pattern or a list) as a list whose patterns each match a file."""
    patterns = [file_pattern] if isinstance(file_pattern, str) else file_pattern
    if not isinstance(patterns, Sequence) or not patterns:
        raise TypeError(
            f"{factory}: file_pattern is a file pattern or a non-empty list of them "
            f"(fn_args.train_files), not {file_pattern!r}"
        )
    import tensorflow as tf

    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{factory}: file pattern {pattern!r} is not a string")
        if "://" in pattern:
            found = tf.io.gfile.glob(pattern)
        else:
            found = glob.glob(pattern)
        if not found:
            raise FileNotFoundError(f"{factory}: no files match {pattern}")
    return list(patterns)


def _schema(schema, factory: str, required: bool):
    from tensorflow_metadata.proto.v0 import schema_pb2

    if schema is None:
        if required:
            raise ValueError(
                f"{factory}: a schema is needed to parse the examples: give "
                "tf_transform_output.transformed_metadata.schema (transformed examples) or the "
                "schema_pb2.Schema of fn_args.schema_path (raw examples)"
            )
        return None
    if not isinstance(schema, schema_pb2.Schema):
        raise TypeError(
            f"{factory}: schema is a tensorflow_metadata schema_pb2.Schema, "
            f"not {type(schema).__name__}"
        )
    return schema


def _options(options, kind: str, factory: str):
    from tfx_bsl.public import tfxio

    expected = getattr(tfxio, kind)
    if not isinstance(options, expected):
        raise TypeError(
            f"{factory}: options are a tfx_bsl.public.tfxio.{kind}(batch_size=...), "
            f"not {type(options).__name__}"
        )
    return options


def make_data_accessor(telemetry_descriptors: Sequence[str] = ("Trainer",)) -> DataAccessor:
    """The :class:`DataAccessor` of Conveyor's Examples (gzipped ``tf.Example`` TFRecords).

    ``telemetry_descriptors`` name the component reading (tfx_bsl's metrics namespace).
    Each factory checks its arguments: a pattern that matches no file is a
    ``FileNotFoundError`` naming it; options or a schema of the wrong type, a
    ``TypeError`` naming the argument; ``tf_dataset_factory`` without a schema, a
    ``ValueError`` saying which schema to give.

    Example::

        accessor = make_data_accessor(["Tuner"])
        for batch in accessor.record_batch_factory(
                fn_args.train_files, tfxio.RecordBatchesOptions(batch_size=64, num_epochs=1), None):
            print(batch.num_rows)
    """
    descriptors = list(telemetry_descriptors)

    def tf_dataset_factory(file_pattern, options, schema=None):
        """A ``tf.data.Dataset`` of the files' parsed batches (TFX's ``tf_dataset_factory``)."""
        from tfx_bsl.public import tfxio

        name = "tf_dataset_factory"
        patterns = _patterns(file_pattern, name)
        options = _options(options, "TensorFlowDatasetOptions", name)
        record = tfxio.TFExampleRecord(
            patterns, schema=_schema(schema, name, True), telemetry_descriptors=descriptors
        )
        if options.label_key is not None:
            features = set(record.TensorRepresentations())
            if options.label_key not in features:
                raise KeyError(
                    f"{name}: label_key {options.label_key!r} is not a feature of the schema "
                    f"(features: {', '.join(sorted(features))})"
                )
        return record.TensorFlowDataset(options)

    def record_batch_factory(file_pattern, options, schema=None):
        """An iterator of the files' ``pyarrow.RecordBatch`` es (TFX's ``record_batch_factory``)."""
        from tfx_bsl.public import tfxio

        name = "record_batch_factory"
        patterns = _patterns(file_pattern, name)
        options = _options(options, "RecordBatchesOptions", name)
        record = tfxio.TFExampleRecord(
            patterns, schema=_schema(schema, name, False), telemetry_descriptors=descriptors
        )
        return record.RecordBatches(options)

    return DataAccessor(
        tf_dataset_factory=tf_dataset_factory,
        record_batch_factory=record_batch_factory,
        data_view_decode_fn=None,
    )
