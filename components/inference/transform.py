"""``BulkInference``: a SavedModel signature over a PCollection of RecordBatches.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.inference import BulkInference, WritePredictionLogs

    with beam.Pipeline() as p:
        read = p | ReadExamples("data/Split-eval/*.gz")
        result = read.examples | BulkInference(
            "model/", schema=read.arrow_schema, signature="serving_default")
        result.predictions | WritePredictionLogs("out/inference_result", result.log_encoder)
        result.dead_letters | beam.Map(print)

The model and the request are checked against each other when the transform is
constructed (in the launching process, before any data moves): a missing model
path, a directory that is not a SavedModel, an unknown signature, an input
feature that the examples lack or carry with the wrong type, all raise
:class:`~conveyor.beam_utils.errors.InputError` naming it.

At run time a batch whose inference raises does not stop the run: its rows go
to ``dead_letters`` with the exception text, and the counters
``conveyor.inference/examples_in``, ``examples_predicted`` and
``examples_dead_lettered`` reconcile (in = predicted + dead-lettered).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.ml.inference.base import RunInference

from conveyor.beam_utils import arrow
from conveyor.beam_utils.io import WriteRecordLists
from conveyor.components.inference import logs
from conveyor.components.inference.handler import BatchPrediction, SavedModelHandler
from conveyor.components.inference.model import (
    InputPlan,
    SignatureInfo,
    check_output_columns,
    plan_inputs,
    read_signature,
)

METRICS_NAMESPACE = "conveyor.inference"
DEFAULT_MIN_BATCH_SIZE = 256
DEFAULT_MAX_BATCH_SIZE = 4096
ERROR_COLUMN = "inference_error"

_LOG = logging.getLogger(__name__)


class DeadLetter(NamedTuple):
    """Rows whose inference batch raised, with the exception's text."""

    examples: pa.RecordBatch
    error: str


class InferenceResult(NamedTuple):
    """The outputs of :class:`BulkInference`.

    Attributes:
      predictions: PCollection of :class:`BatchPrediction` (a record batch and
        the signature's output arrays for its rows).
      dead_letters: PCollection of :class:`DeadLetter`.
      signature: what the signature takes and returns.
      log_encoder: turns a BatchPrediction into serialized PredictionLogs.
      prediction_schema: the Arrow schema of the examples with prediction
        columns appended (see :class:`AppendPredictions`).
      prediction_columns: ``{output key: column name}`` of those columns.
    """

    predictions: beam.PCollection
    dead_letters: beam.PCollection
    signature: SignatureInfo
    log_encoder: logs.PredictionLogEncoder
    prediction_schema: pa.Schema
    prediction_columns: dict


@beam.typehints.with_input_types(pa.RecordBatch)
class BulkInference(beam.PTransform):
    """Runs a SavedModel signature on RecordBatches with Beam's ``RunInference``.

    RecordBatches in; an :class:`InferenceResult` out, whose ``predictions``
    are :class:`BatchPrediction` and ``dead_letters`` :class:`DeadLetter`
    (a struct of PCollections, so the output types are set on each of them).

    Args:
      model_path: a SavedModel directory (Keras 3 export, tf_keras or TF1).
      schema: the Arrow schema of the input batches (e.g.
        ``ReadExamples(...).arrow_schema``).
      signature: the signature to call.
      min_batch_size, max_batch_size: bounds, in rows, of inference batches.
        Input batches are cut into pieces of ``min_batch_size`` rows, which
        ``BatchElements`` groups into batches of at most ``max_batch_size``.
      input_mode: ``examples`` (serialized tf.Examples) or ``tensors`` (one
        dense tensor per named input); None decides from the signature.
      prediction_prefix: prefix of appended prediction column names.

    Raises:
      InputError: at construction, for a bad model path, signature or input.
    """

    def __init__(
        self,
        model_path: str,
        schema: pa.Schema,
        signature: str = "serving_default",
        *,
        min_batch_size: int = DEFAULT_MIN_BATCH_SIZE,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        input_mode: str | None = None,
        prediction_prefix: str = "",
    ):
        super().__init__()
        if min_batch_size < 1 or max_batch_size < min_batch_size:
            raise ValueError(
                f"batch sizes need 1 <= min <= max, got {min_batch_size}:{max_batch_size}"
            )
        self.schema = schema
        self.signature = read_signature(model_path, signature)
        self.plan: InputPlan = plan_inputs(self.signature, schema, input_mode)
        self.prediction_columns = check_output_columns(self.signature, schema, prediction_prefix)
        self.prediction_schema = logs.output_schema(schema, self.signature, self.prediction_columns)
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self.handler = SavedModelHandler(
            self.signature,
            self.plan,
            arrow.to_metadata_schema(schema),
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
        )

    def expand(self, batches):
        pieces = batches | "Slice" >> beam.ParDo(_SliceFn(self.schema, self.min_batch_size))
        predictions, failures = (
            pieces
            | "RunInference"
            >> RunInference(
                self.handler, metrics_namespace=METRICS_NAMESPACE
            ).with_exception_handling()
        )
        predictions = predictions | "CountPredicted" >> beam.ParDo(
            _CountFn("examples_predicted")
        ).with_output_types(BatchPrediction)
        dead_letters = failures.failed_inferences | "DeadLetters" >> beam.ParDo(
            _DeadLetterFn()
        ).with_output_types(DeadLetter)
        return InferenceResult(
            predictions,
            dead_letters,
            self.signature,
            logs.PredictionLogEncoder(self.signature, self.plan),
            self.prediction_schema,
            self.prediction_columns,
        )


