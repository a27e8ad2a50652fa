"""CSV files that are not clean UTF-8 CSV: each is read correctly or refused clearly.

A refusal is an InputError naming the file, the row where there is one, and
what to do; it comes at schema inference when the rows inferred from hold the
problem, and from the pipeline (a worker) when a later row does. A UTF-16 or
UTF-32 file with a byte order mark reads as its UTF-8 twin. Empty, blank,
BOM-only and header-only files hold no rows; CR and CRLF line ends, a UTF-8
BOM and spaces around header names read as plain files do.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import random

import pytest
from pipeline_helpers import run_read, sort_table

from conveyor.beam_utils import arrow, csv_io
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples

HEADER = "id,x,name"
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _rows(n: int) -> list[str]:
    return [f"{i},{i * 0.25},n{i % 7}" for i in range(n)]


def _csv_bytes(rows: list[str], header: str = HEADER, eol: str = "\n") -> bytes:
    return (eol.join([header, *rows]) + eol).encode("utf-8")


def _with_row(n_rows: int, row: int, text: bytes) -> bytes:
    """A CSV of ``n_rows`` data rows whose CSV row ``row`` (header = 1) is ``text``."""
    lines = [r.encode() for r in _rows(n_rows)]
    lines[row - 2] = text
    return b"\n".join([HEADER.encode(), *lines]) + b"\n"


def _message(excinfo) -> str:
    """The InputError a pipeline run failed with, as the command line shows it."""
    try:
        from conveyor.beam_utils.errors import user_error
    except ImportError:  # an errors module without the unwrapping helper
        return str(excinfo.value)
    found = user_error(excinfo.value)
    assert found is not None, f"not an InputError: {excinfo.value!r}"
    return str(found)


# ------------------------------------------------------------ not UTF-8, not text


def test_binary_garbage_named_csv_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(bytes(random.Random(5).randrange(256) for _ in range(5000)))
    with pytest.raises(InputError, match=r"x\.csv: row 1 \(the header\)") as e:
        ReadExamples(str(path)).arrow_schema
    assert "UTF-8" in str(e.value) or "NUL" in str(e.value)


def test_binary_with_nul_bytes_in_the_header_is_refused(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x00a,b\n1,2\n")
    with pytest.raises(InputError, match=r"blob\.csv: row 1 \(the header\) holds a NUL byte"):
        ReadExamples(str(path)).arrow_schema


def test_invalid_utf8_in_the_sample_is_refused_at_inference(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(_with_row(300, 100, "7,1.5,caf\xe9".encode("latin-1")))
    with pytest.raises(InputError) as e:
        ReadExamples(str(path)).arrow_schema
    message = str(e.value)
    assert "latin1.csv: row 100, column 'name'," in message
    assert "not UTF-8" in message and "iconv" in message


@pytest.mark.parametrize("split_bytes", [None, 1 << 16], ids=["whole", "ranges"])
@pytest.mark.parametrize("bad", [b"7,1.5,caf\xe9", b"7,1.5,a\x00b"], ids=["latin1", "nul"])
def test_bad_bytes_after_the_sample_fail_the_pipeline_naming_file_and_row(
    tmp_path, bad, split_bytes
):
    path = tmp_path / "late.csv"
    path.write_bytes(_with_row(30_000, 20_000, bad))
    read = ReadExamples(str(path), split_bytes=split_bytes)
    assert arrow.feature_types(read.arrow_schema) == {"id": "INT", "x": "FLOAT", "name": "BYTES"}
    with pytest.raises(Exception) as e:
        run_read(read, tmp_path / "w")
    message = _message(e)
    assert "late.csv: row 20000, column 'name'," in message
    assert ("not UTF-8" if b"\xe9" in bad else "NUL byte") in message


def test_bad_bytes_after_the_sample_reach_the_user_from_worker_processes(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(_with_row(30_000, 20_000, b"7,1.5,caf\xe9"))
    with pytest.raises(Exception) as e:
        run_read(ReadExamples(str(path), split_bytes=1 << 16), tmp_path / "w", MULTI_PROCESS)
    assert "late.csv: row 20000, column 'name', is not UTF-8" in _message(e)


def test_wrong_field_count_and_invalid_utf8_names_the_row(tmp_path):
    # pyarrow cannot hand such a row to the invalid-row handler (it decodes its text first).
    path = tmp_path / "short.csv"
    path.write_bytes(_with_row(200, 37, b"caf\xe9"))
    with pytest.raises(InputError, match=r"short\.csv: row 37 is not UTF-8"):
        ReadExamples(str(path)).arrow_schema


def test_utf16_without_a_byte_order_mark_is_named_with_how_to_convert(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(_csv_bytes(_rows(5)).decode().encode("utf-16-le"))
    with pytest.raises(InputError, match=r"wide\.csv: row 1 \(the header\) holds a NUL byte") as e:
        ReadExamples(str(path)).arrow_schema
    assert "UTF-16LE" in str(e.value) and "iconv -f UTF-16LE -t UTF-8" in str(e.value)


# ------------------------------------------------------------ UTF-16 / UTF-32 with a BOM


def _tricky_rows(n: int) -> list[str]:
    """Quoted delimiters and newlines, missing and non-ASCII values, and two bad rows
    in every six: a value that is not a number, and a row with too few fields."""
    kinds = [
        '{i},0.5,"Smith, Jo"',
        '{i},NA,"multi\nline"',
        "{i},2.5,café",
        "{i},x,日本",  # x is not a number: rejected
        "{i},1e3,",
        "{i},7",  # too few fields: rejected
    ]
    return [kinds[i % 6].format(i=i) for i in range(n)]


@pytest.mark.parametrize(
    "codec,bom",
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
    ],
)
def test_utf16_and_utf32_with_a_bom_read_as_their_utf8_twin(tmp_path, codec, bom):
    text = _csv_bytes(_tricky_rows(300), eol="\r\n").decode()
    twin = tmp_path / "utf8.csv"
    twin.write_text(text, newline="")
    wide = tmp_path / f"{codec}.csv"
    wide.write_bytes(bom + text.encode(codec))
    schema = {"id": "INT", "x": "FLOAT", "name": "BYTES"}
    assert arrow.feature_types(ReadExamples(str(wide), sample_size=3).arrow_schema) == {
        "id": "INT",
        "x": "FLOAT",
        "name": "BYTES",
    }
    want_table, want_rejected, want_rows = run_read(
        ReadExamples(str(twin), schema=schema), tmp_path / "a"
    )
    # split_bytes small: a UTF-16/32 file is still read as one stream, not in byte ranges.
    table, rejected, rows = run_read(
        ReadExamples(str(wide), schema=schema, split_bytes=1024), tmp_path / "b"
    )
    assert rows == want_rows == 300 and len(want_rejected) == 100
    assert sort_table(table, "id").equals(sort_table(want_table, "id"))
    for r in want_rejected + rejected:
        r["source"] = "-"
    key = lambda r: r["row"]  # noqa: E731
    assert sorted(rejected, key=key) == sorted(want_rejected, key=key)
    assert {r["row"] for r in rejected} >= {5, 7}  # ids 3 and 5


def test_damaged_utf16_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bad16.csv"
    good = _csv_bytes(_rows(50_000)).decode().encode("utf-16")
    path.write_bytes(good + b"\x00\xd8" + "1,2,3\n".encode("utf-16-le"))  # a lone surrogate
    with pytest.raises(
        Exception
    ) as e:  # at inference or in the pipeline: how far pyarrow reads ahead
        run_read(ReadExamples(str(path)), tmp_path / "w")
    assert "bad16.csv: cannot decode the file as UTF-16" in _message(e)


# ------------------------------------------------------------ truncated compressed files


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_truncated_compressed_csv_in_the_sample_is_refused_at_inference(tmp_path, suffix, compress):
    path = tmp_path / f"cut.csv{suffix}"
    data = compress(_csv_bytes(_rows(2000)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"cut\.csv\{suffix}: cannot read the file") as e:
        ReadExamples(str(path)).arrow_schema
    assert "truncated, damaged" in str(e.value) and f"-t {path}" in str(e.value)


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_truncated_compressed_csv_after_the_sample_fails_the_pipeline_naming_it(
    tmp_path, suffix, compress
):
    path = tmp_path / f"cut.csv{suffix}"
    data = compress(_csv_bytes(_rows(200_000)))
    path.write_bytes(data[: len(data) * 3 // 4])
    # Inferring types may meet the end already (pyarrow reads ahead of the rows it
    # returns, how far depends on timing); with a schema only the pipeline reads.
    read = ReadExamples(str(path), schema={"id": "INT", "x": "FLOAT", "name": "BYTES"})
    with pytest.raises(Exception) as e:
        run_read(read, tmp_path / "w")
    message = _message(e)
    assert f"cut.csv{suffix}: cannot read the file after row " in message
    assert "data rows read" in message and "truncated, damaged" in message


def test_plain_text_named_gz_and_a_cut_zstd_file_are_refused_naming_them(tmp_path):
    plain = tmp_path / "plain.csv.gz"
    plain.write_bytes(_csv_bytes(_rows(10)))
    with pytest.raises(InputError, match=r"plain\.csv\.gz: cannot read the file") as e:
        ReadExamples(str(plain)).arrow_schema
    assert "not gzip-compressed" in str(e.value)
    import pyarrow as pa

    zst = tmp_path / "cut.csv.zst"
    with pa.output_stream(str(zst), compression="zstd") as f:
        f.write(_csv_bytes(_rows(5000)))
    zst.write_bytes(zst.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"cut\.csv\.zst: cannot read the file") as e:
        ReadExamples(str(zst)).arrow_schema
    assert f"zstd -t {zst}" in str(e.value)


def test_input_error_in_the_pipeline_exits_2_through_the_command_line(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    path = tmp_path / "late.csv"
    path.write_bytes(_with_row(30_000, 20_000, b"7,1.5,caf\xe9"))
    status = main(["examples", "--input", str(path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2, err[-2000:]
    assert "late.csv: row 20000, column 'name', is not UTF-8" in err


# ------------------------------------------------------------ the wrong delimiter


def test_one_column_header_holding_another_delimiter_warns(tmp_path, caplog):
    path = tmp_path / "semi.csv"
    path.write_bytes(_csv_bytes([r.replace(",", ";") for r in _rows(20)], HEADER.replace(",", ";")))
    with caplog.at_level(logging.WARNING, logger="conveyor.beam_utils.csv_io"):
        types = arrow.feature_types(ReadExamples(str(path)).arrow_schema)
    assert types == {"id;x;name": "BYTES"}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "semi.csv" in warned[0] and "';'" in warned[0] and "delimiter ','" in warned[0]
    caplog.clear()
    tabs = tmp_path / "tabs.tsv"
    tabs.write_bytes(
        _csv_bytes([r.replace(",", "\t") for r in _rows(20)], HEADER.replace(",", "\t"))
    )
    with caplog.at_level(logging.WARNING, logger="conveyor.beam_utils.csv_io"):
        ReadExamples(str(tabs), format="csv").arrow_schema
    assert any("'\\t'" in r.getMessage() for r in caplog.records), caplog.records


def test_genuine_one_column_file_does_not_warn(tmp_path, caplog):
    path = tmp_path / "one.csv"
    path.write_text("name\nsmith; jones\nx\n")
    with caplog.at_level(logging.WARNING, logger="conveyor.beam_utils.csv_io"):
        ReadExamples(str(path)).arrow_schema
        ReadExamples(str(path), delimiter=";").arrow_schema  # the header has no ';'
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------ empty, blank, BOM, line ends


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\n\n", b"  \r\n \n"],
    ids=["zero-bytes", "bom-only", "bom-newline", "newlines", "blank"],
)
def test_empty_files_hold_no_rows(tmp_path, data):
    path = tmp_path / "e.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"e\.csv: empty CSV file \(no header row\)"):
        ReadExamples(str(path)).arrow_schema
    decoder = csv_io.CsvDecoder(arrow.make_schema({"a": "INT"}))
    assert list(decoder.iter_file(lambda: open(path, "rb"), str(path))) == []
    # Among other files: counted as no rows, and the schema comes from the others.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(data)  # first in the pattern
    (tmp_path / "in" / "b.csv").write_text("v\n1\n2\n")
    read = ReadExamples(str(tmp_path / "in" / "*.csv"))
    assert arrow.feature_types(read.arrow_schema) == {"v": "INT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert (table.num_rows, rejected, rows) == (2, [], 2)


@pytest.mark.parametrize(
    "data",
    [b"a,b", b"a,b\n", b"\xef\xbb\xbfa,b\r\n", b"a,b\r\n\r\n\n"],
    ids=["no-line-end", "lf", "bom-crlf", "trailing-blank-lines"],
)
def test_header_only_files_hold_no_rows(tmp_path, data):
    path = tmp_path / "h.csv"
    path.write_bytes(data)
    read = ReadExamples(str(path))
    assert arrow.feature_types(read.arrow_schema) == {"a": "BYTES", "b": "BYTES"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert (table.num_rows, rejected, rows) == (0, [], 0)


@pytest.mark.parametrize(
    "variant", ["utf8-bom", "crlf", "cr", "bom-crlf", "spaced-header", "blank-lead"]
)
def test_variants_read_as_the_plain_file(tmp_path, variant):
    rows = _tricky_rows(120)
    plain = _csv_bytes(rows)
    data = {
        "utf8-bom": b"\xef\xbb\xbf" + plain,
        "crlf": _csv_bytes(rows, eol="\r\n"),
        "cr": _csv_bytes(rows, eol="\r"),
        "bom-crlf": b"\xef\xbb\xbf" + _csv_bytes(rows, eol="\r\n"),
        "spaced-header": _csv_bytes(rows, header=" id , x,name "),
        "blank-lead": b"\n\n" + plain,
    }[variant]
    (tmp_path / "plain.csv").write_bytes(plain)
    (tmp_path / "v.csv").write_bytes(data)
    want = ReadExamples(str(tmp_path / "plain.csv"))
    got = ReadExamples(str(tmp_path / "v.csv"))
    assert got.arrow_schema == want.arrow_schema
    want_table, want_rejected, want_rows = run_read(want, tmp_path / "a")
    table, rejected, rows = run_read(got, tmp_path / "b")
    # The quoted newline stays as written in the file (\n here, in every variant).
    assert rows == want_rows and sort_table(table, "id").equals(sort_table(want_table, "id"))
    assert sorted(r["row"] for r in rejected) == sorted(r["row"] for r in want_rejected)


def test_ranges_of_a_bom_crlf_file_with_quoted_newlines_read_as_the_whole_file(tmp_path):
    rng = random.Random(11)
    rows = []
    for i in range(4000):
        k = rng.random()
        if k < 0.2:
            rows.append(f'{i},{rng.random():.3f},"two\r\nlines, ""q"""')
        elif k < 0.23:
            rows.append(f"{i},oops,x")
        elif k < 0.25:
            rows.append(f"{i},1")
        else:
            rows.append(f"{i},{rng.random():.3f},é{i % 9}")
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv_bytes(rows, eol="\r\n"))
    schema = {"id": "INT", "x": "FLOAT", "name": "BYTES"}
    t1, rej1, n1 = run_read(ReadExamples(str(path), schema=schema), tmp_path / "whole")
    t2, rej2, n2 = run_read(
        ReadExamples(str(path), schema=schema, split_bytes=3000), tmp_path / "parts"
    )
    assert n1 == n2 == 4000 == t2.num_rows + len(rej2)
    assert sort_table(t2, "id").equals(sort_table(t1, "id"))
    key = lambda r: r["row"]  # noqa: E731
    assert sorted(rej2, key=key) == sorted(rej1, key=key) and len(rej1) > 100
    assert all(r["row"] == int(r["text"].split(",")[0]) + 2 for r in rej1)


