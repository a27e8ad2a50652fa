"""The Transform PTransform (tf.Transform over RecordBatches) and the function that runs it.

:class:`Transform` takes ``{split: PCollection of RecordBatch}`` (Conveyor's
canonical batches, see :mod:`conveyor.beam_utils.arrow`), analyzes the train
split and transforms every split with the resulting ``transform_fn``. Batches go
to tf.Transform as they are, through a TFXIO ``TensorAdapterConfig`` (no
instance dicts), and come back as canonical RecordBatches.

:func:`run_transform` reads the inputs, runs it and writes TFX's layout::

    OUTPUT/transform_graph/transform_fn/            SavedModel
    OUTPUT/transform_graph/transformed_metadata/    schema of the outputs
    OUTPUT/transform_graph/metadata/                schema of the raw inputs
    OUTPUT/transformed_examples/Split-<name>/transformed_examples-SSSSS-of-NNNNN.gz
    OUTPUT/transform_summary.json

``tft.TFTransformOutput(OUTPUT + "/transform_graph")`` reads the graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import arrow, files
from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.io import ReadExamples, WriteExamples
from conveyor.beam_utils.user_modules import (
    exception_chain,
    release_shared_objects,
    release_shared_objects_at_exit,
)
from conveyor.components.transform import schema as schema_lib
from conveyor.components.transform.user_fn import (
    MissingFeatureError,
    PreprocessingFn,
    PreprocessingFnError,
    runtime_error,
    trace_error,
)

TRANSFORM_GRAPH_DIR = "transform_graph"
TRANSFORMED_EXAMPLES_DIR = "transformed_examples"
TRANSFORMED_EXAMPLES_PREFIX = "transformed_examples"
RAW_METADATA_DIR = "metadata"  # tft.TFTransformOutput.RAW_METADATA_DIR
SUMMARY_FILE = "transform_summary.json"
TEMP_DIR = ".transform_tmp"
DEFAULT_TRAIN_SPLIT = "train"

_LOG = logging.getLogger(__name__)

# tf.Transform keeps its loaded graphs in Beam's Shared cache: free them before
# interpreter exit, here and in every worker process that imports this module.
release_shared_objects_at_exit()


class TransformPlan(NamedTuple):
    """What :class:`Transform` found out about the preprocessing_fn before running it.

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


def plan_transform(preprocessing_fn: PreprocessingFn, data_schema: pa.Schema, schema=None) -> TransformPlan:
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
        transform_cols = tft.get_transform_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False)
        analyze_cols = tft.get_analyze_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False)
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
    return TransformPlan(metadata_schema, config, config.arrow_schema, sorted(analyze_cols), sorted(transform_cols))


class TransformResult(NamedTuple):
    """The outputs of :class:`Transform`.

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


class Transform(beam.PTransform):
    """Analyzes the train split with tf.Transform and transforms every split.

    Applied to ``{split: PCollection of RecordBatch}``; returns a
    :class:`TransformResult`. The preprocessing_fn is traced when the transform
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
        data does (:func:`run_transform` derives it from the files).
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
            raise ValueError("Transform needs a temp_dir (e.g. under the output directory)")
        if cache_dir and not dataset_key:
            raise ValueError("an analyzer cache needs a dataset_key that identifies the train data")
        self.preprocessing_fn = PreprocessingFn.from_callable(preprocessing_fn)
        self.train_split = train_split
        self.temp_dir = temp_dir
        self.cache_dir = cache_dir
        self.dataset_key = dataset_key
        self.plan = plan_transform(self.preprocessing_fn, data_schema, schema)

    def expand(self, splits: Mapping[str, beam.PCollection]):
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
                transform_fn, analyzed = self._analyze_with_cache(pipeline, inputs[self.train_split])
            else:
                (out, _), transform_fn = (
                    (inputs[self.train_split], config)
                    | f"AnalyzeAndTransform[{self.train_split}]"
                    >> tft_beam.AnalyzeAndTransformDataset(self.preprocessing_fn, output_record_batches=True)
                )
                transformed[self.train_split] = out
                analyzed = True
            for name, pcoll in inputs.items():
                if name not in transformed:
                    transformed[name], _ = (
                        ((pcoll, config), transform_fn)
                        | f"Transform[{name}]" >> tft_beam.TransformDataset(output_record_batches=True)
                    )
        canonical = {
            name: pcoll | f"Canonical[{name}]" >> beam.FlatMap(_canonical_batches)
            for name, pcoll in transformed.items()
        }
        return TransformResult(canonical, transform_fn, analyzed)

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
        _LOG.info("analyzer cache %s: %d of %d entries found", self.cache_dir, len(set(wanted) & found), len(wanted))
        input_cache = (
            pipeline | "ReadAnalyzerCache" >> analyzer_cache.ReadAnalysisCacheFromFS(
                self.cache_dir, [key], cache_entry_keys=wanted)
            if found else {}
        )
        transform_fn, output_cache = (
            {key: None if covered else train}, input_cache, self.plan.config
        ) | "AnalyzeWithCache" >> tft_beam.AnalyzeDatasetWithCache(self.preprocessing_fn, pipeline=pipeline)
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
    if pa.types.is_binary(value) or pa.types.is_large_binary(value) or pa.types.is_string(value) or \
            pa.types.is_large_string(value):
        return arrow.COLUMN_TYPES[arrow.BYTES]
    raise ValueError(f"transformed feature {field.name!r} has type {t}, which a tf.Example cannot hold")


