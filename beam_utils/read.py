"""Reading examples: :class:`ReadExamples`, a composable Beam PTransform.

:class:`ReadExamples` turns CSV, TFRecord (plain or gzip) or Parquet files into a
PCollection of canonical ``pyarrow.RecordBatch`` (see
:mod:`conveyor.beam_utils.arrow`) plus a PCollection of rejected rows and one of
the rows read per file; :func:`read_examples_dir` makes one for a split of an
Examples directory. The files are cut into pieces by
:mod:`~conveyor.beam_utils.read_plan` and each piece is read by a DoFn of
:mod:`~conveyor.beam_utils.file_readers`.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.read import ReadExamples

    with beam.Pipeline() as p:
        read = p | ReadExamples("flights-*.csv", format="csv")
        read.examples | beam.Map(lambda batch: print(batch.num_rows))
        read.rejected | beam.Map(print)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils import arrow, csv_io, example_parsing, files
from conveyor.beam_utils.csv_io import DEFAULT_MISSING_VALUES
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.file_readers import (
    EXAMPLES,
    REJECTED,
    ROWS_READ,
    ReadCsvFn,
    ReadParquetFn,
    ReadTFRecordFn,
    open_binary,
    open_text,
)
from conveyor.beam_utils.read_plan import WHOLE_FILES, PlanReadsFn, runs_on_one_worker

#: Rows per RecordBatch unless told otherwise: large enough that per-batch
#: overhead vanishes beside vectorized work, small enough to keep memory flat.
DEFAULT_BATCH_SIZE = 8192
#: Rows or records read from the start of the input to infer a schema.
DEFAULT_SAMPLE_SIZE = 10_000


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
      file_pattern: a file or glob, on any Beam filesystem; or a list of them
        (say, one split of several Examples artifacts), read as one input: their
        files in the order given, each pattern's sorted, each file once. Every
        pattern must match a file.
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
      a :class:`ReadResult` ``(examples, rejected, rows_read)``, typed
      ``pyarrow.RecordBatch``, ``dict`` and ``int`` (Beam type hints).
    """

    def __init__(
        self,
        file_pattern: str | Sequence[str],
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
        if isinstance(file_pattern, str):
            patterns = [file_pattern]
        else:
            patterns = list(file_pattern)
            if not patterns or not all(isinstance(p, str) and p for p in patterns):
                raise ValueError(
                    f"file_pattern must be a pattern or a list of them, not {file_pattern!r}"
                )
        #: The pattern (or list of patterns) as given.
        self.file_pattern = file_pattern
        #: The patterns, always a list.
        self.file_patterns: list[str] = patterns
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
        self._csv_options = csv_io.CsvOptions(
            delimiter=delimiter, missing_values=tuple(missing_values)
        )
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
            return files.detect_format(self.file_patterns[0])
        except ValueError:
            return files.detect_format(self.files[0])  # e.g. a pattern ending in '*'

    @property
    def files(self) -> list[str]:
        """The input files (matched once; raises :class:`InputError` if none)."""
        if self._files is None:
            # dict: each file once, in the order the patterns give them
            matched = {path: None for p in self.file_patterns for path in files.match_files(p)}
            self._files = list(matched)
        return self._files

    @property
    def source(self) -> str:
        """The input, for messages: the pattern, or the patterns joined by `` + ``."""
        return " + ".join(self.file_patterns)

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
            sources = [(path, functools.partial(open_text, path)) for path in self.files]
            options = self._sample_csv_options(first)
            return arrow.make_schema(csv_io.infer_types(sources, options, self.sample_size))
        if self.format == "parquet":
            from conveyor.beam_utils import parquet_io

            return arrow.make_schema(parquet_io.infer_feature_types(self.files, open_binary))
        return arrow.make_schema(
            example_parsing.settle_feature_types(
                _scan_tfrecord_files(self.files, self.sample_size), self.source
            )
        )

    def _sample_csv_options(self, path: str) -> csv_io.CsvOptions:
        # One block of about sample_size rows: estimate bytes per row from the head
        # (as UTF-8; an empty file is found and named by the reader).
        head = csv_io.read_head(functools.partial(open_text, path), path)
        lines = max(head.count(b"\n"), 1)
        per_row = max(len(head) // lines, 1)
        return csv_io.CsvOptions(
            delimiter=self._csv_options.delimiter,
            missing_values=self._csv_options.missing_values,
            block_size=int(min(max(per_row * self.sample_size, 1 << 16), 64 << 20)),
        )

    def _csv_block_size(self) -> int:
        return (
            self._sample_csv_options(self.files[0]).block_size
            * self.batch_size
            // max(self.sample_size, 1)
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
            read_fn = ReadCsvFn(schema, opts)
        elif self.format == "tfrecord":
            read_fn = ReadTFRecordFn(schema, self.batch_size)
        else:
            read_fn = ReadParquetFn(schema, self.batch_size)
        # Several workers: spread the files, then the pieces planned from them.
        # One worker (the in-memory runner): nothing to spread, and the
        # reshuffles' extra stages would only cost start-up time.
        one_worker = runs_on_one_worker(pbegin.pipeline)
        files = pbegin | "Files" >> beam.Create(self.files)
        if not one_worker:
            files = files | "SpreadFiles" >> beam.Reshuffle()
        tasks = files | "Plan" >> beam.ParDo(
            PlanReadsFn(self.format, self._csv_options.delimiter, self.piece_bytes(pbegin.pipeline))
        )
        if not one_worker:
            tasks = tasks | "SpreadReads" >> beam.Reshuffle()
        outputs = tasks | "Read" >> beam.ParDo(read_fn).with_outputs(
            REJECTED, ROWS_READ, main=EXAMPLES
        )
        examples, rejected, rows_read = outputs[EXAMPLES], outputs[REJECTED], outputs[ROWS_READ]
        # The outputs' type hints. Beam types a multi-output ParDo's outputs Any and
        # has no hint per output (nor for a tuple of outputs), so they are set here.
        examples.element_type = pa.RecordBatch
        rejected.element_type = dict
        rows_read.element_type = int
        if self.reshuffle:
            examples = examples | "SpreadBatches" >> beam.Reshuffle()
        return ReadResult(examples, rejected, rows_read)

    def piece_bytes(self, pipeline) -> int | None:
        """The piece size the files are planned in on ``pipeline``'s runner
        (:data:`~conveyor.beam_utils.read_plan.WHOLE_FILES` on one worker, unless
        ``split_bytes`` was given: one worker gains nothing from pieces)."""
        if self.split_bytes is None and runs_on_one_worker(pipeline):
            return WHOLE_FILES
        return self.split_bytes


def _scan_tfrecord_files(
    paths: Sequence[str], sample_size: int
) -> list[example_parsing.FeatureScan]:
    """The feature names and kinds of every record of every file, the first
    ``sample_size`` records of the input counted apart (in C, the GIL released:
    the files after the sample's are scanned by a few threads at once)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def scan(path, sample=0):
        with open_binary(path) as f:
            return example_parsing.scan_file(f, path, sample)

    scans = []
    while len(scans) < len(paths) and sample_size > 0:  # the sample's files, in order
        scans.append(scan(paths[len(scans)], sample_size))
        sample_size -= scans[-1].records
    rest = paths[len(scans) :]
    with ThreadPoolExecutor(max_workers=max(1, min(len(rest), os.cpu_count() or 1, 4))) as pool:
        return scans + list(pool.map(scan, rest))


def read_examples_dir(examples_dir: str | Sequence[str], split: str, **kwargs) -> ReadExamples:
    """A :class:`ReadExamples` for one split of an Examples directory, or of several read as one.

    With several directories (several Examples artifacts: spans, say), the
    split's files of every directory that has the split are read, in the order
    given; at least one must have it.

    The feature types come from the directories' ``summary.json`` when each has
    one, so the batches have the types ExampleGen read (even for a column with
    no values; the union of their columns when they agree on the types of the
    columns they share); otherwise they are inferred from the records.
    """
    dirs = [examples_dir] if isinstance(examples_dir, str) else list(examples_dir)
    if not dirs:
        raise ValueError("read_examples_dir needs an Examples directory")
    patterns, having, seen = [], [], set()
    for d in dirs:
        splits = files.examples_splits(d)
        seen.update(splits)
        if split in splits:
            patterns.append(splits[split])
            having.append(d)
    if not patterns:
        where = dirs[0] if len(dirs) == 1 else f"none of {', '.join(dirs)}"
        raise InputError(f"{where}: no split {split!r} (splits: {sorted(seen)})")
    if "schema" not in kwargs:
        features = _summary_features(having)
        if features is not None:
            kwargs["schema"] = features
    return ReadExamples(
        patterns[0] if isinstance(examples_dir, str) else patterns, format="tfrecord", **kwargs
    )


def _summary_features(dirs: Sequence[str]) -> dict[str, str] | None:
    """The feature types the directories' ``summary.json`` files record, merged; None if one has
    none or two give a column different types (the types are then inferred from the records)."""
    merged: dict[str, str] = {}
    for d in dirs:
        summary = files.read_summary(d)
        if not summary or "features" not in summary:
            return None
        for name, kind in summary["features"].items():
            if merged.setdefault(name, kind) != kind:
                return None
    return merged


def with_one_schema(examples: Mapping[str, ReadExamples]) -> dict[str, ReadExamples]:
    """The readers of several splits, every one after the first reading with the first one's
    schema, so their batches can meet in one PCollection."""
    reads = dict(examples)
    first, *rest = reads
    schema = reads[first].arrow_schema
    for name in rest:
        reads[name] = reads[name].with_schema(schema)
    return reads
