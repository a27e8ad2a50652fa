"""Tests of conveyor.beam_utils.csv_ranges: ranges parse to exactly one whole-file read.

Files are read with ``pyarrow.csv.open_csv`` (the streaming reader csv_io uses):
pyarrow 10's ``read_csv`` can hang when it raises, so it is avoided here.
"""

import io
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from conveyor.beam_utils.csv_ranges import CsvRange, plan_csv_ranges


def _read(data: bytes, names=None, delimiter=","):
    """(rows as tuples, invalid row numbers, column names) of one pyarrow read.

    Without ``names`` the first record is the header; every column is read as text.
    """
    if names is None:
        header_only = pacsv.open_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=lambda row: "skip"
            ),
        )
        text_types = {n: pa.string() for n in header_only.schema.names}
    else:
        text_types = {n: pa.string() for n in names}
    invalid = []

    def on_invalid(row):
        invalid.append(row.number)
        return "skip"

    reader = pacsv.open_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=text_types,
            strings_can_be_null=False,
        ),
    )
    names = reader.schema.names
    table = reader.read_all()
    rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns))))
    return rows, invalid, names


def _read_ranges(data: bytes, ranges, names, delimiter=","):
    """Rows and whole-file invalid row numbers from reading every range on its own."""
    rows, invalid = [], []
    for r in ranges:
        part_rows, part_invalid, _ = _read(data[r.start : r.end], names, delimiter)
        rows += part_rows
        invalid += [n + r.first_row - 1 for n in part_invalid]
    return rows, invalid


def _field(rng: random.Random, delim: str) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(rng.randint(-999, 99999))
    if kind < 0.45:
        return ""
    if kind < 0.55:
        return rng.choice(["x", "ab c", " sp ", "NA", "é"])
    # A quoted field, with delimiters, doubled quotes and line ends inside.
    parts = [
        rng.choice(["v", delim, '""', "\n", "\r\n", "\r", " ", "q"])
        for _ in range(rng.randint(0, 6))
    ]
    return '"' + "".join(parts) + '"'


def _random_csv(rng: random.Random) -> tuple[bytes, str]:
    delim = rng.choice([",", ",", ";", "\t"])
    eol = rng.choice(["\n", "\r\n", "\r", "mixed"])
    ncols = rng.randint(1, 4)
    lines = []
    header = [f"c{i}" for i in range(ncols)]
    if rng.random() < 0.3:
        header[0] = '"c0"'
    for _ in range(rng.randint(0, 40)):
        kind = rng.random()
        if kind < 0.12:
            lines.append("")  # an empty line
        elif kind < 0.16:
            lines.append(rng.choice([" ", "\t", '""']))  # a one-field line
        elif kind < 0.26:
            k = rng.choice([n for n in range(1, ncols + 3) if n != ncols])
            lines.append(delim.join(_field(rng, delim) for _ in range(k)))  # wrong count
        else:
            lines.append(delim.join(_field(rng, delim) for _ in range(ncols)))
    lead = "\n" * rng.choice([0, 0, 0, 1, 2])
    out = lead + delim.join(header)
    for line in lines:
        out += (rng.choice(["\n", "\r\n", "\r"]) if eol == "mixed" else eol) + line
    if rng.random() < 0.7:
        out += "\n" if eol == "mixed" else eol
    data = out.encode("utf-8")
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    return data, delim


def _check_ranges(data, ranges):
    assert ranges, "expected at least one range"
    assert all(r.start < r.end for r in ranges)
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    assert ranges[-1].end == len(data)
    assert all(a.first_row <= b.first_row for a, b in zip(ranges, ranges[1:]))


def test_generated_files_split_into_ranges_that_read_like_the_whole_file():
    rng = random.Random(20240611)
    checked = 0
    for _ in range(200):
        data, delim = _random_csv(rng)
        try:
            rows, invalid, names = _read(data, delimiter=delim)
        except pa.ArrowInvalid:  # pyarrow rejects a lone header without a line end
            assert plan_csv_ranges(io.BytesIO(data), 1, delimiter=delim) == [], data
            continue
        plans = {}
        for target in (1, 7, 30, 200, len(data) + 10):
            # The plan must not depend on where the chunks fall.
            for chunk_size in (1 << 24, rng.choice([1, 2, 3, 5, 17, 64])):
                ranges = plan_csv_ranges(
                    io.BytesIO(data), target, delimiter=delim, chunk_size=chunk_size
                )
                plans.setdefault(target, ranges)
                assert ranges == plans[target], (data, target, chunk_size)
            if not rows and not invalid:
                assert ranges == [], data
                continue
            _check_ranges(data, ranges)
            if target > len(data):
                assert len(ranges) == 1
            got_rows, got_invalid = _read_ranges(data, ranges, names, delim)
            assert got_rows == rows, (data, target)
            assert got_invalid == invalid, (data, target)
            checked += 1
    assert checked > 400