# ---------------------------------------------------------------- running it


def dataset_fingerprint(read: ReadExamples, arrow_schema: pa.Schema | None = None) -> str:
    """A key for the analyzer cache: changes when the files, their types or read options do.

    Built from each file's path, size and modification time, the Arrow schema the
    data is read with (``arrow_schema``, default the read's) and the CSV options.
    tf.Transform keys each cache entry by its analyzer too, so the preprocessing_fn
    is not part of it: editing the function reuses the entries of unchanged analyzers.
    """
    h = hashlib.sha256()
    metas = [m for r in FileSystems.match(read.files) for m in r.metadata_list]
    for m in sorted(metas, key=lambda m: m.path):
        h.update(f"{m.path}\0{m.size_in_bytes}\0{getattr(m, 'last_updated_in_seconds', 0)}\n".encode())
    h.update((arrow_schema or read.arrow_schema).to_string().encode())
    h.update(repr((read.format, read.csv_options)).encode())
    return h.hexdigest()[:24]


def _remove(path: str) -> None:
    if "://" not in path:
        if os.path.isfile(path):
            os.remove(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
    elif FileSystems.exists(path):
        FileSystems.delete([path])


def _data_columns(read: ReadExamples) -> pa.Schema:
    """The columns the input really has (a given schema can name more)."""
    return read.with_schema(None, sample_size=min(read.sample_size, 1000)).arrow_schema


def run_transform(
    reads: Mapping[str, ReadExamples],
    output_dir: str,
    preprocessing_fn: Callable | PreprocessingFn,
    schema=None,
    train_split: str = DEFAULT_TRAIN_SPLIT,
    cache_dir: str | None = None,
    num_shards: int = 0,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Runs :class:`Transform` over the splits ``reads`` names and writes TFX's layout.

    Args:
      reads: ``{split: ReadExamples}``; one must be ``train_split``.
      output_dir: where ``transform_graph/``, ``transformed_examples/`` and
        ``transform_summary.json`` go (earlier outputs there are replaced).
      preprocessing_fn: a callable, or a :class:`PreprocessingFn` from
        :func:`~conveyor.components.transform.user_fn.load_preprocessing_fn`.
      schema: a tensorflow-metadata Schema of the raw features, or None to use
        the input's feature types.
      cache_dir: an analyzer cache to read and update; a rerun on unchanged train
        data then skips analysis.
      num_shards: files per split of transformed examples (0: the runner decides).
      beam_args: Beam flags.

    Returns:
      the summary (also written to ``transform_summary.json``).
    """
    from conveyor.beam_utils.options import pipeline_options

    if train_split not in reads:
        raise UsageError(f"no split {train_split!r} to analyze (splits: {', '.join(sorted(reads))})")
    fn = PreprocessingFn.from_callable(preprocessing_fn)
    train_read = reads[train_split]
    if schema is not None:
        # Read with the schema's types, only the columns the data has (it may name more).
        data_schema = _data_columns(train_read)
        typed = schema_lib.arrow_schema_for(schema)
        read_schema = pa.schema([f for f in typed if f.name in data_schema.names])
    else:
        read_schema = train_read.arrow_schema
    plan = plan_transform(fn, read_schema, schema)
    # Decode only the columns the preprocessing_fn reads.
    reads = {name: r.with_schema(plan.arrow_schema) for name, r in reads.items()}
    key = f"{train_split}-{dataset_fingerprint(train_read, read_schema)}" if cache_dir else None

    graph_dir = FileSystems.join(output_dir, TRANSFORM_GRAPH_DIR)
    examples_dir = FileSystems.join(output_dir, TRANSFORMED_EXAMPLES_DIR)
    temp_dir = FileSystems.join(output_dir, TEMP_DIR)
    summary_path = FileSystems.join(output_dir, SUMMARY_FILE)
    output_existed = FileSystems.exists(output_dir)
    for path in (graph_dir, examples_dir, temp_dir):
        _remove(path)

    transform = Transform(fn, plan.arrow_schema, schema=plan.schema, train_split=train_split,
                          temp_dir=temp_dir, cache_dir=cache_dir, dataset_key=key)
    try:
        with _step_errors_reported_once():
            _run_pipeline(reads, transform, fn, plan, graph_dir, examples_dir, output_dir, train_split,
                          cache_dir, key, num_shards, pipeline_options(beam_args))
        _write_raw_metadata(plan.schema, FileSystems.join(graph_dir, RAW_METADATA_DIR))
    except Exception as e:
        # A failed run leaves nothing of its own behind: no temp files, no half-written outputs.
        for path in (temp_dir, graph_dir, examples_dir, summary_path):
            _remove(path)
        if not output_existed:
            _remove_if_empty(output_dir)
        err = runtime_error(e, fn)
        if err is None or err is e:
            raise
        if any(x is err for x in exception_chain(e)):
            raise err from None  # ours, re-raised by Beam or tf.Transform: report it as it was
        raise err from e
    finally:
        _remove(temp_dir)
        release_shared_objects()  # tf.Transform's loaded graphs, while TensorFlow is still up
    summary = _read_json(summary_path)
    if summary is None:
        raise RuntimeError(f"Transform finished without writing {output_dir}/{SUMMARY_FILE}")
    return summary


def _run_pipeline(reads, transform, fn, plan, graph_dir, examples_dir, output_dir, train_split, cache_dir,
                  key, num_shards, options) -> None:
    import tensorflow_transform.beam as tft_beam

    with beam.Pipeline(options=options) as p:
        read_results = {name: p | f"Read[{name}]" >> r for name, r in reads.items()}
        result = {name: rr.examples for name, rr in read_results.items()} | "Transform" >> transform
        _ = result.transform_fn | "WriteTransformGraph" >> tft_beam.WriteTransformFn(graph_dir)
        counts = []
        for name, batches in result.transformed.items():
            _ = batches | f"Write[{name}]" >> WriteExamples(
                examples_dir, split=name, num_shards=num_shards, file_prefix=TRANSFORMED_EXAMPLES_PREFIX
            )
            counts.append(batches | f"CountOut[{name}]" >> beam.Map(lambda b, k=name: ("out:" + k, b.num_rows)))
            counts.append(read_results[name].rejected | f"CountRejected[{name}]" >> beam.Map(
                lambda _, k=name: ("rejected:" + k, 1)))
        info = {
            "train_split": train_split,
            "splits": sorted(result.transformed),
            "analyzed": result.analyzed,
            "analyzer_cache": cache_dir,
            "dataset_key": key,
            "preprocessing_fn": fn.description,
            "analyze_columns": plan.analyze_columns,
            "transform_columns": plan.transform_columns,
        }
        _ = (
            counts
            | "AllCounts" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "Summary" >> beam.Map(_write_summary, info, output_dir)
        )


class _DropStepErrorLogs(logging.Filter):
    """Drops Beam's log of an exception that a step raised and that the pipeline re-raises.

    Beam logs (with its traceback) each exception a DoFn raises, then raises it
    to whoever runs the pipeline; :func:`run_transform` reports that exception
    itself, once, so the log would only repeat it, tracebacks and all, ahead of
    the message that matters. Worker processes of the multi-process DirectRunner
    send the same log through the job service, as text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if isinstance(record.msg, BaseException):
            return False
        try:
            text = record.getMessage()
        except Exception:
            return True
        return not (text.startswith("Worker: severity: ERROR")
                    and ("[while running " in text or "Error processing instruction" in text))


#: The loggers through which Beam reports a step's exception before re-raising it.
_STEP_ERROR_LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.portability.local_job_service")


@contextlib.contextmanager
def _step_errors_reported_once():
    drop = _DropStepErrorLogs()
    for name in _STEP_ERROR_LOGGERS:
        logging.getLogger(name).addFilter(drop)
    try:
        yield
    finally:
        for name in _STEP_ERROR_LOGGERS:
            logging.getLogger(name).removeFilter(drop)


def _remove_if_empty(path: str) -> None:
    if "://" not in path and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _write_summary(counts: dict, info: dict, output_dir: str) -> dict:
    summary = dict(info)
    summary["rows"] = {s: int(counts.get("out:" + s, 0)) for s in info["splits"]}
    summary["rows_rejected"] = {s: int(counts.get("rejected:" + s, 0)) for s in info["splits"]}
    files.write_text(FileSystems.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def _read_json(path: str) -> dict | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _write_raw_metadata(schema, path: str) -> None:
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), path)


__all__ = [
    "DEFAULT_TRAIN_SPLIT",
    "MissingFeatureError",
    "PreprocessingFnError",
    "Transform",
    "TransformPlan",
    "TransformResult",
    "cached_entry_keys",
    "dataset_fingerprint",
    "plan_transform",
    "run_transform",
]
