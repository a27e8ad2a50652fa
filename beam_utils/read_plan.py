"""Read planning: which pieces the input files are read in, and by how many workers.

:class:`PlanReadsFn` turns a file into :class:`~conveyor.beam_utils.file_readers.ReadTask`
pieces where the file is (an uncompressed CSV file into byte ranges that start
at a record, a Parquet file into groups of row groups, anything else whole);
:func:`split_size` says how large a piece is, and :func:`runs_on_one_worker`
whether cutting files into pieces gains anything at all.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import csv_io
from conveyor.beam_utils.file_readers import METRICS_NAMESPACE, ReadTask, open_binary

#: A piece size that keeps every file whole.
WHOLE_FILES = 1 << 62
#: Bounds of the automatic piece size (see ``ReadExamples(split_bytes=...)``).
MIN_SPLIT_BYTES, MAX_SPLIT_BYTES = 1 << 20, 64 << 20
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".lz4", ".br", ".deflate")

_LOG = logging.getLogger(__name__)


def runs_on_one_worker(pipeline) -> bool:
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


def split_size(file_size: int, split_bytes: int | None) -> int:
    """The piece size for a file: ``split_bytes``, or a sixteenth of the file
    between :data:`MIN_SPLIT_BYTES` and :data:`MAX_SPLIT_BYTES`."""
    if split_bytes is not None:
        return split_bytes
    return max(MIN_SPLIT_BYTES, min(MAX_SPLIT_BYTES, file_size // 16))


class PlanReadsFn(beam.DoFn):
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
        header = csv_io.parse_header(lambda: open_binary(path), path, self._delimiter)
        if header is None or header.encoding != "UTF-8":
            return [ReadTask(path)]  # empty; or UTF-16/32, decoded as one stream
        names = header.names
        with open_binary(path) as f:
            ranges = plan_csv_ranges(f, piece, delimiter=self._delimiter)
        if ranges is None:
            _LOG.info("%s: quoting is not RFC 4180 throughout; read whole, by one worker", path)
            return [ReadTask(path)]
        if len(ranges) <= 1:
            return [ReadTask(path)]
        return [
            ReadTask(path, r.start, r.end, r.first_row, tuple(names), piece=i)
            for i, r in enumerate(ranges)
        ]

    def _parquet_row_groups(self, path: str) -> list[ReadTask]:
        import pyarrow.parquet as pq

        size = self._size(path)
        piece = split_size(size, self._split_bytes)
        if size <= piece:
            return [ReadTask(path)]
        try:
            with open_binary(path) as f:
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
