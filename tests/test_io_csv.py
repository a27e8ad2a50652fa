"""CSV reading: quoting, missing values, type inference, rejected rows, counts."""

import pathlib

import pyarrow as pa
import pytest
from pipeline_helpers import run_read

from conveyor.beam_utils import arrow, csv_io
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples

TRICKY = (pathlib.Path(__file__).parent.parent / "testdata" / "csv" / "tricky.csv").read_text()


def _opener(data: bytes):
    return lambda: pa.BufferReader(data)


def test_quoted_commas_newlines_and_missing(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(TRICKY)
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema) == {
        "id": "INT",
        "name": "BYTES",
        "score": "FLOAT",
        "note": "BYTES",
    }
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rejected == [] and rows == 4 and table.num_rows == 4
    got = {r["id"][0]: r for r in table.to_pylist()}
    assert got[1]["name"] == [b"Smith, Jo"]
    assert got[2]["name"] == [b"multi\nline"]
    assert got[2]["score"] is None  # NA is missing
    assert got[2]["note"] == [b'quoted "inner" text']
    assert got[3]["name"] is None and got[3]["note"] is None  # empty field is missing
    assert got[3]["score"] == [2.0]
    assert got[4]["score"] == [float("inf")]
    assert got[4]["note"] == [b"a,b,c"]


def test_missing_values_are_configurable(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\nNA,1\nx,2\n")
    default = ReadExamples(str(path))
    table, _, _ = run_read(default, tmp_path / "w1")
    assert sorted(table.column("a").to_pylist(), key=str) == [None, [b"x"]]
    literal = ReadExamples(str(path), missing_values=[""])
    table, _, _ = run_read(literal, tmp_path / "w2")
    assert sorted(v[0] for v in table.column("a").to_pylist()) == [b"NA", b"x"]


def test_bad_rows_are_rejected_with_row_number_and_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "a,b,c\n"
        "1,x,1.0\n"  # row 2
        "2,y\n"  # row 3: too few fields
        '3,"q\nq",2.0\n'  # row 4 (spans two lines)
        "four,z,3.0\n"  # row 5: not an integer
        "5,w,abc\n"  # row 6: not a number
        "6,v,4.0,extra\n"  # row 7: too many fields
        "7,u,5e3\n"  # row 8
    )
    read = ReadExamples(str(path), schema={"a": "INT", "b": "BYTES", "c": "FLOAT"})
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 7
    assert rows == table.num_rows + len(rejected)
    assert sorted(v[0] for v in table.column("a").to_pylist()) == [1, 3, 7]
    by_row = {r["row"]: r for r in rejected}
    assert sorted(by_row) == [3, 5, 6, 7]
    assert all(r["source"] == str(path) for r in rejected)
    assert "expected 3 fields, found 2" in by_row[3]["reason"]
    assert "'a'" in by_row[5]["reason"] and "'four'" in by_row[5]["reason"]
    assert "'c'" in by_row[6]["reason"] and "'abc'" in by_row[6]["reason"]
    assert "found 4" in by_row[7]["reason"]


