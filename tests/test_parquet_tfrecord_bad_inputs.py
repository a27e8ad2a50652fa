"""Parquet and TFRecord inputs that must be read correctly or refused clearly.

Each case is one of issue 16's: an input that was read with values silently
lost, or refused with a bare error. The commands run in this process
(``conveyor.orchestration.cli.main``): an error exits 2 with a message naming
the file; rejected rows are counted, and rows read = accepted + rejected.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_helpers import run_read

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples
from conveyor.orchestration.cli import main


def _examples(tmp_path, path, capsys):
    """Runs ``conveyor examples``; returns (exit status, stderr, summary or None)."""
    out = tmp_path / "out"
    rc = main(["examples", "--input", str(path), "--output", str(out)])
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text()) if rc == 0 else None
    return rc, err, summary


# ---------------------------------------------------------------- Parquet


def test_parquet_repeated_column_names_refused_through_the_cli(tmp_path, capsys):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 2, 3]), pa.array([4, 5, 6])], names=["a", "a"]), path)
    rc, err, _ = _examples(tmp_path, path, capsys)
    assert rc == 2, err
    assert "dup.parquet: repeats column names ['a']" in err and "rename" in err


def test_parquet_repeated_column_names_refused_with_a_given_schema(tmp_path):
    # The reader itself (shared with the monitor) refuses: its column would be all null.
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 2, 3]), pa.array([4, 5, 6])], names=["a", "a"]), path)
    read = ReadExamples(str(path), schema={"a": "INT"})
    with pytest.raises(Exception, match=r"dup.parquet: repeats column names \['a'\]"):
        run_read(read, tmp_path / "w")


def test_conform_refuses_a_batch_with_a_column_twice():
    batch = pa.RecordBatch.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(ValueError, match="two columns named 'a'"):
        arrow.conform(batch, arrow.make_schema({"a": "INT"}))


def _write(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_parquet_column_only_in_a_later_file_is_not_dropped(tmp_path):
    # The schema was the first file's: 'b' of the second file was silently dropped.
    _write(tmp_path / "in" / "p1.parquet", pa.table({"a": [1, 2]}))
    _write(tmp_path / "in" / "p2.parquet", pa.table({"a": [3, 4], "b": ["x", "y"]}))
    with pytest.raises(InputError, match=r"p1.parquet: lacks column\(s\) \['b'\] that .*p2.parquet has"):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


def test_parquet_column_missing_from_a_later_file_refused_before_the_run(tmp_path):
    _write(tmp_path / "in" / "p1.parquet", pa.table({"a": [1, 2], "b": ["x", "y"]}))
    _write(tmp_path / "in" / "p2.parquet", pa.table({"a": [3, 4]}))
    with pytest.raises(InputError, match=r"p2.parquet: lacks column\(s\) \['b'\] that .*p1.parquet has"):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


def test_parquet_types_settled_over_all_files(tmp_path):
    # INT in one file and FLOAT in another reads as FLOAT; an all-null column
    # (Arrow's null type) takes the type another file gives it.
    _write(tmp_path / "in" / "p1.parquet",
           pa.table({"a": pa.array([1, 2], pa.int32()), "n": pa.array([None, None], pa.null())}))
    _write(tmp_path / "in" / "p2.parquet", pa.table({"a": [2.5, None], "n": [7, None]}))
    read = ReadExamples(str(tmp_path / "in" / "*.parquet"))
    assert arrow.feature_types(read.arrow_schema) == {"a": "FLOAT", "n": "INT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 4 and rejected == [] and table.num_rows == 4
    assert sorted(table.column("a").to_pylist(), key=str) == [None, [1.0], [2.0], [2.5]]
    assert sorted(table.column("n").to_pylist(), key=str) == [None, None, None, [7]]


def test_parquet_text_in_one_file_and_numbers_in_another_refused(tmp_path):
    # Inferred from the first file alone, 'a' was INT and the second file
    # failed part-way (or, the other way round, its numbers became text).
    _write(tmp_path / "in" / "p1.parquet", pa.table({"a": [1, 2]}))
    _write(tmp_path / "in" / "p2.parquet", pa.table({"a": ["1", "2"]}))
    with pytest.raises(InputError, match=r"p2.parquet: column 'a' is string \(BYTES\), but INT in .*p1.parquet"):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


@pytest.mark.parametrize("column", [
    pa.array([{"x": 1}, {"x": 2}]),
    pa.array([[[1], [2]], [[3]]], pa.list_(pa.list_(pa.int64()))),
    pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
], ids=["struct", "list of lists", "map"])
def test_parquet_nested_column_refused_naming_it(tmp_path, column):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"a": [1, 2], "deep": column}), path)
    with pytest.raises(InputError, match="nested.parquet: column 'deep' has nested type .*flatten"):
        ReadExamples(str(path)).arrow_schema


def test_parquet_empty_and_zero_byte_files(tmp_path, capsys):
    empty = tmp_path / "empty.parquet"  # a schema, no rows: read as no rows
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), empty)
    rc, err, summary = _examples(tmp_path, empty, capsys)
    assert rc == 0, err
    assert (summary["rows_read"], summary["rows_accepted"], summary["rows_rejected"]) == (0, 0, 0)
    zero = tmp_path / "zero.parquet"  # no bytes: not a Parquet file (was a bare ArrowInvalid)
    zero.write_bytes(b"")
    rc, err, _ = _examples(tmp_path, zero, capsys)
    assert rc == 2 and "zero.parquet: not a Parquet file" in err, err


def test_parquet_value_that_does_not_convert_names_its_row(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": ["1", "2", "3", "two", "5"]}), path)
    read = ReadExamples(str(path), schema={"x": "INT"}, batch_size=4)
    with pytest.raises(Exception, match=r"t.parquet: rows 1-4: column 'x' \(string\) does not convert to INT "
                                        r"\(first at row 4: 'two'\)"):
        run_read(read, tmp_path / "w")