class _SliceFn(beam.DoFn):
    """Conforms batches to the schema and cuts them into pieces of ``rows`` rows."""

    def __init__(self, schema: pa.Schema, rows: int):
        self._schema = schema
        self._rows = rows
        self._count = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "examples_in")

    def process(self, batch: pa.RecordBatch):
        n = batch.num_rows
        if not n:
            return
        self._count.inc(n)
        batch = arrow.conform(batch, self._schema)
        for start in range(0, n, self._rows):
            yield batch.slice(start, self._rows)


class _CountFn(beam.DoFn):
    def __init__(self, name: str):
        self._count = beam.metrics.Metrics.counter(METRICS_NAMESPACE, name)

    def process(self, prediction: BatchPrediction):
        self._count.inc(prediction.examples.num_rows)
        yield prediction


class _DeadLetterFn(beam.DoFn):
    """Beam's ``(batch, (type, repr, traceback))`` -> a :class:`DeadLetter`."""

    def __init__(self):
        self._count = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "examples_dead_lettered")
        self._batches = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "batches_dead_lettered")

    def process(self, failure):
        batch, (_, exc_repr, tb) = failure
        pieces = [b for b in batch if b.num_rows]
        if tb:
            error = tb[-1].strip() if isinstance(tb, (list, tuple)) else str(tb).strip()
        else:
            error = exc_repr
        if not pieces:
            return
        examples = pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]
        self._count.inc(examples.num_rows)
        self._batches.inc()
        _LOG.warning("inference failed on a batch of %d examples: %s", examples.num_rows, error)
        yield DeadLetter(examples, error)


# --- writing --------------------------------------------------------------------


class _EncodeLogsFn(beam.DoFn):
    def __init__(self, encoder: logs.PredictionLogEncoder):
        self._encoder = encoder

    def process(self, prediction: BatchPrediction):
        if prediction.examples.num_rows:
            yield self._encoder.encode(prediction)


@beam.typehints.with_input_types(BatchPrediction)
@beam.typehints.with_output_types(str)
class WritePredictionLogs(beam.PTransform):
    """Writes predictions as gzip TFRecords of serialized ``PredictionLog``.

    Files are ``<output_dir>/prediction_logs-SSSSS-of-NNNNN.gz`` (TFX
    BulkInferrer's ``inference_result`` layout). BatchPredictions in (from
    :class:`BulkInference`, logged with its ``log_encoder``); the names of the
    files written out.
    """

    def __init__(self, output_dir: str, encoder: logs.PredictionLogEncoder, num_shards: int = 0):
        super().__init__()
        self.output_dir = output_dir
        self.encoder = encoder
        self.num_shards = num_shards

    def expand(self, predictions):
        from apache_beam.io.filesystems import FileSystems

        return (
            predictions
            | "Encode" >> beam.ParDo(_EncodeLogsFn(self.encoder))
            | "Write"
            >> WriteRecordLists(
                FileSystems.join(self.output_dir, "prediction_logs"), ".gz", self.num_shards
            )
        )


@beam.typehints.with_input_types(BatchPrediction)
@beam.typehints.with_output_types(pa.RecordBatch)
class AppendPredictions(beam.PTransform):
    """BatchPredictions -> the examples with one prediction column per output.

    Args:
      schema: the output batches' schema, :attr:`InferenceResult.prediction_schema`.
      columns: ``{output key: column name}``, :attr:`InferenceResult.prediction_columns`.
    """

    def __init__(self, schema: pa.Schema, columns: dict):
        super().__init__()
        self.schema = schema
        self.columns = columns

    def expand(self, predictions):
        schema, columns = self.schema, self.columns
        return predictions | "Append" >> beam.Map(
            lambda p: logs.append_predictions(p, schema, columns)
        ).with_output_types(pa.RecordBatch)


def dead_letter_examples(letter: DeadLetter) -> pa.RecordBatch:
    """A dead letter's rows with the error text in an ``inference_error`` column."""
    n = letter.examples.num_rows
    col = arrow.wrap_scalars(
        pa.array([letter.error.encode()] * n, pa.large_binary()), pa.large_binary()
    )
    return pa.RecordBatch.from_arrays(
        list(letter.examples.columns) + [col],
        schema=letter.examples.schema.append(pa.field(ERROR_COLUMN, col.type)),
    )