def test_later_value_of_another_type_rejects_the_row_not_the_column(tmp_path):
    rows = ["n"] + [str(i) for i in range(50)] + ["2.5"] + [str(i) for i in range(5)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    read = ReadExamples(str(path), sample_size=20)
    assert arrow.feature_types(read.arrow_schema) == {"n": "INT"}
    table, rejected, n = run_read(read, tmp_path / "w")
    assert table.schema.field("n").type == pa.large_list(pa.int64())
    assert [r["row"] for r in rejected] == [52] and n == 56 and table.num_rows == 55


def test_row_numbers_stay_right_across_small_blocks():
    lines = ["a,b"]
    bad = set()
    for i in range(2, 3000):
        if i % 97 == 0:
            lines.append(f"{i},1,extra")
            bad.add(i)
        elif i % 89 == 0:
            lines.append(f"{i},oops")
            bad.add(i)
        else:
            lines.append(f"{i},{i}")
    data = ("\n".join(lines) + "\n").encode()
    decoder = csv_io.CsvDecoder(
        arrow.make_schema({"a": "INT", "b": "INT"}), csv_io.CsvOptions(block_size=512)
    )
    seen_rows, rejected, total = [], [], 0
    for batch, rej, n in decoder.iter_file(_opener(data), "mem"):
        total += n
        seen_rows += [v[0] for v in batch.column(0).to_pylist()]
        rejected += rej
    assert total == 2998 == len(seen_rows) + len(rejected)
    assert sorted(r.row for r in rejected) == sorted(bad)
    assert all(int(r.text.split(",")[0]) == r.row for r in rejected)


def test_integers_beyond_int64_are_rejected():
    data = b"a\n1\n99999999999999999999\n-9223372036854775808\n"
    decoder = csv_io.CsvDecoder(arrow.make_schema({"a": "INT"}))
    [(batch, rejected, n)] = list(decoder.iter_file(_opener(data), "mem"))
    assert batch.column(0).to_pylist() == [[1], [-9223372036854775808]]
    assert [r.row for r in rejected] == [3]


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv: empty CSV file"):
        ReadExamples(str(empty)).arrow_schema
    with pytest.raises(InputError, match="nope.csv: no such file"):
        ReadExamples(str(tmp_path / "nope.csv"))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    table, rejected, rows = run_read(ReadExamples(str(header_only)), tmp_path / "w")
    assert (table.num_rows, rejected, rows) == (0, [], 0)


def test_empty_file_among_several_counts_zero_rows(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x\n1\n2\n")
    (tmp_path / "in" / "b.csv").write_bytes(b"")
    table, rejected, rows = run_read(ReadExamples(str(tmp_path / "in" / "*.csv")), tmp_path / "w")
    assert table.num_rows == 2 and rows == 2 and rejected == []


def test_header_lacking_a_schema_column_names_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    read = ReadExamples(str(path), schema={"a": "INT", "b": "FLOAT"})
    with pytest.raises(Exception, match=r"t.csv: header lacks column\(s\) \['b'\]"):
        run_read(read, tmp_path / "w")


def test_gzip_csv_and_penguins(tmp_path):
    import gzip

    from conveyor.beam_utils import datasets

    data = open(datasets.penguins_csv(), "rb").read()
    gz = tmp_path / "penguins.csv.gz"
    gz.write_bytes(gzip.compress(data))
    read = ReadExamples(str(gz))
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == datasets.PENGUINS_ROWS == table.num_rows and rejected == []
    types = arrow.feature_types(read.arrow_schema)
    assert (
        types["species"] == "BYTES"
        and types["bill_length_mm"] == "FLOAT"
        and types["year"] == "INT"
    )
    # palmerpenguins marks 2 missing bill lengths with NA
    assert table.column("bill_length_mm").null_count == 2


def test_flights_sample_types(tmp_path):
    from conveyor.beam_utils import datasets

    path = datasets.flights_sample_csv(3000, str(tmp_path / "flights.csv"))
    read = ReadExamples(path)
    types = arrow.feature_types(read.arrow_schema)
    assert (
        types["dep_delay"] == "INT"
        and types["carrier"] == "BYTES"
        and types["time_hour"] == "BYTES"
    )
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 3000 == table.num_rows and rejected == []
    assert table.column("arr_delay").null_count > 0  # NA in the real data


# ------------------------------------------------------------ read in pieces


def _mixed_csv(path, rows=3000, seed=3):
    """Quoted fields with commas and newlines, empty lines, bad rows, NA."""
    import random

    rng = random.Random(seed)
    lines = ["id,name,score"]
    for i in range(rows):
        kind = rng.random()
        if kind < 0.03:
            lines.append(f"{i},short")  # too few fields
        elif kind < 0.05:
            lines.append(f"{i},x,notanumber")
        elif kind < 0.08:
            lines.append("")  # an empty line: not a row
        elif kind < 0.3:
            lines.append(f'{i},"multi\nline, ""quoted""",{rng.random():.4f}')
        else:
            lines.append(f"{i},n{rng.randrange(50)},{'NA' if rng.random() < 0.1 else rng.random()}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "beam_args", [None, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]]
)
def test_reading_in_byte_ranges_equals_reading_whole(tmp_path, beam_args):
    from pipeline_helpers import sort_table

    path = _mixed_csv(tmp_path / "m.csv")
    schema = {"id": "INT", "name": "BYTES", "score": "FLOAT"}
    whole = run_read(
        ReadExamples(str(path), schema=schema, split_bytes=1 << 30), tmp_path / "whole"
    )
    pieces = run_read(
        ReadExamples(str(path), schema=schema, split_bytes=4096, batch_size=100),
        tmp_path / "pieces",
        beam_args,
    )
    (t1, rej1, n1), (t2, rej2, n2) = whole, pieces
    assert n1 == n2 == t2.num_rows + len(rej2) > 2500
    assert sort_table(t2, "id").equals(sort_table(t1, "id"))
    key = lambda r: r["row"]  # noqa: E731
    assert sorted(rej2, key=key) == sorted(rej1, key=key) and len(rej1) > 50
    # The row numbers are the file's: the text of a rejected row starts with its id,
    # and ids and row numbers are linked through the lines written.
    assert {r["row"] for r in rej2} == {r["row"] for r in rej1}


def test_plan_splits_large_csv_and_parquet_and_keeps_compressed_whole(tmp_path):
    import gzip

    import pyarrow.parquet as pq

    from conveyor.beam_utils.read_plan import PlanReadsFn

    path = _mixed_csv(tmp_path / "m.csv")
    schema = arrow.make_schema({"id": "INT", "name": "BYTES", "score": "FLOAT"})
    tasks = list(PlanReadsFn("csv", ",", 4096).process(str(path)))
    assert len(tasks) > 5 and [t.piece for t in tasks] == list(range(len(tasks)))
    assert tasks[0].first_row == 2 and tasks[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(tasks, tasks[1:]))
    gz = tmp_path / "m.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [t.whole for t in PlanReadsFn("csv", ",", 4096).process(str(gz))] == [True]
    # A stray quote inside an unquoted field: quote parity cannot be trusted; read whole.
    odd = tmp_path / "odd.csv"
    odd.write_text("id,name,score\n" + "".join(f"{i},5'11\" tall,1\n" for i in range(2000)))
    assert [t.whole for t in PlanReadsFn("csv", ",", 4096).process(str(odd))] == [True]
    table, rejected, n = run_read(
        ReadExamples(str(odd), schema=dict(arrow.feature_types(schema)), split_bytes=4096),
        tmp_path / "odd",
    )
    assert n == 2000 == table.num_rows and not rejected
    # Parquet: groups of row groups, numbered; together they read every row once.
    pq_path = tmp_path / "m.parquet"
    t = pa.table({"id": list(range(5000)), "score": [float(i) for i in range(5000)]})
    pq.write_table(t, pq_path, row_group_size=500)
    tasks = list(PlanReadsFn("parquet", ",", 4096).process(str(pq_path)))
    assert len(tasks) > 1
    assert sorted(g for task in tasks for g in task.row_groups) == list(range(10))
    table, rejected, n = run_read(ReadExamples(str(pq_path), split_bytes=4096), tmp_path / "pq")
    assert n == 5000 and sorted(v[0] for v in table.column("id").to_pylist()) == list(range(5000))
    # Read in ranges, a header that lacks a schema column still names the file.
    with pytest.raises(Exception, match=r"m.csv: header lacks column\(s\) \['extra'\]"):
        run_read(
            ReadExamples(str(path), schema={"id": "INT", "extra": "FLOAT"}, split_bytes=4096),
            tmp_path / "lacks",
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        )


# ------------------------------------------------------------ types of columns empty in the sample


def _sparse_csv(path, rows: int, values: dict[int, str], extra: dict[int, str] | None = None):
    """``a,b,late[,other]``: ``late`` is empty except at the given CSV rows (header = 1)."""
    extra_col = extra is not None
    lines = ["a,b,late" + (",other" if extra_col else "")]
    for row in range(2, rows + 2):
        line = f"{row},{row * 0.5},{values.get(row, '')}"
        if extra_col:
            line += "," + extra.get(row, "")
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_column_with_its_only_value_after_the_sample_is_typed_from_it(tmp_path):
    path = _sparse_csv(tmp_path / "late.csv", 15_000, {12_000: "7"})
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema) == {"a": "INT", "b": "FLOAT", "late": "INT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 15_000 == table.num_rows and rejected == []
    assert [v for v in table.column("late").to_pylist() if v is not None] == [[7]]


def test_later_value_not_of_the_settled_type_is_a_rejected_row(tmp_path):
    path = _sparse_csv(tmp_path / "late.csv", 15_000, {12_000: "7", 12_500: "abc", 13_000: "8"})
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema)["late"] == "INT"
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 15_000 == table.num_rows + len(rejected)
    assert [r["row"] for r in rejected] == [12_500] and "'abc' is not an integer" in rejected[0][
        "reason"
    ]


def test_columns_empty_in_the_sample_are_typed_from_the_rows_up_to_the_last_first_value(tmp_path):
    # late: 1 then 2.5 before other gets its first value (row 10,040): FLOAT.
    # other: its first value x (row 10,040) makes it BYTES; late's "oops" after that row
    # is not looked at, so it is a rejected row, not a reason to make late BYTES.
    path = _sparse_csv(
        tmp_path / "two.csv",
        10_100,
        {10_010: "1", 10_020: "2.5", 10_050: "oops"},
        extra={10_040: "x", 10_060: "3"},
    )
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema) == {
        "a": "INT",
        "b": "FLOAT",
        "late": "FLOAT",
        "other": "BYTES",
    }
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert [r["row"] for r in rejected] == [10_050] and rows == 10_100


