"""Reading one piece of one input file: opening files, and the DoFns behind ReadExamples.

A :class:`ReadTask` names the piece (a whole file, a byte range of an
uncompressed CSV file, or some row groups of a Parquet file; see
:mod:`conveyor.beam_utils.read_plan` for how files are cut into pieces). The
DoFns here read one task each and emit canonical ``pyarrow.RecordBatch``es,
the rejected rows (tag ``rejected``) and the number of rows read (tag
``rows_read``); :class:`~conveyor.beam_utils.read.ReadExamples` wires them up.

:func:`open_binary`, :func:`open_text` and :func:`local_copy` open a file on any
Beam filesystem the way the readers need it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from conveyor.beam_utils import arrow, csv_io, example_parsing, files, tfrecord_io
from conveyor.beam_utils.csv_io import RejectedRow
from conveyor.beam_utils.errors import InputError

METRICS_NAMESPACE = "conveyor"
#: The tags of a read DoFn's outputs: batches (the main output), rejected rows, rows read.
EXAMPLES, REJECTED, ROWS_READ = "examples", "rejected", "rows_read"

_LOG = logging.getLogger(__name__)


def open_binary(path: str):
    """A file's bytes as they are on storage (never decompressed), on any Beam filesystem."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


@contextlib.contextmanager
def local_copy(path: str):
    """``path`` itself if it is local, else a temporary local copy of it, removed afterwards.

    pyarrow's readers take a native stream, read on a thread of their own; a
    Python file object (Beam's, for a remote file) would need the GIL there.
    The copy keeps the last two suffixes of the name (``.csv.gz``), so
    compression is still detected from it.
    """
    if files.is_local(path):
        yield path
        return
    suffix = "".join(pathlib.PurePosixPath(path).suffixes[-2:])
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, open_binary(path) as src:
            shutil.copyfileobj(src, out, 1 << 22)
        yield tmp
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def open_text(path: str):
    """A CSV file as a native Arrow stream, decompressed if its name says so (.gz, .bz2, ...).

    pyarrow's streaming CSV reader reads on its own thread; given a Python file
    object it would need the GIL there, so it gets a native stream instead. A
    file on a remote filesystem is copied to a local temporary file first
    (:func:`local_copy`).
    """
    with local_copy(path) as local, pa.input_stream(local, compression="detect") as stream:
        yield stream


def read_range(path: str, start: int, end: int) -> pa.Buffer:
    """Bytes ``[start, end)`` of a file (a CSV range: at most a piece's size)."""
    with open_binary(path) as f:
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise InputError(
            f"{path}: ended at byte {start + len(data)} while reading to {end}; did it change?"
        )
    return pa.py_buffer(data)


class ReadTask(NamedTuple):
    """One piece of reading: a whole file, a byte range of an uncompressed CSV
    file, or some row groups of a Parquet file.

    Attributes:
      path: the file.
      start, end: the byte range (CSV); ``end`` None means the whole file.
      first_row: CSV row number of the record at ``start`` (the header is row 1).
      columns: the CSV header's column names (a range holds no header).
      row_groups: the Parquet row groups, or None for all.
      piece: the piece's index in the file.
    """

    path: str
    start: int = 0
    end: int | None = None
    first_row: int = 2
    columns: tuple[str, ...] | None = None
    row_groups: tuple[int, ...] | None = None
    piece: int = 0

    @property
    def whole(self) -> bool:
        return self.end is None and self.row_groups is None


class ReadFileFn(beam.DoFn):
    """Reads one :class:`ReadTask` per element; emits batches, rejected rows and the rows read.

    A subclass reads one format: its ``read(task)`` yields ``(batch, rejected
    rows, rows read)``; this class counts them (the ``conveyor`` counters
    ``rows_read``, ``rows_accepted``, ``rows_rejected``, ``files_read``) and
    emits them on the three outputs.
    """

    def __init__(self, schema: pa.Schema):
        self._schema = schema
        self._rows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_read")
        self._accepted = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_accepted")
        self._rejected = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_rejected")
        self._files = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "files_read")

    def _emit(self, batch, rejected: list[RejectedRow], rows: int):
        self._rows.inc(rows)
        if rejected:
            self._rejected.inc(len(rejected))
            for r in rejected:
                yield beam.pvalue.TaggedOutput(REJECTED, r.to_dict())
        if batch is not None and batch.num_rows:
            self._accepted.inc(batch.num_rows)
            yield batch

    def process(self, task: ReadTask):
        if task.piece == 0:
            self._files.inc()
        total = 0
        for batch, rejected, rows in self.read(task):
            total += rows
            yield from self._emit(batch, rejected, rows)
        if total == 0 and task.whole:
            _LOG.warning("%s: no rows", task.path)
        yield beam.pvalue.TaggedOutput(ROWS_READ, total)

    def read(self, task: ReadTask):
        raise NotImplementedError


class ReadCsvFn(ReadFileFn):
    """Reads a CSV file whole (decompressing it if need be) or one byte range of it."""

    def __init__(self, schema: pa.Schema, options: csv_io.CsvOptions):
        super().__init__(schema)
        self._options = options

    def setup(self):
        self._decoder = csv_io.CsvDecoder(self._schema, self._options)

    def read(self, task):
        if task.whole:
            yield from self._decoder.iter_file(lambda: open_text(task.path), task.path)
        else:
            yield from self._decoder.iter_range(
                read_range(task.path, task.start, task.end),
                task.path,
                list(task.columns),
                task.first_row,
            )