def test_row_numbers_match_pyarrow_examples():
    data = b'a,b\n1,2\n\n"x\ny",3\n4,5,6\n7,8\n'
    ranges = plan_csv_ranges(io.BytesIO(data), 1)
    assert ranges == [
        CsvRange(4, 9, 2),  # "1,2\n\n": the empty line is not a row
        CsvRange(9, 17, 3),  # the quoted newline does not end the row
        CsvRange(17, 23, 4),  # "4,5,6", which pyarrow reports as row 4
        CsvRange(23, 27, 5),
    ]
    assert _read(data)[1] == [4]
    # \r\n and lone \r end lines; "\r\r\n" is a line end plus an empty line.
    data = b"a,b\r\n1,2\r\r\n3,4\r5,6,7\r\n"
    ranges = plan_csv_ranges(io.BytesIO(data), 1)
    assert [r.first_row for r in ranges] == [2, 3, 4]
    assert ranges[-1].start == data.index(b"5,6,7")
    assert _read(data)[1] == [4]
    # A whitespace-only line is a row; a last line without a terminator is one too.
    data = b"a,b\n \n1,2\n3,4,5"
    assert [r.first_row for r in plan_csv_ranges(io.BytesIO(data), 1)] == [2, 3, 4]
    assert _read(data)[1] == [2, 4]


def test_stray_quotes_cannot_be_split():
    stray = [
        b'a,b\n1,2\nx"y,3\n4,5\n',  # opens mid-field
        b'a,b\n1,2\n"x"y,3\n4,5\n',  # closes mid-field
        b'a,b\n1,2\n "x",3\n4,5\n',  # opens after a space
        b'a,b\n1,2\n"x" ,3\n4,5\n',  # closes before a space
        b'a,b\n1,2\n"x\n4,5\n',  # never closed
    ]
    for data in stray:
        for chunk_size in range(1, len(data) + 1):
            assert plan_csv_ranges(io.BytesIO(data), 4, chunk_size=chunk_size) is None, data
    # RFC-4180 quoting is fine, however the chunks fall.
    data = b'a,b\n"x,""y""\n",1\n"",""""\n'
    for chunk_size in (1, 2, 3, 100):
        assert plan_csv_ranges(io.BytesIO(data), 1, chunk_size=chunk_size) == [
            CsvRange(4, 17, 2),
            CsvRange(17, 25, 3),
        ]


@pytest.mark.parametrize(
    "data", [b"", b"\n\n", b"a,b", b"a,b\n", b"a,b\r\n\r\n\n", b"\xef\xbb\xbfa,b\n"]
)
def test_empty_and_header_only_files_give_no_ranges(data):
    assert plan_csv_ranges(io.BytesIO(data), 10) == []


def test_small_file_is_one_range():
    data = b"\xef\xbb\xbf\na,b\n1,2\n3,4\n"
    assert plan_csv_ranges(io.BytesIO(data), 1000) == [CsvRange(8, len(data), 2)]


def test_bad_arguments():
    with pytest.raises(ValueError):
        plan_csv_ranges(io.BytesIO(b"a\n1\n"), 0)
    with pytest.raises(ValueError):
        plan_csv_ranges(io.BytesIO(b"a\n1\n"), 10, delimiter=";;")
    with pytest.raises(ValueError):
        plan_csv_ranges(io.BytesIO(b"a\n1\n"), 10, delimiter='"')


def test_flights_csv_splits_into_ranges_whose_rows_add_up():
    from conveyor.beam_utils.datasets import flights_csv

    try:
        path = flights_csv()
    except FileNotFoundError as e:  # the project's "data" extra is not installed
        pytest.skip(str(e))
    with open(path, "rb") as f:
        data = b"".join(f.readline() for _ in range(20_000))  # header + 19,999 flights
    ranges = plan_csv_ranges(io.BytesIO(data), 1 << 18, chunk_size=1 << 20)
    assert ranges == plan_csv_ranges(io.BytesIO(data), 1 << 18, chunk_size=12_345)
    _check_ranges(data, ranges)
    assert 5 < len(ranges) < 20
    _, _, names = _read(data[: data.index(b"\n") + 1] + data[ranges[0].start : ranges[0].end])
    expected_first = 2
    total = 0
    for r in ranges:
        assert r.first_row == expected_first
        part = pacsv.open_csv(
            io.BytesIO(data[r.start : r.end]),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        ).read_all()
        expected_first += part.num_rows
        total += part.num_rows
    assert total == 19_999


@pytest.mark.parametrize(
    "bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"]
)
def test_utf16_and_utf32_files_are_not_split(bom):
    codec = {2: "utf-16", 4: "utf-32"}[len(bom)] + ("-le" if bom[0] == 0xFF else "-be")
    # No quotes: the quote check alone would refuse a quoted file (a quote then a NUL byte).
    data = bom + ("a,b\n" + "".join(f"{i},xy\n" for i in range(200))).encode(codec)
    for chunk_size in (1, 3, 1 << 20):
        assert plan_csv_ranges(io.BytesIO(data), 64, chunk_size=chunk_size) is None