def test_column_empty_in_the_first_file_is_typed_from_a_later_file(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _sparse_csv(folder / "a.csv", 3000, {})
    _sparse_csv(folder / "b.csv", 3000, {})
    _sparse_csv(folder / "c.csv", 3000, {2500: "0.25"})
    read = ReadExamples(str(folder / "*.csv"), sample_size=1000)
    assert arrow.feature_types(read.arrow_schema)["late"] == "FLOAT"
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 9000 == table.num_rows and not rejected


def test_column_with_no_value_anywhere_is_bytes_and_a_schema_still_wins(tmp_path):
    path = _sparse_csv(tmp_path / "none.csv", 12_000, {})
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema)["late"] == "BYTES"
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 12_000 == table.num_rows and table.column("late").null_count == 12_000
    given = ReadExamples(
        str(_sparse_csv(tmp_path / "late.csv", 12_000, {11_000: "5"})),
        schema={"a": "INT", "b": "FLOAT", "late": "BYTES"},
    )
    assert arrow.feature_types(given.arrow_schema)["late"] == "BYTES"
    table, _, _ = run_read(given, tmp_path / "w2")
    assert [v for v in table.column("late").to_pylist() if v is not None] == [[b"5"]]


def test_sample_runs_across_files_of_the_pattern(tmp_path):
    # 100 rows per file: the first 10,000 rows of the input span the files, so b.csv's
    # 1.5 makes n FLOAT (reading the first file alone made it INT, and b's rows rejected).
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(100)))
    (folder / "b.csv").write_text("n\n" + "".join(f"{i + 0.5}\n" for i in range(100)))
    read = ReadExamples(str(folder / "*.csv"))
    assert arrow.feature_types(read.arrow_schema) == {"n": "FLOAT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 200 == table.num_rows and not rejected


def test_read_split_and_write_carry_beam_type_hints(tmp_path):
    """ReadExamples' outputs are typed; WriteExamples and SplitExamples take RecordBatches, and Beam
    refuses anything else when the pipeline is built."""
    import apache_beam as beam
    from apache_beam.typehints.decorators import TypeCheckError

    from conveyor.beam_utils.io import SplitExamples, WriteExamples

    path = tmp_path / "t.csv"
    path.write_text(TRICKY)
    p = beam.Pipeline()
    read = p | ReadExamples(str(path))
    assert (
        read.examples.element_type,
        read.rejected.element_type,
        read.rows_read.element_type,
    ) == (pa.RecordBatch, dict, int)
    splits = read.examples | SplitExamples({"train": 2, "eval": 1})
    assert {name: pcoll.element_type for name, pcoll in splits.items()} == {
        "train": pa.RecordBatch,
        "eval": pa.RecordBatch,
    }
    written = splits["train"] | WriteExamples(str(tmp_path / "out"), split="train")
    assert written.element_type is str
    ints = p | "Ints" >> beam.Create([1, 2])
    for label, transform in (
        ("W", WriteExamples(str(tmp_path / "bad"))),
        ("S", SplitExamples({"a": 1})),
    ):
        with pytest.raises(TypeCheckError, match="RecordBatch"):
            ints | label >> transform
