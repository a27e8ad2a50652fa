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
    with pytest.raises(
        InputError, match=r"p1.parquet: lacks column\(s\) \['b'\] that .*p2.parquet has"
    ):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


def test_parquet_column_missing_from_a_later_file_refused_before_the_run(tmp_path):
    _write(tmp_path / "in" / "p1.parquet", pa.table({"a": [1, 2], "b": ["x", "y"]}))
    _write(tmp_path / "in" / "p2.parquet", pa.table({"a": [3, 4]}))
    with pytest.raises(
        InputError, match=r"p2.parquet: lacks column\(s\) \['b'\] that .*p1.parquet has"
    ):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


def test_parquet_types_settled_over_all_files(tmp_path):
    # INT in one file and FLOAT in another reads as FLOAT; an all-null column
    # (Arrow's null type) takes the type another file gives it.
    _write(
        tmp_path / "in" / "p1.parquet",
        pa.table({"a": pa.array([1, 2], pa.int32()), "n": pa.array([None, None], pa.null())}),
    )
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
    with pytest.raises(
        InputError, match=r"p2.parquet: column 'a' is string \(BYTES\), but INT in .*p1.parquet"
    ):
        ReadExamples(str(tmp_path / "in" / "*.parquet")).arrow_schema


@pytest.mark.parametrize(
    "column",
    [
        pa.array([{"x": 1}, {"x": 2}]),
        pa.array([[[1], [2]], [[3]]], pa.list_(pa.list_(pa.int64()))),
        pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
    ],
    ids=["struct", "list of lists", "map"],
)
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


def test_parquet_file_without_columns_is_an_error(tmp_path):
    # It was read as examples with no feature at all (exit 0).
    path = tmp_path / "nocols.parquet"
    pq.write_table(pa.Table.from_batches([], schema=pa.schema([])), path)
    with pytest.raises(InputError, match="nocols.parquet: no columns; nothing to read"):
        ReadExamples(str(path)).arrow_schema


