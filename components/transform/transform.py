"""TransformExamples: tf.Transform over Conveyor's RecordBatches, as a Beam PTransform.

:class:`TransformExamples` takes ``{split: PCollection of RecordBatch}``
(Conveyor's canonical batches, see :mod:`conveyor.beam_utils.arrow`), analyzes
the train split and transforms every split with the resulting ``transform_fn``.
Batches go to tf.Transform as they are, through a TFXIO ``TensorAdapterConfig``
(no instance dicts), and come back as canonical RecordBatches.

Example::

    import apache_beam as beam
    from conveyor.components.transform import TransformExamples

    with beam.Pipeline() as p:
        result = {"train": train_batches, "eval": eval_batches} | TransformExamples(
            preprocessing_fn, data_schema, temp_dir="/tmp/tft")
        result.transformed["eval"] | ...  # canonical RecordBatches

:func:`~conveyor.components.transform.component.run_transform` reads the
inputs, applies it and writes TFX's layout.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Mapping
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.user_modules import release_shared_objects_at_exit
from conveyor.components.transform import schema as schema_lib
from conveyor.components.transform.user_fn import MissingFeatureError, PreprocessingFn, trace_error

DEFAULT_TRAIN_SPLIT = "train"

_LOG = logging.getLogger(__name__)

# tf.Transform keeps its loaded graphs in Beam's Shared cache: free them before
# interpreter exit, here and in every worker process that imports this module.
release_shared_objects_at_exit()


class TransformPlan(NamedTuple):
    """What :class:`TransformExamples` found out about the preprocessing_fn before running it.

    Attributes:
      schema: the raw tensorflow-metadata Schema (given, or derived from the data).
      config: the TensorAdapterConfig the batches are read with (projected to
        ``columns``; the graph's signature keeps every schema feature).
      arrow_schema: the Arrow schema batches are conformed to before tf.Transform.
      analyze_columns: input tensors the analyzers read.
      transform_columns: input tensors the transformation reads.
    """

    schema: object
    config: object
    arrow_schema: pa.Schema
    analyze_columns: list[str]
    transform_columns: list[str]


def plan_transform(
    preprocessing_fn: PreprocessingFn, data_schema: pa.Schema, schema=None
) -> TransformPlan:
    """Traces the preprocessing_fn against the input's tensors and checks what it needs.

    Raises:
      MissingFeatureError: a feature the function reads is not in the schema,
        or is in the schema but not in the data.
      PreprocessingFnError: the function raised while tracing.
    """
    import tensorflow_transform as tft

    metadata_schema = schema if schema is not None else arrow.to_metadata_schema(data_schema)
    full_arrow = schema_lib.arrow_schema_for(metadata_schema) if schema is not None else data_schema
    config = schema_lib.adapter_config(full_arrow, metadata_schema)
    specs = schema_lib.type_specs(config)
    err = None
    try:
        transform_cols = tft.get_transform_input_columns(
            preprocessing_fn, specs, force_tf_compat_v1=False
        )
        analyze_cols = tft.get_analyze_input_columns(
            preprocessing_fn, specs, force_tf_compat_v1=False
        )
    except Exception as e:  # the user's code raised while being traced
        err = trace_error(e, preprocessing_fn)
        if isinstance(err, MissingFeatureError):
            where = "the schema" if schema is not None else "the input data"
            err = MissingFeatureError(err.feature, err.available, where=where, frames=err.frames)
    if err is not None:
        # Raised outside the handler: the error the function raised (and TensorFlow's
        # re-raise of it) is not chained, so only this one, with the user's lines, is reported.
        raise err
    needed = sorted(set(transform_cols) | set(analyze_cols))
    reps = schema_lib.tensor_representations(metadata_schema)
    for name in needed:
        for col in schema_lib.source_columns(reps[name]):
            if col not in data_schema.names:
                raise MissingFeatureError(col, list(data_schema.names), where="the data")
    config = schema_lib.adapter_config(full_arrow, metadata_schema, columns=needed)
    return TransformPlan(
        metadata_schema, config, config.arrow_schema, sorted(analyze_cols), sorted(transform_cols)
    )


class TransformResult(NamedTuple):
    """The outputs of :class:`TransformExamples`.

    Attributes:
      transformed: ``{split: PCollection of canonical RecordBatch}``.
      transform_fn: tf.Transform's ``(saved model dir PCollection, metadata)``,
        for ``tft_beam.WriteTransformFn``.
      analyzed: False when every analyzer came from the cache (the train data
        was not read for analysis).
    """

    transformed: dict
    transform_fn: tuple
    analyzed: bool


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(pa.RecordBatch)
class TransformExamples(beam.PTransform):
    """Analyzes the train split with tf.Transform and transforms every split.

    Applied to ``{split: PCollection of RecordBatch}``; returns a
    :class:`TransformResult`, whose ``transformed`` splits are PCollections of
    canonical RecordBatches (the type hints are of those; the ``transform_fn``
    is tf.Transform's own). The preprocessing_fn is traced when the transform
    is constructed, so a missing feature or an error in the function is raised
    here, before any pipeline runs.

    Args:
      preprocessing_fn: a callable or a :class:`PreprocessingFn` (see
        :func:`~conveyor.components.transform.user_fn.load_preprocessing_fn`).
      data_schema: the Arrow schema of the input batches.
      schema: a tensorflow-metadata Schema for the raw features, or None to
        derive one from ``data_schema`` (every feature then a SparseTensor).
      train_split: the split that is analyzed.
      temp_dir: tf.Transform's temporary directory (required).
      cache_dir: an analyzer cache directory to read and update, or None.
      dataset_key: identifies the train data in the cache; must change when the
        data does (:func:`~conveyor.components.transform.component.run_transform`
        derives it from the files).
    """

    def __init__(
        self,
        preprocessing_fn: Callable | PreprocessingFn,
        data_schema: pa.Schema,
        schema=None,
        train_split: str = DEFAULT_TRAIN_SPLIT,
        temp_dir: str | None = None,
        cache_dir: str | None = None,
        dataset_key: str | None = None,
    ):
        super().__init__()
        if not temp_dir:
            raise ValueError("TransformExamples needs a temp_dir (e.g. under the output directory)")
        if cache_dir and not dataset_key:
            raise ValueError("an analyzer cache needs a dataset_key that identifies the train data")
        self.preprocessing_fn = PreprocessingFn.from_callable(preprocessing_fn)
        self.train_split = train_split
        self.temp_dir = temp_dir
        self.cache_dir = cache_dir
        self.dataset_key = dataset_key
        self.plan = plan_transform(self.preprocessing_fn, data_schema, schema)

    def expand(self, splits: Mapping[str, beam.PCollection]) -> TransformResult:
        """Analyzes ``splits[train_split]`` and transforms every split (see the class)."""
        import tensorflow_transform.beam as tft_beam

        if self.train_split not in splits:
            raise ValueError(f"no {self.train_split!r} split to analyze (splits: {sorted(splits)})")
        pipeline = splits[self.train_split].pipeline
        target = self.plan.arrow_schema
        inputs = {
            name: pcoll | f"Conform[{name}]" >> beam.Map(arrow.conform, target)
            for name, pcoll in splits.items()
        }
        config = self.plan.config
        transformed = {}
        with tft_beam.Context(temp_dir=self.temp_dir, force_tf_compat_v1=False):
            if self.cache_dir:
                transform_fn, analyzed = self._analyze_with_cache(
                    pipeline, inputs[self.train_split]
                )
            else:
                (out, _), transform_fn = (
                    (inputs[self.train_split], config)
                    | f"AnalyzeAndTransform[{self.train_split}]"
                    >> tft_beam.AnalyzeAndTransformDataset(
                        self.preprocessing_fn, output_record_batches=True
                    )
                )
                transformed[self.train_split] = out
                analyzed = True
            for name, pcoll in inputs.items():
                if name not in transformed:
                    transformed[name], _ = (
                        (pcoll, config),
                        transform_fn,
                    ) | f"Transform[{name}]" >> tft_beam.TransformDataset(
                        output_record_batches=True
                    )
        canonical = {
            name: pcoll
            | f"Canonical[{name}]"
            >> beam.FlatMap(_canonical_batches).with_output_types(pa.RecordBatch)
            for name, pcoll in transformed.items()
        }
        return TransformResult(canonical, transform_fn, analyzed)

    def type_check_outputs(self, pvalueish: TransformResult) -> None:
        """Checks the transformed splits against the output type (RecordBatch).

        The result also holds tf.Transform's ``transform_fn`` (a SavedModel
        directory and metadata), which is not a PCollection of batches.
        """
        super().type_check_outputs(pvalueish.transformed)

    def _analyze_with_cache(self, pipeline, train):
        import tensorflow_transform.beam as tft_beam
        from tensorflow_transform.beam import analysis_graph_builder, analyzer_cache

        key = analyzer_cache.DatasetKey(self.dataset_key)
        specs = schema_lib.type_specs(self.plan.config)
        wanted = analysis_graph_builder.get_analysis_cache_entry_keys(
            self.preprocessing_fn, specs, [key], force_tf_compat_v1=False
        )
        found = cached_entry_keys(self.cache_dir, key.key)
        covered = bool(wanted) and set(wanted) <= found
        _LOG.info(
            "analyzer cache %s: %d of %d entries found",
            self.cache_dir,
            len(set(wanted) & found),
            len(wanted),
        )
        input_cache = (
            pipeline
            | "ReadAnalyzerCache"
            >> analyzer_cache.ReadAnalysisCacheFromFS(
                self.cache_dir, [key], cache_entry_keys=wanted
            )
            if found
            else {}
        )
        transform_fn, output_cache = (
            {key: None if covered else train},
            input_cache,
            self.plan.config,
        ) | "AnalyzeWithCache" >> tft_beam.AnalyzeDatasetWithCache(
            self.preprocessing_fn, pipeline=pipeline
        )
        if output_cache and not covered:
            _ = output_cache | "WriteAnalyzerCache" >> analyzer_cache.WriteAnalysisCacheToFS(
                pipeline, self.cache_dir, [key]
            )
        return transform_fn, not covered


def cached_entry_keys(cache_dir: str, dataset_dir: str) -> set:
    """The cache entry keys an analyzer cache holds for one dataset (its manifest)."""
    import tensorflow as tf

    manifest = os.path.join(cache_dir, dataset_dir, "MANIFEST")
    if not tf.io.gfile.exists(manifest):
        return set()
    try:
        with tf.io.gfile.GFile(manifest, "rb") as f:
            entries = pickle.loads(f.read())  # tf.Transform writes the manifest as a pickled dict
    except Exception as e:
        _LOG.warning("%s: unreadable analyzer cache manifest (%s); analyzing anew", manifest, e)
        return set()
    return set(entries) if isinstance(entries, dict) else set()


def _canonical_batches(transformed):
    """tf.Transform's ``(RecordBatch, passthrough)`` -> a canonical RecordBatch (non-empty)."""
    batch = transformed[0]
    if not batch.num_rows:
        return
    columns = []
    fields = []
    for field, col in zip(batch.schema, batch.columns):
        target = _canonical_type(field)
        columns.append(col if col.type == target else arrow.to_column(col, target))
        fields.append(pa.field(field.name, target))
    yield pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


def _canonical_type(field: pa.Field) -> pa.DataType:
    t = field.type
    value = t.value_type if (pa.types.is_list(t) or pa.types.is_large_list(t)) else t
    if pa.types.is_integer(value) or pa.types.is_boolean(value):
        return arrow.COLUMN_TYPES[arrow.INT]
    if pa.types.is_floating(value):
        return arrow.COLUMN_TYPES[arrow.FLOAT]
    if (
        pa.types.is_binary(value)
        or pa.types.is_large_binary(value)
        or pa.types.is_string(value)
        or pa.types.is_large_string(value)
    ):
        return arrow.COLUMN_TYPES[arrow.BYTES]
    raise ValueError(
        f"transformed feature {field.name!r} has type {t}, which a tf.Example cannot hold"
    )


__all__ = [
    "DEFAULT_TRAIN_SPLIT",
    "TransformExamples",
    "TransformPlan",
    "TransformResult",
    "cached_entry_keys",
    "plan_transform",
]
