"""Reading and writing examples as composable Beam PTransforms.

:class:`ReadExamples` turns CSV, TFRecord (plain or gzip) or Parquet files into a
PCollection of canonical ``pyarrow.RecordBatch`` (see
:mod:`conveyor.beam_utils.arrow`) plus a PCollection of rejected rows;
:class:`WriteExamples` writes batches as sharded gzip TFRecords of
``tf.Example`` in TFX's layout.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.io import ReadExamples, WriteExamples

    with beam.Pipeline() as p:
        read = p | ReadExamples("flights-*.csv", format="csv")
        read.examples | WriteExamples("out/examples", split="train")
        read.rejected | beam.Map(print)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pathlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import filebasedsink
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from conveyor.beam_utils import arrow, csv_io, example_parsing, files, tfrecord_io
from conveyor.beam_utils.csv_io import DEFAULT_MISSING_VALUES, RejectedRow
from conveyor.beam_utils.errors import InputError

#: Rows per RecordBatch unless told otherwise: large enough that per-batch
#: overhead vanishes beside vectorized work, small enough to keep memory flat.
DEFAULT_BATCH_SIZE = 8192
#: Rows or records read from the start of the input to infer a schema.
DEFAULT_SAMPLE_SIZE = 10_000
METRICS_NAMESPACE = "conveyor"

_LOG = logging.getLogger(__name__)


class ReadResult(NamedTuple):
    """The outputs of :class:`ReadExamples`.

    Attributes:
      examples: PCollection of canonical ``pyarrow.RecordBatch``, all of one schema.
      rejected: PCollection of dicts ``{source, row, reason, text}``, one per row
        that did not become an example (CSV rows count the header as row 1;
        TFRecord records count from 1).
      rows_read: PCollection of ints, rows read per file; their sum equals the
        examples' rows plus the rejected rows.
    """

    examples: beam.PCollection
    rejected: beam.PCollection
    rows_read: beam.PCollection


def _as_arrow_schema(schema) -> pa.Schema | None:
    if schema is None or isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, Mapping):
        return arrow.make_schema(schema)
    return arrow.from_metadata_schema(schema)  # a tensorflow-metadata Schema


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


@contextlib.contextmanager
def _open_text(path: str):
    """A CSV file as a native Arrow stream, decompressed if its name says so (.gz, .bz2, ...).

    pyarrow's streaming CSV reader reads on its own thread; given a Python file
    object it would need the GIL there, so it gets a native stream instead. A
    file on a remote filesystem is copied to a local temporary file first.
    """
    if files.is_local(path):
        with pa.input_stream(path, compression="detect") as stream:
            yield stream
        return
    suffix = "".join(pathlib.PurePosixPath(path).suffixes[-2:])
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            shutil.copyfileobj(src, tmp, 1 << 22)
        tmp.flush()
        with pa.input_stream(tmp.name, compression="detect") as stream:
            yield stream


def _read_range(path: str, start: int, end: int) -> pa.Buffer:
    """Bytes ``[start, end)`` of a file (a CSV range: at most a piece's size)."""
    with _open(path) as f:
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise InputError(f"{path}: ended at byte {start + len(data)} while reading to {end}; did it change?")
    return pa.py_buffer(data)


class ReadExamples(beam.PTransform):
    """Reads CSV, TFRecord or Parquet files into canonical RecordBatches.

    The Arrow schema is the one given (a ``pyarrow.Schema``, a tensorflow-metadata
    ``Schema`` or ``{column: 'INT'|'FLOAT'|'BYTES'}``) or is inferred once, when
    the pipeline is built, from the first ``sample_size`` rows of the first file
    (CSV: of the files in order).
    Every batch has that schema. A row whose value does not parse as its column's
    type, or whose field count is wrong, goes to ``rejected`` with the reason; a
    missing input or a corrupt TFRecord stops the run with an error naming the file.
    TFRecord inference also reads the feature names and list kinds of every
    record after the sample, in every file (in C, without decoding values; see
    :func:`~conveyor.beam_utils.example_parsing.settle_feature_types`), so a
    feature first seen later keeps its values; Parquet types come from every
    file's footer (:func:`~conveyor.beam_utils.parquet_io.infer_feature_types`).
    CSV inference reads on past the sample only for a column the sample leaves
    without a value, and only up to the row where the last such column gets one
    (:func:`~conveyor.beam_utils.csv_io.infer_types`); a CSV file that is not
    UTF-8 text (a UTF-16/UTF-32 file with a byte order mark is decoded) stops
    the run with an error naming the file and row.

    Args:
      file_pattern: a file or glob, on any Beam filesystem.
      format: ``csv``, ``tfrecord`` or ``parquet``; taken from the file names when None.
      schema: the schema to read with (see above), or None to infer it.
      batch_size: rows per batch (CSV batches are sized from the bytes per row
        in the sample, so they come close to it).
      missing_values: CSV field texts read as missing.
      delimiter: CSV field delimiter.
      sample_size: rows or records used to infer the schema (TFRecord: the
        records whose list kinds decide the types; the features of all the
        records after them are scanned too, see above).
      split_bytes: an uncompressed CSV file larger than this is read as byte
        ranges of about this size, and a Parquet file as groups of row groups,
        each by whichever worker gets it (rows and row numbers as one read of
        the file gives). None: a sixteenth of each file, between 1 MiB and
        64 MiB. Compressed files and TFRecord files are read whole: files are
        then the unit of parallelism.
      reshuffle: spread the batches over workers after reading (for a single
        large compressed file). Off by default: on the local multi-process
        runner it holds every batch in the runner's memory.

    Returns:
      a :class:`ReadResult` ``(examples, rejected, rows_read)``.
    """

    def __init__(
        self,
        file_pattern: str,
        format: str | None = None,
        schema=None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        missing_values: Sequence[str] = DEFAULT_MISSING_VALUES,
        delimiter: str = ",",
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        split_bytes: int | None = None,
        reshuffle: bool = False,
    ):
        super().__init__()
        self.file_pattern = file_pattern
        self._files: list[str] | None = None
        self.files  # match now: a missing input fails here, naming the pattern
        self.format = format or self._detect_format()
        if self.format not in files.FORMATS:
            raise ValueError(f"format must be one of {files.FORMATS}, not {format!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.batch_size = batch_size
        self.sample_size = sample_size
        if split_bytes is not None and split_bytes < 1:
            raise ValueError(f"split_bytes must be positive, not {split_bytes}")
        self.split_bytes = split_bytes
        self.reshuffle = reshuffle
        self._csv_options = csv_io.CsvOptions(delimiter=delimiter, missing_values=tuple(missing_values))
        self._schema = _as_arrow_schema(schema)

    @property
    def csv_options(self) -> csv_io.CsvOptions:
        """The CSV delimiter and missing-value markers this reader uses."""
        return self._csv_options

    def with_schema(self, schema, **overrides) -> ReadExamples:
        """A reader of the same files and settings with another schema (say, fewer columns).

        ``schema=None`` infers the schema afresh; ``overrides`` change other settings.
        """
        settings = {
            "format": self.format,
            "batch_size": self.batch_size,
            "missing_values": self._csv_options.missing_values,
            "delimiter": self._csv_options.delimiter,
            "sample_size": self.sample_size,
            "split_bytes": self.split_bytes,
            "reshuffle": self.reshuffle,
        }
        settings.update(overrides)
        return ReadExamples(self.file_pattern, schema=schema, **settings)

    def _detect_format(self) -> str:
        try:
            return files.detect_format(self.file_pattern)
        except ValueError:
            return files.detect_format(self.files[0])  # e.g. a pattern ending in '*'

    @property
    def files(self) -> list[str]:
        """The input files (matched once; raises :class:`InputError` if none)."""
        if self._files is None:
            self._files = files.match_files(self.file_pattern)
        return self._files

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema every batch has (inferred on first use when not given)."""
        if self._schema is None:
            self._schema = self._infer_schema()
        return self._schema

    def _infer_schema(self) -> pa.Schema:
        first = self.files[0]
        if self.format == "csv":
            # The sample, and for a column it leaves without a value the rows after it.
            sources = [(path, functools.partial(_open_text, path)) for path in self.files]
            options = self._sample_csv_options(first)
            return arrow.make_schema(csv_io.infer_types(sources, options, self.sample_size))
        if self.format == "parquet":
            from conveyor.beam_utils import parquet_io

            return arrow.make_schema(parquet_io.infer_feature_types(self.files, _open))
        return arrow.make_schema(example_parsing.settle_feature_types(
            _scan_tfrecord_files(self.files, self.sample_size), self.file_pattern))

    def _sample_csv_options(self, path: str) -> csv_io.CsvOptions:
        # One block of about sample_size rows: estimate bytes per row from the head
        # (as UTF-8; an empty file is found and named by the reader).
        head = csv_io.read_head(functools.partial(_open_text, path), path)
        lines = max(head.count(b"\n"), 1)
        per_row = max(len(head) // lines, 1)
        return csv_io.CsvOptions(
            delimiter=self._csv_options.delimiter,
            missing_values=self._csv_options.missing_values,
            block_size=int(min(max(per_row * self.sample_size, 1 << 16), 64 << 20)),
        )

    def _csv_block_size(self) -> int:
        return self._sample_csv_options(self.files[0]).block_size * self.batch_size // max(
            self.sample_size, 1
        )

    def expand(self, pbegin):
        schema = self.arrow_schema
        if self.format == "csv":
            opts = self._csv_options
            opts = csv_io.CsvOptions(
                delimiter=opts.delimiter,
                missing_values=opts.missing_values,
                block_size=max(self._csv_block_size(), 1 << 14),
            )
            read_fn = _ReadCsvFn(schema, opts)
        elif self.format == "tfrecord":
            read_fn = _ReadTFRecordFn(schema, self.batch_size)
        else:
            read_fn = _ReadParquetFn(schema, self.batch_size)
        # Several workers: spread the files, then the pieces planned from them.
        # One worker (the in-memory runner): nothing to spread, and the
        # reshuffles' extra stages would only cost start-up time.
        one_worker = _runs_on_one_worker(pbegin.pipeline)
        files = pbegin | "Files" >> beam.Create(self.files)
        if not one_worker:
            files = files | "SpreadFiles" >> beam.Reshuffle()
        tasks = files | "Plan" >> beam.ParDo(
            _PlanReadsFn(self.format, self._csv_options.delimiter, self._piece_bytes(pbegin.pipeline)))
        if not one_worker:
            tasks = tasks | "SpreadReads" >> beam.Reshuffle()
        outputs = tasks | "Read" >> beam.ParDo(read_fn).with_outputs(_REJECTED, _ROWS_READ, main=_EXAMPLES)
        examples = outputs[_EXAMPLES]
        if self.reshuffle:
            examples = examples | "SpreadBatches" >> beam.Reshuffle()
        return ReadResult(examples, outputs[_REJECTED], outputs[_ROWS_READ])

    def _piece_bytes(self, pipeline) -> int | None:
        # One worker gains nothing from pieces: read files whole unless told otherwise.
        if self.split_bytes is None and _runs_on_one_worker(pipeline):
            return WHOLE_FILES
        return self.split_bytes


_EXAMPLES, _REJECTED, _ROWS_READ = "examples", "rejected", "rows_read"
#: A piece size that keeps every file whole.
WHOLE_FILES = 1 << 62


def _runs_on_one_worker(pipeline) -> bool:
    """True for the in-memory DirectRunner (or one direct worker): a single process does everything."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    opts = pipeline.options
    runner = opts.view_as(StandardOptions).runner or "DirectRunner"
    runner = runner if isinstance(runner, str) else type(runner).__name__
    if runner not in ("DirectRunner", "BundleBasedDirectRunner", "FnApiRunner"):
        return False
    direct = opts.view_as(DirectOptions)
    workers = direct.direct_num_workers
    if workers == 0:  # Beam's "one worker per CPU"
        import multiprocessing

        workers = multiprocessing.cpu_count()
    return direct.direct_running_mode == "in_memory" or (workers or 1) == 1


#: Bounds of the automatic piece size (see ``ReadExamples(split_bytes=...)``).
MIN_SPLIT_BYTES, MAX_SPLIT_BYTES = 1 << 20, 64 << 20
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".lz4", ".br", ".deflate")


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


def split_size(file_size: int, split_bytes: int | None) -> int:
    """The piece size for a file: ``split_bytes``, or a sixteenth of the file
    between :data:`MIN_SPLIT_BYTES` and :data:`MAX_SPLIT_BYTES`."""
    if split_bytes is not None:
        return split_bytes
    return max(MIN_SPLIT_BYTES, min(MAX_SPLIT_BYTES, file_size // 16))


class _PlanReadsFn(beam.DoFn):
    """A file -> the :class:`ReadTask` pieces it is read in (runs where the file is)."""

    def __init__(self, format: str, delimiter: str, split_bytes: int | None):
        self._format = format
        self._delimiter = delimiter
        self._split_bytes = split_bytes
        self._pieces = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "read_pieces")

    def process(self, path: str):
        if self._format == "csv" and not path.lower().endswith(_COMPRESSED_SUFFIXES):
            tasks = self._csv_ranges(path)
        elif self._format == "parquet":
            tasks = self._parquet_row_groups(path)
        else:
            tasks = [ReadTask(path)]
        self._pieces.inc(len(tasks))
        yield from tasks

    def _size(self, path: str) -> int:
        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes

    def _csv_ranges(self, path: str) -> list[ReadTask]:
        from conveyor.beam_utils.csv_ranges import plan_csv_ranges

        size = self._size(path)
        piece = split_size(size, self._split_bytes)
        if size <= piece:
            return [ReadTask(path)]
        # The range reader checks the header against the schema.
        header = csv_io.parse_header(lambda: _open(path), path, self._delimiter)
        if header is None or header.encoding != "UTF-8":
            return [ReadTask(path)]  # empty; or UTF-16/32, decoded as one stream
        names = header.names
        with _open(path) as f:
            ranges = plan_csv_ranges(f, piece, delimiter=self._delimiter)
        if ranges is None:
            _LOG.info("%s: quoting is not RFC 4180 throughout; read whole, by one worker", path)
            return [ReadTask(path)]
        if len(ranges) <= 1:
            return [ReadTask(path)]
        return [ReadTask(path, r.start, r.end, r.first_row, tuple(names), piece=i)
                for i, r in enumerate(ranges)]

    def _parquet_row_groups(self, path: str) -> list[ReadTask]:
        import pyarrow.parquet as pq

        size = self._size(path)
        piece = split_size(size, self._split_bytes)
        if size <= piece:
            return [ReadTask(path)]
        try:
            with _open(path) as f:
                meta = pq.ParquetFile(f).metadata
        except (pa.ArrowException, OSError):
            return [ReadTask(path)]  # the reader reports what is wrong with it
        if meta.num_row_groups <= 1:
            return [ReadTask(path)]
        tasks, group, group_bytes = [], [], 0
        for i in range(meta.num_row_groups):
            group.append(i)
            group_bytes += meta.row_group(i).total_byte_size
            if group_bytes >= piece:
                tasks.append(ReadTask(path, row_groups=tuple(group), piece=len(tasks)))
                group, group_bytes = [], 0
        if group:
            tasks.append(ReadTask(path, row_groups=tuple(group), piece=len(tasks)))
        return tasks if len(tasks) > 1 else [ReadTask(path)]


def _scan_tfrecord_files(paths: Sequence[str], sample_size: int) -> list[example_parsing.FeatureScan]:
    """The feature names and kinds of every record of every file, the first
    ``sample_size`` records of the input counted apart (in C, the GIL released:
    the files after the sample's are scanned by a few threads at once)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def scan(path, sample=0):
        with _open(path) as f:
            return example_parsing.scan_file(f, path, sample)

    scans = []
    while len(scans) < len(paths) and sample_size > 0:  # the sample's files, in order
        scans.append(scan(paths[len(scans)], sample_size))
        sample_size -= scans[-1].records
    rest = paths[len(scans):]
    with ThreadPoolExecutor(max_workers=max(1, min(len(rest), os.cpu_count() or 1, 4))) as pool:
        return scans + list(pool.map(scan, rest))


class _ReadFileFn(beam.DoFn):
    """Reads one file per element; emits batches, rejected rows and the rows read."""

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
                yield beam.pvalue.TaggedOutput(_REJECTED, r.to_dict())
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
        yield beam.pvalue.TaggedOutput(_ROWS_READ, total)

    def read(self, task: ReadTask):
        raise NotImplementedError


class _ReadCsvFn(_ReadFileFn):
    def __init__(self, schema: pa.Schema, options: csv_io.CsvOptions):
        super().__init__(schema)
        self._options = options

    def setup(self):
        self._decoder = csv_io.CsvDecoder(self._schema, self._options)

    def read(self, task):
        if task.whole:
            yield from self._decoder.iter_file(lambda: _open_text(task.path), task.path)
        else:
            yield from self._decoder.iter_range(
                _read_range(task.path, task.start, task.end), task.path, list(task.columns), task.first_row
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


class _ReadTFRecordFn(_ReadFileFn):
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
            pending.append((self._pool.submit(self._decode, path, chunk, begin, end), chunk, begin, end))
            if len(pending) > self.DECODE_AHEAD:
                yield self._finish(path, *pending.popleft())
        while pending:
            yield self._finish(path, *pending.popleft())

    def _batches(self, path: str):
        """Yields (framed chunk, index of a batch's first record in it, index after its last)."""
        size = self._batch_size
        with _open(path) as f:
            gzip = tfrecord_io.is_gzip(f)
            with tfrecord_io.open_stream(f, path, gzip) as stream:
                chunks = tfrecord_io.iter_record_chunks(
                    stream, path, self.CHUNK_BYTES, multiple=size
                )
                for chunk in chunks:
                    for begin in range(0, len(chunk), size):
                        yield chunk, begin, min(begin + size, len(chunk))

    def _decode(self, path: str, chunk: tfrecord_io.RecordChunk, begin: int, end: int) -> pa.RecordBatch:
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


class _ReadParquetFn(_ReadFileFn):
    def __init__(self, schema: pa.Schema, batch_size: int):
        super().__init__(schema)
        self._batch_size = batch_size

    def read(self, task):
        from conveyor.beam_utils.parquet_io import read_parquet_batches

        with _open(task.path) as f:
            for batch in read_parquet_batches(f, task.path, self._schema, self._batch_size,
                                              row_groups=task.row_groups):
                yield batch, [], batch.num_rows


class _RecordListSink(filebasedsink.FileBasedSink):
    """A TFRecord sink whose elements are lists of records: one write per list."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str, num_shards: int):
        super().__init__(
            file_path_prefix=file_path_prefix,
            coder=None,
            file_name_suffix=file_name_suffix,
            num_shards=num_shards,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.AUTO,  # gzip when the suffix is .gz
        )

    def write_record(self, file_handle, value):
        file_handle.write(tfrecord_io.frame(value))


class WriteRecordLists(beam.PTransform):
    """Writes a PCollection of lists of serialized records as sharded TFRecord files.

    A list per element (say, one encoded RecordBatch) keeps Beam's per-element
    cost off each record. Files are ``<prefix>-SSSSS-of-NNNNN<suffix>``, gzip when
    the suffix ends in ``.gz``.
    """

    def __init__(self, file_path_prefix: str, file_name_suffix: str = ".gz", num_shards: int = 0):
        super().__init__()
        self.file_path_prefix = file_path_prefix
        self.file_name_suffix = file_name_suffix
        self.num_shards = num_shards

    def expand(self, record_lists):
        return record_lists | beam.io.Write(
            _RecordListSink(self.file_path_prefix, self.file_name_suffix, self.num_shards)
        )


class _EncodeExamplesFn(beam.DoFn):
    """RecordBatch -> a list of serialized tf.Examples (tfx-bsl's C++ encoder)."""

    def setup(self):
        from tfx_bsl.coders import example_coder

        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, batch: pa.RecordBatch):
        if batch.num_rows:
            yield self._encoder.encode(batch)


class WriteExamples(beam.PTransform):
    """Writes RecordBatches as sharded gzip TFRecords of ``tf.Example``.

    Files are ``<output_dir>/Split-<split>/data_tfrecord-SSSSS-of-NNNNN.gz`` (TFX's
    Examples layout), or ``<output_dir>/data_tfrecord-...`` when ``split`` is None.

    Args:
      output_dir: directory on any Beam filesystem.
      split: the split name, or None.
      num_shards: files to write; 0 lets the runner choose.
      file_prefix: the file name before the shard numbers.
    """

    def __init__(self, output_dir: str, split: str | None = None, num_shards: int = 0,
                 file_prefix: str = "data_tfrecord"):
        super().__init__()
        self.output_dir = output_dir
        self.split = split
        self.num_shards = num_shards
        self.file_prefix = file_prefix

    def expand(self, batches):
        folder = self.output_dir
        if self.split is not None:
            folder = FileSystems.join(folder, files.SPLIT_PREFIX + self.split)
        return (
            batches
            | "Encode" >> beam.ParDo(_EncodeExamplesFn())
            | "Write" >> WriteRecordLists(
                FileSystems.join(folder, self.file_prefix), ".gz", self.num_shards
            )
        )


class SplitExamples(beam.PTransform):
    """Splits RecordBatches into named splits by a deterministic hash of each row.

    Args:
      ratios: ``{split name: weight}``, e.g. ``{"train": 2, "eval": 1}``.
      hash_columns: columns whose values decide a row's split (rows that agree
        on them land together); None hashes the whole row.

    Returns:
      ``{split name: PCollection of RecordBatch}``.
    """

    def __init__(self, ratios: Mapping[str, int], hash_columns: Sequence[str] | None = None):
        super().__init__()
        if not ratios or any(int(w) <= 0 for w in ratios.values()):
            raise ValueError(f"split weights must be positive integers: {dict(ratios)}")
        self.ratios = {str(k): int(v) for k, v in ratios.items()}
        self.hash_columns = list(hash_columns) if hash_columns else None

    def expand(self, batches):
        names = list(self.ratios)
        outputs = batches | "Split" >> beam.ParDo(
            _SplitFn(self.ratios, self.hash_columns)
        ).with_outputs(*names)
        return {name: outputs[name] for name in names}


class _SplitFn(beam.DoFn):
    def __init__(self, ratios: Mapping[str, int], hash_columns):
        self._ratios = dict(ratios)
        self._hash_columns = hash_columns

    def process(self, batch: pa.RecordBatch):
        import numpy as np

        from conveyor.beam_utils.hashing import row_hashes

        weights = np.array(list(self._ratios.values()), dtype=np.uint64)
        bounds = np.cumsum(weights)
        # 1000 buckets per unit of weight keeps the split fine-grained.
        buckets = row_hashes(batch, self._hash_columns) % (bounds[-1] * np.uint64(1000))
        which = np.searchsorted(bounds * np.uint64(1000), buckets, side="right")
        for i, name in enumerate(self._ratios):
            mask = which == i
            if mask.any():
                yield beam.pvalue.TaggedOutput(name, arrow.take_rows(batch, mask))


def parse_splits(text: str) -> dict[str, int]:
    """``"train:2,eval:1"`` -> ``{"train": 2, "eval": 1}``."""
    out = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if not name or not weight.strip().isdigit() or int(weight) <= 0:
            raise ValueError(f"bad split {part!r} in {text!r}: expected NAME:WEIGHT, e.g. train:2,eval:1")
        if name in out:
            raise ValueError(f"split {name!r} named twice in {text!r}")
        out[name] = int(weight)
    return out


def read_examples_dir(examples_dir: str, split: str, **kwargs) -> ReadExamples:
    """A :class:`ReadExamples` for one split of an Examples directory.

    The feature types come from the directory's ``summary.json`` when it has one,
    so the batches have the types ExampleGen read (even for a column with no
    values); otherwise they are inferred from the records.
    """
    splits = files.examples_splits(examples_dir)
    if split not in splits:
        raise InputError(f"{examples_dir}: no split {split!r} (splits: {sorted(splits)})")
    summary = files.read_summary(examples_dir)
    if summary and "features" in summary and "schema" not in kwargs:
        kwargs["schema"] = summary["features"]
    return ReadExamples(splits[split], format="tfrecord", **kwargs)
