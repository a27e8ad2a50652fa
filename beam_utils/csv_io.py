"""CSV to canonical RecordBatches, vectorized with ``pyarrow.csv``.

A file is streamed block by block with pyarrow's CSV reader (quoted fields may
hold delimiters and newlines). Every field is first read as text; each column is
then converted to its feature type in one vectorized step per batch. A row whose
field count is wrong, or whose value does not parse as its column's type, is a
rejected row: it leaves the batch and is reported with its file, its CSV row
number (the header is row 1; a quoted newline does not start a new row) and the
reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError

#: Field texts read as "missing" unless told otherwise. "NaN" is not among them:
#: in a FLOAT column it is the value NaN.
DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "#N/A", "NULL", "null", "None")

#: A function that opens the file afresh: ``with open_stream() as f: f.read(n)``.
Opener = Callable[[], AbstractContextManager]

_INT_RE = r"^\s*[+-]?[0-9]+\s*$"
_FLOAT_RE = (
    r"^\s*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?"
    r"|[nN][aA][nN])\s*$"
)


@dataclass
class RejectedRow:
    """A row that did not become an example, with where it came from and why."""

    source: str
    row: int
    reason: str
    text: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "row": self.row, "reason": self.reason, "text": self.text}


@dataclass(frozen=True)
class CsvOptions:
    """How to read CSV text: the delimiter, the missing-value markers, block size."""

    delimiter: str = ","
    missing_values: Sequence[str] = DEFAULT_MISSING_VALUES
    block_size: int = 1 << 20


def read_header(open_stream: Opener, source: str, delimiter: str = ",") -> list[str]:
    """The column names from the first row of the file."""
    with open_stream() as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise InputError(f"{source}: empty CSV file (no header row)")
    text = head.decode("utf-8", errors="replace")
    names = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    names = [n.strip() for n in names]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{source}: header repeats column names {dup}")
    if any(not n for n in names):
        raise InputError(f"{source}: header has an empty column name: {names}")
    return names


def infer_feature_types(text_batch: pa.RecordBatch) -> dict[str, str]:
    """Feature types from a sample of text columns: INT, else FLOAT, else BYTES.

    A column whose every present value is an integer is INT; whose every present
    value is a number (including inf and nan) is FLOAT; anything else, and a
    column with no present value, is BYTES.
    """
    types = {}
    for name, col in zip(text_batch.schema.names, text_batch.columns):
        present = col.drop_null()
        if len(present) == 0:
            types[name] = arrow.BYTES
        elif pc.all(pc.match_substring_regex(present, _INT_RE)).as_py():
            types[name] = arrow.INT
        elif pc.all(pc.match_substring_regex(present, _FLOAT_RE)).as_py():
            types[name] = arrow.FLOAT
        else:
            types[name] = arrow.BYTES
    return types


def _text_reader(fileobj, names, options: CsvOptions, invalid_rows: list, header_in_stream: bool = True):
    def on_invalid(row):
        invalid_rows.append(row)
        return "skip"

    return pacsv.open_csv(
        fileobj,
        read_options=pacsv.ReadOptions(
            block_size=options.block_size,
            use_threads=False,
            column_names=None if header_in_stream else list(names),
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=list(options.missing_values),
            check_utf8=False,
        ),
    )


def sample_text(open_stream: Opener, source: str, options: CsvOptions) -> pa.RecordBatch:
    """The first block of a CSV file as text columns (for schema inference)."""
    names = read_header(open_stream, source, options.delimiter)
    with open_stream() as f:
        reader = _text_reader(f, names, options, [])
        try:
            return reader.read_next_batch()
        except StopIteration:
            return pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)


def _out_of_int64_range(col: pa.Array) -> np.ndarray:
    """True where an integer text has too many digits for int64 (checked exactly)."""
    long_ = pc.fill_null(pc.greater(pc.utf8_length(col), 18), False)
    out = np.zeros(len(col), dtype=bool)
    for i in np.flatnonzero(np.asarray(long_.to_numpy(zero_copy_only=False), dtype=bool)):
        try:
            out[i] = not (-(2**63) <= int(col[int(i)].as_py()) < 2**63)
        except ValueError:
            pass  # not an integer at all: the pattern check rejects it
    return out


class CsvDecoder:
    """Converts text batches of one CSV layout to canonical batches, rejecting bad rows.

    Args:
      schema: the canonical Arrow schema to produce (see :mod:`conveyor.beam_utils.arrow`).
        Its columns must all be in the file's header.
      options: the :class:`CsvOptions`.
    """

    def __init__(self, schema: pa.Schema, options: CsvOptions = CsvOptions()):
        self.schema = schema
        self.options = options
        self._types = arrow.feature_types(schema)

    def iter_file(
        self, open_stream: Opener, source: str
    ) -> Iterator[tuple[pa.RecordBatch, list[RejectedRow], int]]:
        """Yields ``(batch, rejected_rows, rows_read)`` for each block of the file.

        ``open_stream()`` opens the file afresh (a context manager of a binary
        stream). ``rows_read`` counts every data row of the block, accepted or
        rejected, so ``rows_read == batch.num_rows + len(rejected_rows)``.
        """
        with open_stream() as f:
            if not f.read(1):
                return  # a file of zero bytes holds no rows; the caller counts it
        names = read_header(open_stream, source, self.options.delimiter)
        self._check_columns(names, source)
        with open_stream() as f:
            yield from self._iter_blocks(f, names, source)

    def iter_range(
        self, data: pa.Buffer, source: str, names: Sequence[str], first_row: int
    ) -> Iterator[tuple[pa.RecordBatch, list[RejectedRow], int]]:
        """Like :meth:`iter_file`, for a byte range of a file that holds whole
        records and no header (see :mod:`conveyor.beam_utils.csv_ranges`).

        ``names`` are the file's columns; ``first_row`` is the CSV row number
        of the range's first record, so rejected rows carry the file's numbers.
        """
        self._check_columns(names, source)
        yield from self._iter_blocks(pa.BufferReader(data), list(names), source, first_row)

    def _check_columns(self, names: Sequence[str], source: str) -> None:
        missing = [n for n in self.schema.names if n not in names]
        if missing:
            raise InputError(f"{source}: header lacks column(s) {missing}; header is {list(names)}")

    def _iter_blocks(self, fileobj, names: list[str], source: str, first_row: int | None = None):
        invalid: list = []
        reader = _text_reader(fileobj, names, self.options, invalid, header_in_stream=first_row is None)
        # The reader numbers rows from 1 at the stream's first line: the header
        # of a whole file, or the first record of a range.
        offset = 0 if first_row is None else first_row - 1
        next_row = 2 if first_row is None else first_row  # CSV row number of the next row returned
        skipped_numbers: set[int] = set()  # rows the reader skipped at or after next_row
        while True:
            try:
                text = reader.read_next_batch()
            except StopIteration:
                text = None
            except pa.ArrowInvalid as e:
                raise InputError(f"{source}: cannot parse CSV near row {next_row}: {e}") from e
            # Rows skipped (wrong field count) since the last batch; the reader may
            # have parsed ahead, so they can lie past this batch too.
            skipped = list(invalid)
            invalid.clear()
            skipped_numbers.update(r.number + offset for r in skipped if r.number is not None)
            rejected = [self._invalid_row(source, r, offset) for r in skipped]
            if text is None:
                if rejected:
                    yield self._empty(), rejected, len(rejected)
                return
            row_numbers, next_row = self._row_numbers(next_row, text.num_rows, skipped_numbers)
            batch, bad_values = self.decode(text, row_numbers, source)
            yield batch, rejected + bad_values, text.num_rows + len(rejected)

    @staticmethod
    def _row_numbers(first: int, n: int, skipped: set[int]) -> tuple[np.ndarray, int]:
        """CSV row numbers of ``n`` rows returned from ``first`` on, and the next row number.

        Rows in ``skipped`` were not returned; those passed are removed from the set.
        """
        ahead = sorted(s for s in skipped if s >= first)
        candidates = np.arange(first, first + n + len(ahead), dtype=np.int64)
        if ahead:
            candidates = candidates[~np.isin(candidates, np.array(ahead, dtype=np.int64))]
        numbers = candidates[:n]
        following = int(numbers[-1]) + 1 if n else first
        skipped.difference_update([s for s in ahead if s < following])
        return numbers, following

    def _invalid_row(self, source: str, row, offset: int = 0) -> RejectedRow:
        return RejectedRow(
            source=source,
            row=int(row.number) + offset if row.number is not None else -1,
            reason=f"expected {row.expected_columns} fields, found {row.actual_columns}",
            text=row.text,
        )

    def _empty(self) -> pa.RecordBatch:
        return arrow.empty_batch(self.schema)

    def decode(
        self, text: pa.RecordBatch, row_numbers: np.ndarray, source: str
    ) -> tuple[pa.RecordBatch, list[RejectedRow]]:
        """Converts one batch of text columns; returns the good rows and the rejected ones."""
        n = text.num_rows
        ok = np.ones(n, dtype=bool)
        reasons: dict[int, list[str]] = {}
        columns = {}
        for name in self.schema.names:
            col = text.column(text.schema.get_field_index(name))
            kind = self._types[name]
            if kind == arrow.BYTES:
                columns[name] = col
                continue
            pattern = _INT_RE if kind == arrow.INT else _FLOAT_RE
            good = pc.or_kleene(pc.is_null(col), pc.match_substring_regex(col, pattern))
            good = np.asarray(good.to_numpy(zero_copy_only=False), dtype=bool)
            if kind == arrow.INT:
                good &= ~_out_of_int64_range(col)
            if not good.all():
                for i in np.flatnonzero(~good):
                    reasons.setdefault(int(i), []).append(
                        f"column {name!r}: {col[int(i)].as_py()!r} is not {'an integer' if kind == arrow.INT else 'a number'}"
                    )
                ok &= good
            columns[name] = col
        rejected = []
        if not ok.all():
            bad = np.flatnonzero(~ok)
            for i in bad:
                fields = [text.column(j)[int(i)].as_py() for j in range(text.num_columns)]
                rejected.append(
                    RejectedRow(
                        source=source,
                        row=int(row_numbers[i]),
                        reason="; ".join(reasons[int(i)]),
                        text=self.options.delimiter.join("" if f is None else f for f in fields),
                    )
                )
            mask = pa.array(ok)
            columns = {k: v.filter(mask) for k, v in columns.items()}
        arrays = []
        for name in self.schema.names:
            arrays.append(self._convert(columns[name], self._types[name], source))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema), rejected

    @staticmethod
    def _convert(col: pa.Array, kind: str, source: str) -> pa.Array:
        value_type = arrow.VALUE_TYPES[kind]
        if kind == arrow.BYTES:
            return arrow.wrap_scalars(col.cast(pa.large_binary()), value_type)
        trimmed = pc.utf8_trim_whitespace(col)
        if kind == arrow.FLOAT:
            # pyarrow parses "inf"/"nan" but not every spelling; normalise them first.
            trimmed = pc.replace_substring_regex(trimmed, r"^[+]?[iI][nN][fF]([iI][nN][iI][tT][yY])?$", "inf")
            trimmed = pc.replace_substring_regex(trimmed, r"^-[iI][nN][fF]([iI][nN][iI][tT][yY])?$", "-inf")
            trimmed = pc.replace_substring_regex(trimmed, r"^[+-]?[nN][aA][nN]$", "nan")
            values = trimmed.cast(pa.float64()).cast(pa.float32())
        else:
            values = trimmed.cast(pa.int64())
        return arrow.wrap_scalars(values, value_type)
