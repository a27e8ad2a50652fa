"""Unbounded sources of canonical RecordBatches for :class:`MonitorWindows`.

* :class:`WatchFiles`: new files of a pattern (CSV with a header row,
  TFRecord of tf.Examples, plain or gzip, or Parquet), found by Beam's
  ``MatchContinuously`` every ``interval`` seconds; each batch carries the
  match time as its timestamp. A file is read once, when it is first matched:
  write files elsewhere and move them in (a Parquet file caught half-written
  is unreadable, and is skipped).
* :class:`ReadPubSubExamples`: Pub/Sub messages whose payload is CSV lines
  (no header: the columns are given, by default the schema's order) or one
  serialized tf.Example; each batch carries the publish time (or the
  ``timestamp_attribute``).

A row that does not decode is logged and counted (``conveyor.monitor`` metrics
``rows_rejected``), and a file that cannot be read at all is logged and
skipped (``files_failed``): a monitor keeps running over bad input.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils import arrow, csv_io, parquet_io, tfrecord_io
from conveyor.beam_utils.errors import InputError

METRICS_NAMESPACE = "conveyor.monitor"
DEFAULT_BATCH_SIZE = 8192
FORMATS = ("csv", "tfrecord", "parquet")
#: What a Pub/Sub message may hold.
MESSAGE_FORMATS = ("csv", "tfrecord")

_LOG = logging.getLogger(__name__)


class ExampleDecoder:
    """Bytes -> canonical RecordBatches of one Arrow schema.

    Args:
      schema: the canonical Arrow schema of the batches.
      csv_options: delimiter and missing-value markers of CSV text.
      csv_columns: the column order of header-less CSV lines (default: the
        schema's); the columns the schema lacks are read and dropped.
    """

    def __init__(self, schema: pa.Schema, csv_options: csv_io.CsvOptions | None = None,
                 csv_columns: Sequence[str] | None = None):
        self.schema = schema
        self.csv_options = csv_options or csv_io.CsvOptions()
        self.csv_columns = list(csv_columns or schema.names)
        missing = [n for n in schema.names if n not in self.csv_columns]
        if missing:
            raise ValueError(f"the CSV columns {self.csv_columns} lack {missing}")
        self._csv = csv_io.CsvDecoder(schema, self.csv_options)
        self._examples = None

    def csv_stream(self, open_stream, source: str):
        """Yields ``(batch, rejected rows)`` of CSV text with a header row."""
        for batch, rejected, _ in self._csv.iter_file(open_stream, source):
            yield batch, rejected

    def csv_lines(self, data: bytes, source: str):
        """Yields ``(batch, rejected rows)`` of header-less CSV lines (row 2 is the first line)."""
        header = self.csv_options.delimiter.join(self.csv_columns).encode("utf-8") + b"\n"
        text = header + data
        yield from self.csv_stream(lambda: io.BytesIO(text), source)

    def tf_examples(self, records: list[bytes], source: str, first: int = 1):
        """``(batch, rejected rows)`` of serialized tf.Examples (numbered from ``first``)."""
        try:
            return self._decode(records), []
        except Exception:  # some record is bad: find which, one by one
            pass
        good, rejected = [], []
        for i, rec in enumerate(records):
            try:
                good.append(self._decode([rec]))
            except Exception as e:
                rejected.append(csv_io.RejectedRow(source=source, row=first + i,
                                                   reason=f"not a tf.Example of this schema: {e}"))
        batch = pa.Table.from_batches(good, schema=self.schema).combine_chunks().to_batches()
        return (batch[0] if batch else arrow.empty_batch(self.schema)), rejected

    def _decode(self, records: list[bytes]) -> pa.RecordBatch:
        if self._examples is None:
            from tfx_bsl.coders import example_coder

            # No schema: a feature's type comes from the data and conform() converts
            # it (an int64 timestamp read as text, say).
            self._examples = example_coder.ExamplesToRecordBatchDecoder()
        return arrow.conform(self._examples.DecodeBatch(records), self.schema)

    def __getstate__(self):
        return {"schema": self.schema, "csv_options": self.csv_options, "csv_columns": self.csv_columns}

    def __setstate__(self, state):
        self.__init__(state["schema"], state["csv_options"], state["csv_columns"])


class _Counting(beam.DoFn):
    def __init__(self, decoder: ExampleDecoder):
        self._decoder = decoder
        self._accepted = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_accepted")
        self._rejected = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_rejected")

    def _emit(self, batch, rejected):
        for r in rejected[:10]:
            _LOG.warning("rejected %s row %d: %s", r.source, r.row, r.reason)
        if len(rejected) > 10:
            _LOG.warning("... and %d more rejected rows", len(rejected) - 10)
        self._rejected.inc(len(rejected))
        if batch is not None and batch.num_rows:
            self._accepted.inc(batch.num_rows)
            yield batch


class _ReadFileFn(_Counting):
    def __init__(self, decoder: ExampleDecoder, format: str | None, batch_size: int):
        super().__init__(decoder)
        self._format = format
        self._batch_size = batch_size
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_failed")

    def process(self, metadata):
        from apache_beam.io.filesystems import CompressionTypes, FileSystems

        from conveyor.beam_utils.files import detect_format

        path = metadata.path
        try:
            fmt = self._format or detect_format(path)
            if fmt == "csv":
                for batch, rejected in self._decoder.csv_stream(lambda: FileSystems.open(path), path):
                    yield from self._emit(batch, rejected)
            elif fmt == "tfrecord":
                records, first = [], 1
                with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    for rec in tfrecord_io.open_records(f, path):
                        records.append(rec)
                        if len(records) >= self._batch_size:
                            yield from self._emit(*self._decoder.tf_examples(records, path, first))
                            first += len(records)
                            records = []
                if records:
                    yield from self._emit(*self._decoder.tf_examples(records, path, first))
            elif fmt == "parquet":
                with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    for batch in parquet_io.read_parquet_batches(f, path, self._decoder.schema,
                                                                 self._batch_size):
                        yield from self._emit(batch, [])
            else:
                raise InputError(f"{path}: the monitor reads {', '.join(FORMATS)} files, not {fmt}")
        except (InputError, ValueError, OSError) as e:
            self._failed.inc()
            _LOG.error("skipped %s: %s", path, e)


class WatchFiles(beam.PTransform):
    """New files of ``file_pattern`` -> canonical RecordBatches, as they appear.

    Args:
      file_pattern: a glob on any Beam filesystem.
      schema: the canonical Arrow schema to read (CSV files need its columns in their header).
      format: ``csv``, ``tfrecord`` or ``parquet``; from each file's name when None
        (``.csv``/``.tsv``/``.txt``, ``.parquet``/``.pq``, ``tfrecord`` or ``.gz``).
      interval: seconds between matches.
      stop_after: stop watching after this many seconds (the pipeline then
        finishes); None watches until the pipeline is cancelled.
      csv_options: delimiter and missing-value markers.
      batch_size: records (rows) per batch of a TFRecord (Parquet) file; CSV
        files come in blocks.
    """

    def __init__(self, file_pattern: str, schema: pa.Schema, format: str | None = None,
                 interval: float = 10.0, stop_after: float | None = None,
                 csv_options: csv_io.CsvOptions | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__()
        if format is not None and format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        if stop_after is not None and stop_after < 0:
            raise ValueError(f"stop_after must not be negative, not {stop_after}")
        self.file_pattern = file_pattern
        self.format = format
        self.interval = interval
        self.stop_after = stop_after
        self.batch_size = batch_size
        self.decoder = ExampleDecoder(schema, csv_options)

    def expand(self, pbegin):
        from apache_beam.io.fileio import MatchContinuously
        from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

        start = Timestamp.now()
        stop = MAX_TIMESTAMP if self.stop_after is None else start + self.stop_after
        return (
            pbegin
            | "Match" >> MatchContinuously(self.file_pattern, interval=self.interval,
                                           start_timestamp=start, stop_timestamp=stop)
            | "Read" >> beam.ParDo(_ReadFileFn(self.decoder, self.format, self.batch_size))
        )


class _DecodeMessageFn(_Counting):
    def __init__(self, decoder: ExampleDecoder, format: str):
        super().__init__(decoder)
        self._format = format

    def process(self, payload: bytes):
        if self._format == "csv":
            try:
                for batch, rejected in self._decoder.csv_lines(payload, "pubsub message"):
                    yield from self._emit(batch, rejected)
            except InputError as e:
                self._rejected.inc()
                _LOG.warning("rejected a message: %s", e)
        else:
            yield from self._emit(*self._decoder.tf_examples([payload], "pubsub message"))


class ReadPubSubExamples(beam.PTransform):
    """Pub/Sub messages -> canonical RecordBatches (one per message).

    Args:
      subscription: ``projects/<project>/subscriptions/<name>``.
      schema: the canonical Arrow schema to read.
      format: ``csv`` (payload: CSV lines, no header) or ``tfrecord`` (payload:
        one serialized tf.Example).
      csv_columns: the column order of the CSV lines (default: the schema's).
      csv_options: delimiter and missing-value markers.
      timestamp_attribute: a message attribute holding the event time
        (Beam's ``ReadFromPubSub`` option); default: the publish time.
    """

    def __init__(self, subscription: str, schema: pa.Schema, format: str = "csv",
                 csv_columns: Sequence[str] | None = None,
                 csv_options: csv_io.CsvOptions | None = None,
                 timestamp_attribute: str | None = None):
        super().__init__()
        if format not in MESSAGE_FORMATS:
            raise ValueError(f"format must be one of {MESSAGE_FORMATS}, not {format!r}")
        self.subscription = subscription
        self.format = format
        self.timestamp_attribute = timestamp_attribute
        self.decoder = ExampleDecoder(schema, csv_options, csv_columns)

    def expand(self, pbegin):
        from apache_beam.io.gcp.pubsub import ReadFromPubSub

        return (
            pbegin
            | "ReadPubSub" >> ReadFromPubSub(subscription=self.subscription,
                                             timestamp_attribute=self.timestamp_attribute)
            | "Decode" >> beam.ParDo(_DecodeMessageFn(self.decoder, self.format))
        )
