"""CSV to canonical RecordBatches, vectorized with ``pyarrow.csv``.

A file is streamed block by block with pyarrow's CSV reader (quoted fields may
hold delimiters and newlines). Every field is first read as text; each column is
then converted to its feature type in one vectorized step per batch. A row whose
field count is wrong, or whose value does not parse as its column's type, is a
rejected row: it leaves the batch and is reported with its file, its CSV row
number (the header is row 1; a quoted newline does not start a new row) and the
reason.

Text is UTF-8. A file that starts with a UTF-16 or UTF-32 byte order mark is
decoded from that encoding as it is read (its rows and row numbers are those of
its UTF-8 twin); a UTF-8 byte order mark is skipped. Anything else that is not
UTF-8 text -- bytes that are not UTF-8, a NUL byte (binary data, or UTF-16
without a byte order mark), a compressed stream that ends early -- stops the
read with an :class:`~conveyor.beam_utils.errors.InputError` naming the file,
the row where there is one, and what to do.

The header is parsed here (not by pyarrow) and skipped in the stream, so
pyarrow reads data rows only, with the header's names.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.files import DEFAULT_MISSING_VALUES

_LOG = logging.getLogger(__name__)
# DEFAULT_MISSING_VALUES: the field texts read as missing by default (defined in files).

#: A function that opens the file afresh: ``with open_stream() as f: f.read(n)``.
Opener = Callable[[], AbstractContextManager]

_INT_RE = r"^\s*[+-]?[0-9]+\s*$"
_FLOAT_RE = (
    r"^\s*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?"
    r"|[nN][aA][nN])\s*$"
)

_UTF8_BOM = b"\xef\xbb\xbf"
#: Byte order marks and the Python codec that reads past them (UTF-32 first:
#: its little-endian mark starts with UTF-16's).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32", "UTF-32LE"),
    (b"\x00\x00\xfe\xff", "utf-32", "UTF-32BE"),
    (b"\xff\xfe", "utf-16", "UTF-16LE"),
    (b"\xfe\xff", "utf-16", "UTF-16BE"),
)
#: Delimiters a one-column header is checked for (a file read with the wrong one).
_OTHER_DELIMITERS = (",", ";", "\t", "|")
#: The longest header row read.
_MAX_HEADER_BYTES = 64 << 20


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


@dataclass(frozen=True)
class CsvHeader:
    """A CSV file's header row and how to read the rows after it.

    Attributes:
      names: the column names (stripped of surrounding whitespace).
      size: bytes of the (UTF-8) stream up to the first data row: a byte order
        mark, empty lines, the header record and its line end.
      encoding: ``UTF-8``, or the encoding a byte order mark named
        (``UTF-16LE``, ``UTF-16BE``, ``UTF-32LE``, ``UTF-32BE``).
      open_text: opens the file as a UTF-8 stream (decoding UTF-16/32).
    """

    names: list[str]
    size: int
    encoding: str
    open_text: Opener


# ---------------------------------------------------------------- reading safely


_CHECKS = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bzip2",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".lz4": "lz4",
}


def _how_to_fix_stream(source: str) -> str:
    name = source.lower()
    tool = next((t for suffix, t in _CHECKS.items() if name.endswith(suffix)), None)
    if tool is None:
        return "the file is truncated or damaged; copy or download it again"
    return (
        f"the file is truncated, damaged or not {tool}-compressed (`{tool} -t {source}` checks it); "
        "copy or download it again, or name it without the compression suffix if it is plain text"
    )


def _stream_error(source: str, e: BaseException, where: str) -> InputError:
    """An error reading (or decompressing) the bytes of ``source``."""
    if isinstance(e, UnicodeDecodeError):  # from a UTF-16/32 stream being decoded
        return InputError(
            f"{source}: cannot decode the file as {e.encoding.upper()} {where}: {e.reason}; "
            "the file is damaged or not in the encoding its byte order mark names"
        )
    return InputError(f"{source}: cannot read the file {where}: {e}; {_how_to_fix_stream(source)}")


def _read(f, n: int, source: str, where: str = "at its start") -> bytes:
    try:
        return f.read(n)
    except (OSError, pa.ArrowException, UnicodeDecodeError, EOFError) as e:
        raise _stream_error(source, e, where) from e


def _skip(f, n: int, source: str) -> None:
    """Reads ``n`` bytes of ``f`` (past the header) without keeping them."""
    while n > 0:
        got = len(_read(f, min(n, 1 << 22), source, "in its header row"))
        if not got:
            return
        n -= got


def _bom_codec(head: bytes) -> tuple[str, str] | None:
    """``(Python codec, name)`` of the UTF-16/UTF-32 byte order mark ``head`` starts with."""
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            return codec, name
    return None


def _decoding_opener(open_stream: Opener, codec: str) -> Opener:
    @contextlib.contextmanager
    def open_decoded():
        with open_stream() as f:
            native = f if isinstance(f, pa.NativeFile) else pa.PythonFile(f, mode="r")
            yield pa.transcoding_input_stream(native, codec, "utf-8")

    return open_decoded


def read_head(open_stream: Opener, source: str, n: int = 1 << 16) -> bytes:
    """The first ``n`` bytes of the file, as UTF-8 (decoding UTF-16/32); errors named."""
    with open_stream() as f:
        head = _read(f, n, source)
    found = _bom_codec(head)
    if found is None:
        return head
    with _decoding_opener(open_stream, found[0])() as f:
        return _read(f, n, source)


# ---------------------------------------------------------------- the header


def _guess_wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 without a byte order mark, judged by where the NUL bytes fall."""
    head = np.frombuffer(data[: 1 << 12][: len(data[: 1 << 12]) // 4 * 4], dtype=np.uint8)
    if head.size < 4:
        return None
    zero = head.reshape(-1, 4) == 0
    share = zero.mean(axis=0)  # per position in 4-byte groups
    if share[1] > 0.9 and share[2] > 0.9 and share[3] > 0.9:
        return "UTF-32LE"
    if share[0] > 0.9 and share[1] > 0.9 and share[2] > 0.9:
        return "UTF-32BE"
    if share[1] > 0.9 and share[3] > 0.9:
        return "UTF-16LE"
    if share[0] > 0.9 and share[2] > 0.9:
        return "UTF-16BE"
    return None


def _nul_error(
    source: str, row: int, data: bytes | None = None, column: str | None = None
) -> InputError:
    guess = _guess_wide_encoding(data) if data else None
    where = (
        f"row {row}"
        + (" (the header)" if row == 1 else "")
        + (f", column {column!r}," if column else "")
    )
    if guess:
        what = (
            f"the file looks like {guess} text without a byte order mark; convert it to UTF-8, "
            f"e.g. `iconv -f {guess} -t UTF-8 {source} > converted.csv`"
        )
    else:
        what = (
            "a text CSV file holds none: this looks like binary data or UTF-16/UTF-32 text "
            "without a byte order mark; check that the file is a CSV file, and convert it to "
            f"UTF-8 if it is (e.g. `iconv -f UTF-16LE -t UTF-8 {source} > converted.csv`)"
        )
    return InputError(f"{source}: {where} holds a NUL byte; {what}")


def _utf8_error(source: str, row: int, bad: bytes | None, column: str | None = None) -> InputError:
    where = (
        f"row {row}"
        + (" (the header)" if row == 1 else "")
        + (f", column {column!r}," if column else "")
    )
    shown = f" (bytes {bad!r})" if bad is not None else ""
    return InputError(
        f"{source}: {where} is not UTF-8 text{shown}; the file is in another encoding "
        f"or is not a CSV file: convert it to UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8 {source} > "
        "converted.csv`, naming its real encoding) and read that"
    )


def _parse_header(data: bytes, eof: bool, source: str, delimiter: str):
    """``(names, size)`` of the header at the start of ``data`` (``eof``: all of the
    file); ``"more"`` when the header may go on past ``data``; None when the file
    holds no header (it is blank)."""
    bom = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    body = data[bom:]
    bad_at = None
    try:
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(body, final=eof)
    except UnicodeDecodeError as e:
        bad_at = e.start
        text = body[:bad_at].decode("utf-8")
    more_to_come = bad_at is None and not eof
    consumed = 0

    def lines():
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    try:
        record = next(
            (f for f in csv.reader(lines(), delimiter=delimiter, strict=False) if f), None
        )
    except csv.Error as e:
        if "\x00" in text:
            raise _nul_error(source, 1, data) from e
        if more_to_come:
            return "more"
        raise InputError(f"{source}: cannot parse row 1 (the header): {e}") from e
    if more_to_come and consumed >= len(text):
        return "more"  # the header, or the blank lines before it, may go on
    whole = text[:consumed]
    if bad_at is not None and (record is None or not whole.endswith(("\n", "\r"))):
        raise _utf8_error(source, 1, body[bad_at : bad_at + 8])
    if "\x00" in whole:
        raise _nul_error(source, 1, data)
    if record is None or not text.strip():
        return None
    return [n.strip() for n in record], bom + len(whole.encode("utf-8"))


_WARNED_DELIMITER: set[tuple[str, str]] = set()


def _warn_if_other_delimiter(names: list[str], source: str, delimiter: str) -> None:
    """Warns (once per file and process) when the header is one column holding another delimiter."""
    if len(names) != 1 or (source, delimiter) in _WARNED_DELIMITER:
        return
    counts = {d: names[0].count(d) for d in _OTHER_DELIMITERS if d != delimiter}
    seen = max(counts, key=counts.get)
    if counts[seen]:
        _WARNED_DELIMITER.add((source, delimiter))
        _LOG.warning(
            "%s: the header is one column, %r, which holds %r %d time(s): is the file %r-separated? "
            "It is being read with delimiter %r; read it with delimiter %r (--delimiter, ReadExamples(delimiter=...)) "
            "to get its columns.",
            source,
            names[0][:200],
            seen,
            counts[seen],
            seen,
            delimiter,
            seen,
        )


def _read_header(f, data: bytes, source: str, delimiter: str):
    """:func:`_parse_header` of the stream, reading on from ``data`` (its first bytes)."""
    size = 1 << 16
    while True:
        chunk = _read(f, size, source, "in its header row")
        data += chunk
        eof = not chunk  # (a stream may return fewer bytes than asked before its end)
        parsed = _parse_header(data, eof, source, delimiter)
        if parsed != "more":
            return parsed
        if len(data) >= _MAX_HEADER_BYTES:
            raise InputError(
                f"{source}: no end of the header row in its first "
                f"{_MAX_HEADER_BYTES >> 20} MiB; is this a CSV file?"
            )
        size = min(size * 4, _MAX_HEADER_BYTES)


def parse_header(open_stream: Opener, source: str, delimiter: str = ",") -> CsvHeader | None:
    """The file's header (see :class:`CsvHeader`), or None when the file is empty.

    A file is empty when it holds no bytes, or only a byte order mark, blank
    lines and spaces. Raises :class:`InputError` naming the file when the header
    is not UTF-8 text, holds a NUL byte, repeats a name or has an empty one.
    """
    opener, encoding = open_stream, "UTF-8"
    with open_stream() as f:  # opened once for a UTF-8 file
        first = _read(f, 1 << 16, source, "in its header row")
        found = _bom_codec(first)
        if found is None:
            parsed = _read_header(f, first, source, delimiter)
    if found is not None:
        opener, encoding = _decoding_opener(open_stream, found[0]), found[1]
        with opener() as f:
            parsed = _read_header(f, b"", source, delimiter)
    if parsed is None:
        return None
    names, header_size = parsed
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{source}: header repeats column names {dup}")
    if any(not n for n in names):
        raise InputError(f"{source}: header has an empty column name: {names}")
    _warn_if_other_delimiter(names, source, delimiter)
    return CsvHeader(names, header_size, encoding, opener)


def read_header(open_stream: Opener, source: str, delimiter: str = ",") -> list[str]:
    """The column names from the first row of the file (InputError if it has none)."""
    header = parse_header(open_stream, source, delimiter)
    if header is None:
        raise InputError(f"{source}: empty CSV file (no header row)")
    return header.names


# ---------------------------------------------------------------- text batches


class _InvalidRows:
    """pyarrow's invalid-row handler: keeps the rows with a wrong field count, skips them."""

    def __init__(self):
        self.rows: list = []

    def __call__(self, row):
        self.rows.append(row)
        return "skip"

    def take(self) -> list:
        rows, self.rows = self.rows, []
        return rows


def _quiet_unraisable(unraisable, previous=None) -> None:
    if isinstance(unraisable.object, _InvalidRows) and isinstance(
        unraisable.exc_value, UnicodeDecodeError
    ):
        return
    (previous or sys.__unraisablehook__)(unraisable)


def _hush_invalid_row_decoding() -> None:
    """pyarrow decodes an invalid row's text before calling the handler; when it is not
    UTF-8 the UnicodeDecodeError is printed as "Exception ignored" and the read fails
    (reported by :func:`_iter_text` as an InputError naming the row). That print is
    dropped; every other unraisable exception goes to the hook in place before."""
    hook = sys.unraisablehook
    if getattr(hook, "func", None) is _quiet_unraisable:
        return
    sys.unraisablehook = functools.partial(_quiet_unraisable, previous=hook)


def _text_reader(
    fileobj,
    names,
    options: CsvOptions,
    invalid: _InvalidRows,
    include_columns: Sequence[str] | None = None,
):
    _hush_invalid_row_decoding()
    return pacsv.open_csv(
        fileobj,
        read_options=pacsv.ReadOptions(
            block_size=options.block_size, use_threads=False, column_names=list(names)
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter, newlines_in_values=True, invalid_row_handler=invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            include_columns=list(include_columns) if include_columns is not None else None,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=list(options.missing_values),
            check_utf8=False,
        ),
    )


def _first_bad_text(col: pa.Array) -> tuple[int, str, bytes] | None:
    """``(index, "nul"|"utf8", bytes)`` of the first value of a string column that
    holds a NUL byte or is not UTF-8, or None. The check runs on the column's
    value bytes at once (a few ms per 30 MB); values are looked at one by one
    only when it finds something."""
    if not len(col) or col.null_count == len(col):
        return None
    _, offsets, values = col.buffers()[:3]
    if values is None:
        return None
    ends = np.frombuffer(offsets, dtype=np.int32)[col.offset : col.offset + len(col) + 1]
    data = memoryview(values)[int(ends[0]) : int(ends[-1])].tobytes()
    nul = b"\x00" in data
    try:
        data.decode("utf-8")
        if not nul:
            return None
    except UnicodeDecodeError:
        pass
    for i, value in enumerate(col.cast(pa.binary()).to_pylist()):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as e:
            return i, "utf8", value[max(e.start - 8, 0) : e.end + 8]
        if b"\x00" in value:
            return i, "nul", value
    return None


def _check_text(text: pa.RecordBatch, row_numbers: np.ndarray, source: str) -> None:
    """Raises InputError at the first row of the batch that holds a NUL byte or non-UTF-8 bytes."""
    worst = None
    for name, col in zip(text.schema.names, text.columns):
        found = _first_bad_text(col)
        if found is not None and (worst is None or found[0] < worst[0]):
            worst = (*found, name)
    if worst is None:
        return
    i, kind, value, name = worst
    row = int(row_numbers[i])
    if kind == "nul":
        raise _nul_error(source, row, value, name)
    raise _utf8_error(source, row, value, name)


_ROW_IN_ERROR = re.compile(r"Row #(\d+): Expected \d+ columns, got \d+")


@dataclass
class _TextBlock:
    text: pa.RecordBatch | None  # None once the input is done
    row_numbers: np.ndarray  # CSV row number of each row of text
    skipped: list  # pyarrow's rows with a wrong field count (numbered in the file)


def _iter_text(
    fileobj,
    names: Sequence[str],
    source: str,
    options: CsvOptions,
    first_row: int,
    include_columns: Sequence[str] | None = None,
) -> Iterator[_TextBlock]:
    """Text blocks of a stream of data rows (no header) whose first record is
    CSV row ``first_row``; every block checked for NUL bytes and UTF-8, and every
    read error turned into an InputError naming the file and row."""
    invalid = _InvalidRows()
    # The reader numbers rows from 1 at the stream's first record.
    offset = first_row - 1
    next_row = first_row  # CSV row number of the next row returned
    skipped_numbers: set[int] = set()  # rows the reader skipped at or after next_row
    reader = None

    def failure(e: BaseException) -> InputError:
        if isinstance(e, pa.ArrowInvalid):
            m = _ROW_IN_ERROR.search(str(e))
            if m:
                # A row with the wrong field count whose text pyarrow could not decode
                # to hand it to the invalid-row handler: it is not UTF-8.
                return _utf8_error(source, int(m.group(1)) + offset, None)
            return InputError(f"{source}: cannot parse CSV near row {next_row}: {e}")
        done = next_row - first_row
        where = (
            f"after row {next_row - 1} ({done:,} data rows read)"
            if done
            else f"before row {next_row} (no data row read)"
        )
        return _stream_error(source, e, where)

    try:
        try:
            reader = _text_reader(fileobj, names, options, invalid, include_columns)
        except pa.ArrowInvalid as e:
            if "Empty CSV file" in str(e):
                return  # nothing after the header
            raise failure(e) from e
        except (OSError, pa.ArrowException, UnicodeDecodeError) as e:
            raise failure(e) from e
        while True:
            try:
                text = reader.read_next_batch()
            except StopIteration:
                text = None
            except (OSError, pa.ArrowException, UnicodeDecodeError) as e:
                raise failure(e) from e
            # Rows skipped (wrong field count) since the last batch; the reader may
            # have parsed ahead, so they can lie past this batch too.
            skipped = invalid.take()
            for r in skipped:
                if "\x00" in (r.text or ""):
                    raise _nul_error(
                        source,
                        int(r.number) + offset if r.number is not None else next_row,
                        r.text.encode("utf-8"),
                    )
            skipped_numbers.update(r.number + offset for r in skipped if r.number is not None)
            if text is None:
                yield _TextBlock(None, np.zeros(0, dtype=np.int64), skipped)
                return
            row_numbers, next_row = _row_numbers(next_row, text.num_rows, skipped_numbers)
            _check_text(text, row_numbers, source)
            yield _TextBlock(text, row_numbers, skipped)
    finally:
        del reader


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


def _iter_file_text(
    header: CsvHeader,
    source: str,
    options: CsvOptions,
    include_columns: Sequence[str] | None = None,
) -> Iterator[_TextBlock]:
    with header.open_text() as f:
        _skip(f, header.size, source)
        yield from _iter_text(f, header.names, source, options, 2, include_columns)


# ---------------------------------------------------------------- feature types


class _TypeTally:
    """What the values of one text column seen so far allow: INT, FLOAT or BYTES."""

    __slots__ = ("present", "int_ok", "float_ok")

    def __init__(self):
        self.present = False
        self.int_ok = True
        self.float_ok = True

    def add(self, col) -> None:
        present = col.drop_null()
        if len(present) == 0:
            return
        self.present = True
        if self.int_ok and not pc.all(pc.match_substring_regex(present, _INT_RE)).as_py():
            self.int_ok = False
        if (
            not self.int_ok
            and self.float_ok
            and not pc.all(pc.match_substring_regex(present, _FLOAT_RE)).as_py()
        ):
            self.float_ok = False

    @property
    def type(self) -> str:
        if self.present and self.int_ok:
            return arrow.INT
        if self.present and self.float_ok:
            return arrow.FLOAT
        return arrow.BYTES


def infer_feature_types(text_batch: pa.RecordBatch) -> dict[str, str]:
    """Feature types from a sample of text columns: INT, else FLOAT, else BYTES.

    A column whose every present value is an integer is INT; whose every present
    value is a number (including inf and nan) is FLOAT; anything else, and a
    column with no present value, is BYTES.
    """
    types = {}
    for name, col in zip(text_batch.schema.names, text_batch.columns):
        tally = _TypeTally()
        tally.add(col)
        types[name] = tally.type
    return types


class _Inference:
    """The state of typing columns from the sample and, for columns it leaves
    without a value, from the rows after it (see :func:`infer_types`)."""

    def __init__(self, sample_size: int):
        self.to_sample = sample_size
        self.sample_size = sample_size
        self.names: list[str] | None = None
        self.tallies: dict[str, _TypeTally] = {}
        self.pending: list[str] | None = None  # no value in the sample (once it is read), nor since
        self.extended: list[str] = []  # every column with no value in the sample
        self.last = ("", 0)  # file and CSV row number of the last row looked at

    def columns_to_read(self, header: CsvHeader) -> list[str]:
        if self.names is None:
            self.names = list(header.names)
            self.tallies = {n: _TypeTally() for n in self.names}
        # After the sample: only the columns it left without a value (all of them:
        # each is typed from every row up to where the last one gets a value).
        wanted = self.names if self.pending is None else self.extended
        return [n for n in wanted if n in header.names]

    def add(self, text: pa.RecordBatch, rows: np.ndarray, source: str) -> bool:
        """Takes one block of text; True once every column is typed."""
        if self.pending is None:
            take = text.slice(0, max(self.to_sample, 0))
            for n in self.names:
                if n in take.schema.names:
                    self.tallies[n].add(take.column(n))
            self.to_sample -= take.num_rows
            if take.num_rows:
                self.last = (source, int(rows[take.num_rows - 1]))
            if self.to_sample > 0:
                return False
            self.pending = [n for n in self.names if not self.tallies[n].present]
            self.extended = list(self.pending)
            if not self.pending:
                return True
            _LOG.info(
                "%s: column(s) %s have no value in the first %d rows; reading on to type them",
                source,
                self.pending,
                self.sample_size,
            )
            text, rows = text.slice(take.num_rows), rows[take.num_rows :]
        if not text.num_rows:
            return False
        found = {}
        for n in self.pending:
            if n in text.schema.names:
                valid = np.asarray(
                    text.column(n).is_valid().to_numpy(zero_copy_only=False), dtype=bool
                )
                if valid.any():
                    found[n] = int(np.argmax(valid))
        cut = max(found.values()) + 1 if len(found) == len(self.pending) else text.num_rows
        for n in self.extended:
            if n in text.schema.names:
                self.tallies[n].add(text.column(n).slice(0, cut))
        self.last = (source, int(rows[cut - 1]))
        self.pending = [n for n in self.pending if n not in found]
        if self.pending:
            return False
        _LOG.info(
            "column(s) %s typed %s from the rows after the sample, up to row %d of %s",
            self.extended,
            {n: self.tallies[n].type for n in self.extended},
            self.last[1],
            self.last[0],
        )
        return True

    def types(self) -> dict[str, str]:
        return {n: self.tallies[n].type for n in self.names}


def infer_types(
    files: Sequence[tuple[str, Opener]], options: CsvOptions, sample_size: int
) -> dict[str, str]:
    """Feature types of the columns of CSV files, in the order of the first file's header.

    The types come from the first ``sample_size`` data rows of the files, in
    order (INT, else FLOAT, else BYTES, as :func:`infer_feature_types`). A
    column with no value in those rows is typed from the rows that follow, read
    on (into later files too) only up to the row where the last such column
    gets its first value; a column with no value in the whole input is BYTES.
    Empty files are passed over; the names come from the first file with a
    header.

    Args:
      files: ``(source, opener)`` per file, in reading order.
      options: delimiter, missing values and the block size to read with.
      sample_size: data rows that type every column that has a value in them.

    Raises:
      InputError: no file has a header row, or a file cannot be read (named).
    """
    state = _Inference(sample_size)
    for source, opener in files:
        header = parse_header(opener, source, options.delimiter)
        if header is None:
            continue
        columns = state.columns_to_read(header)
        after = 0  # rows up to this CSV row number were looked at already
        while columns:
            sampling = state.pending is None
            for block in _iter_file_text(header, source, options, columns):
                text, rows = block.text, block.row_numbers
                if text is None:
                    columns = []
                    break
                if rows.size and rows[0] <= after:
                    keep = rows > after
                    text, rows = text.filter(pa.array(keep)), rows[keep]
                if state.add(text, rows, source):
                    return state.types()
                if sampling and state.pending is not None:
                    # The sample ended in this file: read the rest of it again with
                    # only the columns still to type (half the time on the flights).
                    narrower = state.columns_to_read(header)
                    if len(narrower) < len(columns):
                        columns, after = narrower, state.last[1]
                        break
                    sampling = False
            else:
                columns = []
    if state.names is None:
        first = files[0][0] if files else "(no files)"
        what = (
            "empty CSV file (no header row)"
            if len(files) == 1
            else "every file is empty (no header row)"
        )
        raise InputError(f"{first}: {what}")
    if state.pending:
        _LOG.info(
            "column(s) %s have no value in the input (read to row %d of %s): typed BYTES",
            state.pending,
            state.last[1],
            state.last[0],
        )
    return state.types()


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
        header = parse_header(open_stream, source, self.options.delimiter)
        if header is None:
            return  # an empty file holds no rows; the caller counts it
        self._check_columns(header.names, source)
        with header.open_text() as f:
            _skip(f, header.size, source)
            yield from self._iter_blocks(f, header.names, source, 2)

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

    def _iter_blocks(self, fileobj, names: list[str], source: str, first_row: int):
        for block in _iter_text(fileobj, names, source, self.options, first_row):
            rejected = [self._invalid_row(source, r, first_row - 1) for r in block.skipped]
            if block.text is None:
                if rejected:
                    yield self._empty(), rejected, len(rejected)
                return
            batch, bad_values = self.decode(block.text, block.row_numbers, source)
            yield batch, rejected + bad_values, block.text.num_rows + len(rejected)

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
            trimmed = pc.replace_substring_regex(
                trimmed, r"^[+]?[iI][nN][fF]([iI][nN][iI][tT][yY])?$", "inf"
            )
            trimmed = pc.replace_substring_regex(
                trimmed, r"^-[iI][nN][fF]([iI][nN][iI][tT][yY])?$", "-inf"
            )
            trimmed = pc.replace_substring_regex(trimmed, r"^[+-]?[nN][aA][nN]$", "nan")
            values = trimmed.cast(pa.float64()).cast(pa.float32())
        else:
            values = trimmed.cast(pa.int64())
        return arrow.wrap_scalars(values, value_type)