def _check_examples(path: str, chunk: tfrecord_io.RecordChunk, spans, n: int) -> None:
    """Raises :class:`InputError` if none of a file's first ``n`` records is a tf.Example
    (a TFRecord of another kind of message, or of bytes that are no protobuf)."""
    scan = example_parsing.FeatureScan(path)
    scan.add(chunk.buffer, *spans)
    if not scan.examples:
        raise InputError(
            f"{path}: none of its first {n:,} records is a tf.Example "
            f"({scan.why_not_examples()}); is it a TFRecord of another kind of message?"
        )


class ReadTFRecordFn(ReadFileFn):
    """Frames records and decodes them in batches.

    A gzip file is decompressed by ISA-L on a thread of its own (the GIL
    released), so decompressing overlaps framing, decoding and the work
    downstream; :func:`~conveyor.beam_utils.tfrecord_io.iter_record_chunks`
    frames the stream. Batches are decoded in C
    (:class:`~conveyor.beam_utils.example_parsing.ExampleDecoder`) on a thread
    of their own, ``DECODE_AHEAD`` batches ahead of the one being emitted
    (bounded memory). A batch the C decoder refuses is decoded by tfx-bsl's
    decoder, which finds the bad records; both give the same batches.

    Both CRCs of every record are checked (in C, as the records are framed),
    in plain and gzip files alike.
    """

    #: Batches being decoded ahead of the one being emitted (bounds memory).
    DECODE_AHEAD = 2
    #: Uncompressed bytes framed at a time.
    CHUNK_BYTES = 8 << 20

    def __init__(self, schema: pa.Schema, batch_size: int):
        super().__init__(schema)
        self._batch_size = batch_size

    def setup(self):
        from concurrent.futures import ThreadPoolExecutor

        self._example_decoder = example_parsing.ExampleDecoder(self._schema)
        self._types = arrow.feature_types(self._schema)
        self._decoder = None  # tfx-bsl's, made when a batch first needs it
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-decode")

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _new_decoder(self):
        from tfx_bsl.coders import example_coder

        return example_coder.ExamplesToRecordBatchDecoder(
            arrow.to_metadata_schema(self._schema).SerializeToString()
        )

    def read(self, task):
        from collections import deque

        path = task.path
        pending: deque = deque()  # (future, chunk, first and end index in the chunk)
        for chunk, begin, end in self._batches(path):
            pending.append(
                (self._pool.submit(self._decode, path, chunk, begin, end), chunk, begin, end)
            )
            if len(pending) > self.DECODE_AHEAD:
                yield self._finish(path, *pending.popleft())
        while pending:
            yield self._finish(path, *pending.popleft())

    def _batches(self, path: str):
        """Yields (framed chunk, index of a batch's first record in it, index after its last)."""
        size = self._batch_size
        with open_binary(path) as f:
            gzip = tfrecord_io.is_gzip(f)
            with tfrecord_io.open_stream(f, path, gzip) as stream:
                chunks = tfrecord_io.iter_record_chunks(
                    stream, path, self.CHUNK_BYTES, multiple=size
                )
                for chunk in chunks:
                    for begin in range(0, len(chunk), size):
                        yield chunk, begin, min(begin + size, len(chunk))

    def _decode(
        self, path: str, chunk: tfrecord_io.RecordChunk, begin: int, end: int
    ) -> pa.RecordBatch:
        """On the decoding thread: one batch, read in place from the chunk."""
        spans = chunk.spans(begin, end)
        if chunk.first + begin == 0:  # a file's first batch: are its records tf.Examples at all?
            _check_examples(path, chunk, spans, end - begin)
        return self._example_decoder.decode_framed(chunk.buffer, *spans)

    def _finish(self, path: str, future, chunk: tfrecord_io.RecordChunk, begin: int, end: int):
        first = chunk.first + begin + 1  # record number (from 1) of the batch's first record
        try:
            batch = future.result()
        except example_parsing.NotDecoded as e:  # tfx-bsl decides record by record
            _LOG.debug("%s: records %d+: %s; decoding with tfx-bsl", path, first, e)
            return self._decode_with_tfx_bsl(chunk.records(begin, end), first, path)
        return batch, [], batch.num_rows

    def _decode_with_tfx_bsl(self, records: list[bytes], first: int, path: str):
        if self._decoder is None:
            self._decoder = self._new_decoder()
        try:
            batch = self._decoder.DecodeBatch(records)
            return arrow.conform(batch, self._schema), [], len(records)
        except Exception:
            # Some record is bad: decode one by one to find which. A decoder that
            # failed part-way keeps partial state, so a fresh one follows each failure.
            self._decoder = self._new_decoder()
        good, rejected = [], []
        for i, rec in enumerate(records):
            try:
                self._decoder.DecodeBatch([rec])
                good.append(rec)
            except Exception as e:
                self._decoder = self._new_decoder()
                reason = example_parsing.rejection_reason(rec, self._types, str(e))
                rejected.append(RejectedRow(source=path, row=first + i, reason=reason))
        batch = self._decoder.DecodeBatch(good) if good else arrow.empty_batch(self._schema)
        return arrow.conform(batch, self._schema), rejected, len(records)


class ReadParquetFn(ReadFileFn):
    """Reads a Parquet file whole or some of its row groups."""

    def __init__(self, schema: pa.Schema, batch_size: int):
        super().__init__(schema)
        self._batch_size = batch_size

    def read(self, task):
        from conveyor.beam_utils.parquet_io import read_parquet_batches

        with open_binary(task.path) as f:
            for batch in read_parquet_batches(
                f, task.path, self._schema, self._batch_size, row_groups=task.row_groups
            ):
                yield batch, [], batch.num_rows