def test_header_not_utf8_or_too_long_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(b"id,caf\xe9\n1,2\n")
    with pytest.raises(InputError, match=r"h\.csv: row 1 \(the header\) is not UTF-8"):
        ReadExamples(str(path)).arrow_schema
    # A header name that straddles the first 64 KiB read is read whole.
    long = tmp_path / "long.csv"
    names = [f"column_{'x' * 40}_{i}" for i in range(3000)]
    long.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    assert list(ReadExamples(str(long)).arrow_schema.names) == names


def test_cli_warns_of_another_delimiter_and_delimiter_flag_reads_it(tmp_path, capsys, caplog):
    import json

    from conveyor.orchestration.cli import main

    src = tmp_path / "semi.csv"
    src.write_text("a;b;c\n1;2;x\n3;4;y\n")
    with caplog.at_level("WARNING"):
        assert main(["examples", "--input", str(src), "--output", str(tmp_path / "one")]) == 0
    assert "';'-separated" in caplog.text and "--delimiter" in caplog.text
    assert (
        main(
            [
                "examples",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "three"),
                "--delimiter",
                ";",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "three" / "summary.json").read_text())
    assert summary["features"] == {"a": "INT", "b": "INT", "c": "BYTES"}
    assert (
        main(
            [
                "statistics",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "stats"),
                "--delimiter",
                ";",
            ]
        )
        == 0
    )
    capsys.readouterr()