def test_parquet_value_that_does_not_convert_names_its_row(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": ["1", "2", "3", "two", "5"]}), path)
    read = ReadExamples(str(path), schema={"x": "INT"}, batch_size=4)
    with pytest.raises(
        Exception,
        match=r"t.parquet: rows 1-4: column 'x' \(string\) does not convert to INT "
        r"\(first at row 4: 'two'\)",
    ):
        run_read(read, tmp_path / "w")


# ---------------------------------------------------------------- TFRecord


def _entry(key: bytes, feature: bytes) -> bytes:
    entry = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
    return b"\x0a" + bytes([len(entry)]) + entry


def _example(*entries: bytes) -> bytes:
    features = b"".join(entries)
    return b"\x0a" + _varint(len(features)) + features


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _int(v: int) -> bytes:  # Feature {int64_list {value: [v]}}, v < 128
    return b"\x1a\x03\x0a\x01" + bytes([v])


def _float(v: float) -> bytes:  # Feature {float_list {value: [v]}}
    import struct

    return b"\x12\x06\x0a\x04" + struct.pack("<f", v)


def _bytes(v: bytes) -> bytes:  # Feature {bytes_list {value: [v]}}
    return b"\x0a" + bytes([len(v) + 2]) + b"\x0a" + bytes([len(v)]) + v


NOT_PROTOBUF = b"\x0a\x05\xff\xff"  # a field of 5 bytes with 2 left: valid framing, not a message


def _write_records(path, records, compress=False):
    from conveyor.beam_utils import tfrecord_io

    tfrecord_io.write_records(str(path), records, compress=compress)
    return path


def test_tfrecord_record_not_a_tf_example_is_a_rejected_row_through_the_cli(tmp_path, capsys):
    # It failed the whole file at schema inference ("records are not tf.Examples:
    # DATA_LOSS", no record number), though the README calls it a rejected row.
    records = [_example(_entry(b"a", _int(i)), _entry(b"s", _bytes(b"x"))) for i in range(20)]
    path = _write_records(tmp_path / "one_bad.tfrecord", records[:5] + [NOT_PROTOBUF] + records[5:])
    rc, err, summary = _examples(tmp_path, path, capsys)
    assert rc == 0, err
    assert (summary["rows_read"], summary["rows_accepted"], summary["rows_rejected"]) == (21, 20, 1)
    assert summary["features"] == {"a": "INT", "s": "BYTES"}
    (line,) = (tmp_path / "out" / "rejected").glob("*.jsonl")
    (rejected,) = [json.loads(t) for t in line.read_text().splitlines()]
    assert rejected["row"] == 6 and rejected["source"].endswith("one_bad.tfrecord")
    assert rejected["reason"] == "not a tf.Example: malformed protobuf"


def test_tfrecord_rejected_rows_say_why(tmp_path):
    schema = {"a": "INT", "x": "FLOAT"}
    records = [_example(_entry(b"a", _int(1)), _entry(b"x", _float(0.5)))] * 4
    records[1] = NOT_PROTOBUF
    records[2] = _example(_entry(b"a", _float(1.5)))  # a float_list for an INT feature
    path = _write_records(tmp_path / "r.tfrecord", records)
    table, rejected, rows = run_read(ReadExamples(str(path), schema=schema), tmp_path / "w")
    assert rows == 4 and table.num_rows == 2
    assert sorted((r["row"], r["reason"]) for r in rejected) == [
        (2, "not a tf.Example: malformed protobuf"),
        (3, "wrong type: feature 'a' holds a float_list; its type is INT"),
    ]


@pytest.mark.parametrize("schema", [None, {"a": "INT"}], ids=["inferred", "given"])
def test_tfrecord_of_bytes_that_are_not_examples_is_an_error_naming_the_file(tmp_path, schema):
    # With a schema given, every record was a rejected row and the run "succeeded".
    import random

    rng = random.Random(3)
    records = [bytes(rng.randrange(256) for _ in range(40)) for _ in range(30)]
    path = _write_records(tmp_path / "random.tfrecord", records)
    read = ReadExamples(str(path), schema=schema)
    with pytest.raises(
        Exception,
        match=r"random.tfrecord: none of its (first )?30 records is a tf.Example "
        r"\(record 1: .*\); is it a TFRecord of another kind of message",
    ):
        run_read(read, tmp_path / "w")


@pytest.mark.parametrize("schema", [None, {"c": "INT"}], ids=["inferred", "given"])
def test_tfrecord_of_sequence_examples_is_an_error_naming_the_file(tmp_path, schema):
    # protobuf parses a SequenceExample as a tf.Example of its context: its
    # feature lists were dropped without a word.
    seq = _example(_entry(b"c", _int(1))) + b"\x12\x00"  # context {c: [1]}, feature_lists {}
    path = _write_records(tmp_path / "seq.tfrecord.gz", [seq] * 5, compress=True)
    read = ReadExamples(str(path), schema=schema)
    with pytest.raises(
        Exception,
        match=r"seq.tfrecord.gz: none of its (first )?5 records is a tf.Example "
        r"\(record 1: fields a tf.Example does not have\)",
    ):
        run_read(read, tmp_path / "w")


def test_tfrecord_feature_first_seen_after_the_sample_is_kept(tmp_path, capsys):
    # The schema came from the first sample_size records: 'late' was dropped.
    records = [_example(_entry(b"a", _int(i % 100))) for i in range(10_005)]
    records += [_example(_entry(b"a", _int(1)), _entry(b"late", _float(2.5)))] * 2
    path = _write_records(tmp_path / "late.tfrecord.gz", records, compress=True)
    rc, err, summary = _examples(tmp_path, path, capsys)
    assert rc == 0, err
    assert summary["features"] == {"a": "INT", "late": "FLOAT"}
    read = ReadExamples(str(path), sample_size=100)
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 10_007 and rejected == []
    assert sorted(v[0] for v in table.column("late").to_pylist() if v) == [2.5, 2.5]
    # A given schema still wins: no scan, and features outside it are not kept.
    given = ReadExamples(str(path), schema={"a": "INT"})
    table, rejected, rows = run_read(given, tmp_path / "w2")
    assert table.column_names == ["a"] and rows == 10_007 and rejected == []


def test_tfrecord_feature_with_no_value_early_takes_the_type_of_later_records(tmp_path):
    # A Feature with no list in the sample made the feature BYTES; its later
    # float values were then rejected rows.
    early = [_example(_entry(b"a", _int(1)), _entry(b"x", b""))] * 50
    later = [_example(_entry(b"a", _int(2)), _entry(b"x", _float(0.25)))] * 3
    path = _write_records(tmp_path / "x.tfrecord", early + later)
    read = ReadExamples(str(path), sample_size=10)
    assert arrow.feature_types(read.arrow_schema) == {"a": "INT", "x": "FLOAT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 53 and rejected == [] and table.num_rows == 53
    assert sorted(table.column("x").to_pylist(), key=str) == [None] * 50 + [[0.25]] * 3


def test_tfrecord_feature_only_in_a_later_file_is_kept(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _write_records(folder / "p1.tfrecord", [_example(_entry(b"a", _int(1)))] * 3)
    _write_records(
        folder / "p2.tfrecord", [_example(_entry(b"a", _int(2)), _entry(b"b", _bytes(b"z")))] * 2
    )
    read = ReadExamples(str(folder / "*.tfrecord"))
    assert arrow.feature_types(read.arrow_schema) == {"a": "INT", "b": "BYTES"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 5 and rejected == []
    assert sorted(table.column("b").to_pylist(), key=str) == [None] * 3 + [[b"z"]] * 2


def test_tfrecord_feature_of_two_kinds_takes_the_kind_most_sampled_records_hold(tmp_path):
    # tfx-bsl's sample decode refused the whole input ("Feature had wrong type").
    # The sample (here 7 records) decides, as for CSV; records after it that
    # hold another kind are rejected rows.
    records = [_example(_entry(b"a", _int(1)))] * 2 + [_example(_entry(b"a", _float(0.5)))] * 5
    records += [_example(_entry(b"a", _int(1)))] * 6
    path = _write_records(tmp_path / "k.tfrecord", records)
    read = ReadExamples(str(path), sample_size=7)
    assert arrow.feature_types(read.arrow_schema) == {"a": "FLOAT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert (rows, table.num_rows, len(rejected)) == (13, 5, 8)  # read = accepted + rejected
    assert {r["reason"] for r in rejected} == {
        "wrong type: feature 'a' holds an int64_list; its type is FLOAT"
    }


def test_tfrecord_whose_records_hold_no_feature_is_an_error(tmp_path):
    path = _write_records(tmp_path / "empty_examples.tfrecord", [b""] * 4)
    with pytest.raises(
        InputError, match="empty_examples.tfrecord: none of its 4 records holds a feature"
    ):
        ReadExamples(str(path)).arrow_schema


def test_tfrecord_errors_number_records_from_1_as_rejected_rows_do(tmp_path):
    # A damaged record was "record 5" in the error but would be row 6 as a rejected row.
    from conveyor.beam_utils import tfrecord_io

    records = [_example(_entry(b"a", _int(i))) for i in range(10)]
    raw = bytearray(tfrecord_io.frame(records))
    at = len(tfrecord_io.frame(records[:5]))  # the sixth record's header
    raw[at + 12] ^= 0x01  # its data: the data CRC fails
    path = tmp_path / "crc.tfrecord"
    path.write_bytes(bytes(raw))
    with pytest.raises(
        InputError,
        match=rf"crc.tfrecord: corrupt TFRecord: record 6 at byte {at} fails its data CRC",
    ):
        ReadExamples(str(path)).arrow_schema
    raw = bytearray(tfrecord_io.frame(records))
    raw[12] ^= 0x01  # the first record's data: a damaged TFRecord, not another format
    path.write_bytes(bytes(raw))
    with pytest.raises(
        InputError,
        match=r"crc.tfrecord: corrupt TFRecord: record 1 at byte 0 fails its data CRC "
        r"check$",
    ):
        ReadExamples(str(path)).arrow_schema


@pytest.mark.parametrize(
    "content,hint",
    [
        ("zlib", "it looks ZLIB-compressed"),
        ("csv", "is it a TFRecord file?"),
    ],
)
def test_tfrecord_that_is_not_one_says_what_it_may_be(tmp_path, content, hint):
    import zlib

    from conveyor.beam_utils import tfrecord_io

    path = tmp_path / "data.tfrecord"
    if content == "zlib":  # TensorFlow's TFRecordWriter with compression "ZLIB"
        path.write_bytes(zlib.compress(tfrecord_io.frame([_example(_entry(b"a", _int(1)))] * 50)))
    else:
        path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(
        InputError,
        match=rf"data.tfrecord: (corrupt|truncated) TFRecord: record 1 at byte 0 .*{hint}",
    ):
        ReadExamples(str(path)).arrow_schema
