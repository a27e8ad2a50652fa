"""run_transform: one Beam pipeline that reads examples, applies TransformExamples and writes TFX's layout.

:func:`run_transform` reads the inputs, runs
:class:`~conveyor.components.transform.transform.TransformExamples` over them
and writes::

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
import shutil
from collections.abc import Callable, Mapping, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import files
from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.io import ReadExamples, WriteExamples
from conveyor.beam_utils.summary import SumCounts, count_rows, count_value, reconcile
from conveyor.beam_utils.user_modules import exception_chain, release_shared_objects
from conveyor.components.transform import schema as schema_lib
from conveyor.components.transform.transform import (
    DEFAULT_TRAIN_SPLIT,
    TransformExamples,
    plan_transform,
)
from conveyor.components.transform.user_fn import PreprocessingFn, runtime_error

TRANSFORM_GRAPH_DIR = "transform_graph"
TRANSFORMED_EXAMPLES_DIR = "transformed_examples"
TRANSFORMED_EXAMPLES_PREFIX = "transformed_examples"
RAW_METADATA_DIR = "metadata"  # tft.TFTransformOutput.RAW_METADATA_DIR
SUMMARY_FILE = "transform_summary.json"
TEMP_DIR = ".transform_tmp"


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
        h.update(
            f"{m.path}\0{m.size_in_bytes}\0{getattr(m, 'last_updated_in_seconds', 0)}\n".encode()
        )
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
    examples: Mapping[str, ReadExamples],
    output_dir: str,
    preprocessing_fn: Callable | PreprocessingFn,
    schema=None,
    train_split: str = DEFAULT_TRAIN_SPLIT,
    cache_dir: str | None = None,
    num_shards: int = 0,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Runs :class:`~conveyor.components.transform.transform.TransformExamples` over
    the splits ``examples`` names and writes TFX's layout.

    Args:
      examples: ``{split: ReadExamples}``; one must be ``train_split``.
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

    if train_split not in examples:
        raise UsageError(
            f"no split {train_split!r} to analyze (splits: {', '.join(sorted(examples))})"
        )
    fn = PreprocessingFn.from_callable(preprocessing_fn)
    train_read = examples[train_split]
    if schema is not None:
        # Read with the schema's types, only the columns the data has (it may name more).
        data_schema = _data_columns(train_read)
        typed = schema_lib.arrow_schema_for(schema)
        read_schema = pa.schema([f for f in typed if f.name in data_schema.names])
    else:
        read_schema = train_read.arrow_schema
    plan = plan_transform(fn, read_schema, schema)
    # Decode only the columns the preprocessing_fn reads.
    examples = {name: r.with_schema(plan.arrow_schema) for name, r in examples.items()}
    key = f"{train_split}-{dataset_fingerprint(train_read, read_schema)}" if cache_dir else None

    graph_dir = FileSystems.join(output_dir, TRANSFORM_GRAPH_DIR)
    examples_dir = FileSystems.join(output_dir, TRANSFORMED_EXAMPLES_DIR)
    temp_dir = FileSystems.join(output_dir, TEMP_DIR)
    summary_path = FileSystems.join(output_dir, SUMMARY_FILE)
    output_existed = FileSystems.exists(output_dir)
    for path in (graph_dir, examples_dir, temp_dir):
        _remove(path)

    transform = TransformExamples(
        fn,
        plan.arrow_schema,
        schema=plan.schema,
        train_split=train_split,
        temp_dir=temp_dir,
        cache_dir=cache_dir,
        dataset_key=key,
    )
    try:
        with _step_errors_reported_once():
            _run_pipeline(
                examples,
                transform,
                fn,
                plan,
                graph_dir,
                examples_dir,
                output_dir,
                train_split,
                cache_dir,
                key,
                num_shards,
                pipeline_options(beam_args),
            )
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


def _run_pipeline(
    examples,
    transform,
    fn,
    plan,
    graph_dir,
    examples_dir,
    output_dir,
    train_split,
    cache_dir,
    key,
    num_shards,
    options,
) -> None:
    import tensorflow_transform.beam as tft_beam

    with beam.Pipeline(options=options) as p:
        read_results = {name: p | f"Read[{name}]" >> r for name, r in examples.items()}
        result = {name: rr.examples for name, rr in read_results.items()} | "Transform" >> transform
        _ = result.transform_fn | "WriteTransformGraph" >> tft_beam.WriteTransformFn(graph_dir)
        # Per split: rows the reader saw, accepted and rejected (which must reconcile), and
        # rows transformed (the summary's "rows").
        counted, how = {}, {}
        for name, batches in result.transformed.items():
            _ = batches | f"Write[{name}]" >> WriteExamples(
                examples_dir,
                split=name,
                num_shards=num_shards,
                file_prefix=TRANSFORMED_EXAMPLES_PREFIX,
            )
            read = read_results[name]
            counted.update(
                {
                    f"read:{name}": read.rows_read,
                    f"accepted:{name}": read.examples,
                    f"rejected:{name}": read.rejected,
                    f"out:{name}": batches,
                }
            )
            how.update(
                {
                    f"read:{name}": count_value,
                    f"accepted:{name}": count_rows,
                    f"out:{name}": count_rows,
                }
            )
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
        _ = counted | "Summary" >> SumCounts(how, _write_summary, info, output_dir)


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
        return not (
            text.startswith("Worker: severity: ERROR")
            and ("[while running " in text or "Error processing instruction" in text)
        )


#: The loggers through which Beam reports a step's exception before re-raising it.
_STEP_ERROR_LOGGERS = (
    "apache_beam.runners.common",
    "apache_beam.runners.portability.local_job_service",
)


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
    """Writes ``transform_summary.json`` once every split's read = accepted + rejected."""
    for s in info["splits"]:
        reconcile(
            counts[f"read:{s}"],
            counts[f"accepted:{s}"],
            counts[f"rejected:{s}"],
            f"transform input {s!r}",
        )
    summary = dict(info)
    summary["rows"] = {s: counts[f"out:{s}"] for s in info["splits"]}
    summary["rows_rejected"] = {s: counts[f"rejected:{s}"] for s in info["splits"]}
    files.write_text(
        FileSystems.join(output_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
    )
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
    "dataset_fingerprint",
    "run_transform",
]
