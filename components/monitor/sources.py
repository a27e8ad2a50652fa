"""The reading behind :class:`WatchFiles` and :class:`ReadPubSubExamples` (``transform.py``).

* Files (:class:`WatchFiles`): :class:`PollFn` matches the pattern every
  ``interval`` seconds, :class:`FirstSightFn` lets each path through once, and
  :class:`ReadFileFn` reads the file: CSV with a header row, plain or
  compressed, through the batch readers' own opener and CSV decoder
  (``open_text``, ``csv_io``: a UTF-16 or UTF-32 file with a byte order mark
  reads as its UTF-8 twin); TFRecord of tf.Examples, plain or gzip; or
  Parquet. Each batch carries the time of the look that found its file as
  its timestamp. A file is read once, when it is first matched: write files
  elsewhere and move them in.
* Messages (:class:`ReadPubSubExamples`): :class:`DecodeMessageFn` decodes each
  payload, CSV lines (no header: the columns are given, by default the
  schema's order) or one serialized tf.Example.

A row that does not decode is logged and counted (``conveyor.monitor`` metrics
``rows_rejected``), and a file that cannot be read at all (not text of the
schema's columns, binary, empty, a damaged gzip or Parquet file, a header
without the schema's columns) is logged with its name and the reason, counted
(``files_unreadable``) and skipped whole, none of its rows used: a monitor
keeps running over bad input. Every file read or skipped, and every message
with rejected rows, also gives a report (tag ``REPORTS``), which
:class:`SummarizeRun` totals at the end of a run.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from conveyor.beam_utils import arrow, csv_io, parquet_io, tfrecord_io
from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.beam_utils.file_readers import local_copy, open_binary, open_text
from conveyor.beam_utils.files import FORMATS

METRICS_NAMESPACE = "conveyor.monitor"
#: What a Pub/Sub message may hold.
MESSAGE_FORMATS = ("csv", "tfrecord")
#: Tag of a source's reports: ``{"file", "rows", "rejected", "error"}`` per file
#: (``error`` None, or why the file was skipped), ``{"message", "rows",
#: "rejected"}`` per Pub/Sub message that had rejected rows.
REPORTS = "reports"
#: Bytes of a CSV file looked at before reading it (binary data, not UTF-8 text).
_SNIFF_BYTES = 1 << 16

_LOG = logging.getLogger(__name__)


class ExampleDecoder:
    """Bytes -> canonical RecordBatches of one Arrow schema.

    Args:
      schema: the canonical Arrow schema of the batches.
      csv_options: delimiter and missing-value markers of CSV text.
      csv_columns: the column order of header-less CSV lines (default: the
        schema's); the columns the schema lacks are read and dropped.
    """

    def __init__(
        self,
        schema: pa.Schema,
        csv_options: csv_io.CsvOptions | None = None,
        csv_columns: Sequence[str] | None = None,
    ):
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
                rejected.append(
                    csv_io.RejectedRow(
                        source=source, row=first + i, reason=f"not a tf.Example of this schema: {e}"
                    )
                )
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
        return {
            "schema": self.schema,
            "csv_options": self.csv_options,
            "csv_columns": self.csv_columns,
        }

    def __setstate__(self, state):
        self.__init__(state["schema"], state["csv_options"], state["csv_columns"])


class _Counting(beam.DoFn):
    """Emits a decoded batch and logs and counts its rejected rows (the ``conveyor.monitor`` metrics)."""

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


# ----------------------------------------------------------------- reading one file


def _reason(error: BaseException, path: str) -> str:
    """Why a file was skipped: the error's message without the file's name in front
    (the log line names it), with the error's type when it is not our own."""
    text = str(error).strip()
    for prefix in (f"{path}: ", f"{path}:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if isinstance(error, (InputError, UsageError)):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _sniff_csv(head: bytes) -> str | None:
    """Why the first bytes of a file (decompressed, as UTF-8: see :func:`_read_head`)
    are no CSV text, or None."""
    if not head.strip():
        return "empty file (no header row)" if not head else "no header row (only blank space)"
    if b"\x00" in head:
        return "binary data (it holds NUL bytes), not CSV text"
    first_line = head.split(b"\n", 1)[0]
    try:
        first_line.decode("utf-8")
    except UnicodeDecodeError as e:
        if (
            len(first_line) < len(head) or e.start < len(first_line) - 3
        ):  # not a character cut at the end
            return f"not UTF-8 text (byte 0x{first_line[e.start]:02x} at offset {e.start} of the header row)"
    return None


def _compressed(path: str) -> bool:
    return path.lower().endswith((".gz", ".gzip", ".bz2", ".zst", ".zstd", ".lz4", ".br"))


def _read_head(open_stream, path: str) -> bytes:
    """The first bytes of a CSV file (decompressed) as the batch readers read them:
    UTF-8, a UTF-16 or UTF-32 file with a byte order mark decoded (``csv_io.read_head``).

    A stream that cannot be read raises its own error (OSError, ArrowInvalid...),
    as reading it directly would, so that :class:`ReadFileFn` tells a damaged
    compressed file as one; a file that does not decode from the encoding its
    byte order mark names raises the reader's InputError.
    """
    try:
        return csv_io.read_head(open_stream, path, _SNIFF_BYTES)
    except InputError as e:
        if e.__cause__ is not None and not isinstance(e.__cause__, UnicodeDecodeError):
            raise e.__cause__ from None
        raise


class ReadFileFn(_Counting):
    """FileMetadata -> the file's batches, and a report; a file that cannot be read
    is skipped whole (nothing of it emitted), logged with the reason and reported."""

    def __init__(self, decoder: ExampleDecoder, format: str | None, batch_size: int):
        super().__init__(decoder)
        self._format = format
        self._batch_size = batch_size
        self._read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_read")
        self._unreadable = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_unreadable")

    def process(self, metadata):
        path = metadata.path
        try:
            # The whole file first: a file that fails half-way is skipped, not half-counted.
            parts = list(self._parts(path, metadata.size_in_bytes))
        except Exception as e:  # noqa: BLE001 - any failure of one file must not stop the stream
            reason = _reason(e, path)
            self._unreadable.inc()
            _LOG.error("skipped unreadable file %s: %s", path, reason)
            yield beam.pvalue.TaggedOutput(
                REPORTS, {"file": path, "rows": 0, "rejected": 0, "error": reason}
            )
            return
        self._read.inc()
        rows = rejected = 0
        for batch, bad in parts:
            rows += batch.num_rows if batch is not None else 0
            rejected += len(bad)
            yield from self._emit(batch, bad)
        yield beam.pvalue.TaggedOutput(
            REPORTS, {"file": path, "rows": rows, "rejected": rejected, "error": None}
        )

    def _parts(self, path: str, size: int | None):
        """Yields ``(batch, rejected rows)`` of one file; raises if it cannot be read."""
        from conveyor.beam_utils.files import detect_format

        if size == 0:
            raise InputError("empty file (0 bytes)")
        fmt = self._format or detect_format(path)
        if fmt == "csv":
            # One local copy for the several opens (the header's, the rows'); the batch
            # readers' own opener and CSV decoder read it, so it reads as it does there.
            with local_copy(path) as local:

                def opener():
                    return open_text(local)

                try:
                    why = _sniff_csv(_read_head(opener, path))
                    if why:
                        raise InputError(why)
                    yield from self._decoder.csv_stream(opener, path)
                except (OSError, pa.ArrowInvalid) as e:
                    if _compressed(path):
                        raise InputError(f"damaged or truncated compressed file ({e})") from e
                    raise
        elif fmt == "tfrecord":
            records, first = [], 1
            with open_binary(path) as f:
                for rec in tfrecord_io.open_records(f, path):
                    records.append(rec)
                    if len(records) >= self._batch_size:
                        yield self._decoder.tf_examples(records, path, first)
                        first += len(records)
                        records = []
            if records:
                yield self._decoder.tf_examples(records, path, first)
            elif first == 1:
                raise InputError("no records (an empty TFRecord file)")
        elif fmt == "parquet":
            with open_binary(path) as f:
                for batch in parquet_io.read_parquet_batches(
                    f, path, self._decoder.schema, self._batch_size
                ):
                    yield batch, []
        else:
            raise InputError(f"the monitor reads {', '.join(FORMATS)} files, not {fmt}")


# ----------------------------------------------------------------- watching a pattern


def _poll_count(start: float, stop: float | None, interval: float) -> int:
    """Looks of a watch from ``start`` to ``stop``: every ``interval`` seconds, and
    one at ``stop`` itself (a huge number without a stop)."""
    if stop is None:
        return 1 << 62
    whole = math.floor((stop - start) / interval + 1e-9)
    return whole + 1 + (1 if start + whole * interval < stop - 1e-6 else 0)


def _poll_time(plan: tuple, k: int) -> float:
    start, stop, interval = plan
    t = start + k * interval
    return t if stop is None else min(t, stop)


class _PollRestrictions(RestrictionProvider):
    """The looks of a watch as an offset range: look ``k`` is due at ``_poll_time(plan, k)``."""

    def initial_restriction(self, plan):
        from apache_beam.io.restriction_trackers import OffsetRange

        return OffsetRange(0, _poll_count(*plan))

    def create_tracker(self, restriction):
        from apache_beam.io.restriction_trackers import OffsetRestrictionTracker

        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, plan, restriction):
        return 0  # the files to come are unknown; nothing to balance

    def truncate(self, plan, restriction):
        return None  # a drained pipeline looks no more


_LOOKS = beam.DoFn.RestrictionParam(_PollRestrictions())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class PollFn(beam.DoFn):
    """``(start, stop, interval)`` -> FileMetadata of every file matching the pattern at
    each look, timestamped with the look's due time; one look per bundle, the rest
    deferred to the next look's due time.

    A runner that resumes the deferred rest at once rather than when asked (the
    local FnApiRunner does) would otherwise spin through hundreds of empty
    bundles a second, burning a core and growing that runner's per-bundle
    metrics until reading them overflows the stack: so a look that is not due
    yet waits here. A runner that honours the resume time finds it due.
    """

    def __init__(self, file_pattern: str):
        self._pattern = file_pattern

    @beam.DoFn.unbounded_per_element()
    def process(self, plan, tracker=_LOOKS, watermark=_WATERMARK):
        from apache_beam.utils.timestamp import Timestamp

        restriction = tracker.current_restriction()
        k = restriction.start
        if k >= restriction.stop:
            return
        due = _poll_time(plan, k)
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        if not tracker.try_claim(k):
            return
        now = time.time()
        # Looks overdue by now (a slow bundle, a busy runner): one match serves them all.
        while (
            k + 1 < restriction.stop and _poll_time(plan, k + 1) <= now and tracker.try_claim(k + 1)
        ):
            k += 1
        stamp = Timestamp.of(due)
        if watermark.current_watermark() is None or watermark.current_watermark() < stamp:
            watermark.set_watermark(stamp)
        for metadata in self._match():
            yield beam.window.TimestampedValue(metadata, stamp)
        if k + 1 < restriction.stop:
            following = Timestamp.of(_poll_time(plan, k + 1))
            watermark.set_watermark(following)
            tracker.defer_remainder(following)

    def _match(self):
        import os

        from apache_beam.io.filesystems import FileSystems

        from conveyor.beam_utils.files import is_local

        try:
            found = FileSystems.match([self._pattern])[0].metadata_list
        except Exception as e:  # noqa: BLE001 - a failed look is retried at the next one
            _LOG.warning("cannot list %s (will look again): %s", self._pattern, e)
            return []
        local = is_local(self._pattern)
        return sorted(
            (m for m in found if not (m.path.endswith("/") or (local and os.path.isdir(m.path)))),
            key=lambda m: m.path,
        )


_SEEN = ReadModifyWriteStateSpec("seen", beam.coders.BooleanCoder())
_SEEN_STATE = beam.DoFn.StateParam(_SEEN)


class FirstSightFn(beam.DoFn):
    """``(path, FileMetadata)`` -> the metadata the first time its path is seen."""

    def process(self, element, seen=_SEEN_STATE):
        if not seen.read():
            seen.write(True)
            yield element[1]


class DecodeMessageFn(_Counting):
    """A Pub/Sub payload (CSV lines or one serialized tf.Example) -> its batch, and a
    report when some of its rows were rejected; a payload that does not decode at
    all is one rejected row, logged and reported."""

    def __init__(self, decoder: ExampleDecoder, format: str):
        super().__init__(decoder)
        self._format = format

    def process(self, payload: bytes):
        try:
            if self._format == "csv":
                parts = list(self._decoder.csv_lines(payload, "pubsub message"))
            else:
                parts = [self._decoder.tf_examples([payload], "pubsub message")]
        except Exception as e:  # noqa: BLE001 - one bad message must not stop the stream
            self._rejected.inc()
            _LOG.warning("rejected a message: %s", _reason(e, "pubsub message"))
            yield beam.pvalue.TaggedOutput(
                REPORTS, {"message": _reason(e, "pubsub message"), "rows": 0, "rejected": 1}
            )
            return
        rows = rejected = 0
        for batch, bad in parts:
            rows += batch.num_rows if batch is not None else 0
            rejected += len(bad)
            yield from self._emit(batch, bad)
        if rejected:
            yield beam.pvalue.TaggedOutput(
                REPORTS, {"message": None, "rows": rows, "rejected": rejected}
            )
