"""ExampleGen end to end: the CLI, the summary, rejected rows, exit statuses."""

import glob
import json
import os

import pytest
from conftest import run_conveyor as _run

from conveyor.beam_utils import datasets
from conveyor.beam_utils.io import ReadExamples
from conveyor.components.example_gen import run_example_gen


def test_cli_ingests_flights_sample_with_summary(tmp_path):
    src = datasets.flights_sample_csv(4000, str(tmp_path / "flights.csv"))
    out = tmp_path / "examples"
    proc = _run("examples", "--input", src, "--output", str(out), "--splits", "train:3,eval:1")
    assert proc.returncode == 0, proc.stderr
    assert "read 4,000  accepted 4,000  rejected 0" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_read"] == 4000 == sum(summary["splits"].values())
    assert set(summary["splits"]) == {"train", "eval"}
    assert abs(summary["splits"]["train"] / 4000 - 0.75) < 0.04
    assert summary["features"]["carrier"] == "BYTES" and summary["features"]["dep_delay"] == "INT"
    for split in ("train", "eval"):
        names = [os.path.basename(p) for p in glob.glob(str(out / f"Split-{split}" / "*"))]
        assert names and all(n.startswith("data_tfrecord-") and n.endswith(".gz") for n in names)
    assert (out / "rejected" / "rejected-00000-of-00001.jsonl").read_text() == ""


def test_rejected_rows_written_and_reconciled(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,x\n2\nthree,y\n4,z\n")
    summary = run_example_gen(
        {None: ReadExamples(str(src), schema={"a": "INT", "b": "BYTES"})},
        str(tmp_path / "ex"),
        splits={"train": 1},
    )
    assert (summary["rows_read"], summary["rows_accepted"], summary["rows_rejected"]) == (4, 2, 2)
    lines = (
        (tmp_path / "ex" / "rejected" / "rejected-00000-of-00001.jsonl").read_text().splitlines()
    )
    rejected = sorted((json.loads(line) for line in lines), key=lambda r: r["row"])
    assert [r["row"] for r in rejected] == [3, 4]
    assert rejected[0]["source"] == str(src) and "expected 2 fields" in rejected[0]["reason"]
    assert "'three' is not an integer" in rejected[1]["reason"]


def test_tfrecord_examples_reingest_with_same_split_sizes(tmp_path):
    src = datasets.penguins_csv()
    first = run_example_gen({None: ReadExamples(src)}, str(tmp_path / "a"))
    again = run_example_gen(
        {None: ReadExamples(str(tmp_path / "a" / "Split-*" / "*"))}, str(tmp_path / "b")
    )
    assert again["rows_read"] == first["rows_accepted"] == 344
    # Splitting hashes values, so the same rows land in the same splits.
    assert again["splits"] == first["splits"]


def test_hash_columns_unknown_column_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"hash column\(s\) \['nope'\]"):
        run_example_gen(
            {None: ReadExamples(datasets.penguins_csv())},
            str(tmp_path / "x"),
            hash_columns=["nope"],
        )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "/no/such/file.csv"], "/no/such/file.csv: no such file"),
        (["--input", "{tmp}/empty.csv"], "empty.csv: empty CSV file"),
        (["--input", "{tmp}/corrupt.tfrecord"], "corrupt.tfrecord"),
        (["--input", "{tmp}/empty.csv", "--splits", "train"], "bad split 'train'"),
        (["--input", "{tmp}/data.bin"], "cannot tell the format"),
        (["--input", "{tmp}/span-{SPAN}-{YYYY}/*"], "{SPAN} and a date ({YYYY}) at once"),
        (
            ["--input", "{tmp}", "--range-config", '{"static_range": {}}'],
            "range_config static_range needs both start_span_number and end_span_number",
        ),
    ],
)
def test_cli_input_errors_exit_2_naming_the_file(tmp_path, args, message):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "data.bin").write_bytes(b"x")
    (tmp_path / "corrupt.tfrecord").write_bytes(b"\x05" + b"\x00" * 7 + b"garbage-crc-and-data")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = _run("examples", *args, "--output", str(tmp_path / "out"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert message in proc.stderr


def test_cli_usage_error_exit_2():
    proc = _run("examples")
    assert proc.returncode == 2 and "--output" in proc.stderr


def test_presplit_inputs_are_written_as_their_splits(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    (tmp_path / "eval.csv").write_text("a,b\n4,w\nfive,v\n")
    schema = {"a": "INT", "b": "BYTES"}
    reads = {s: ReadExamples(str(tmp_path / f"{s}.csv"), schema=schema) for s in ("train", "eval")}
    out = tmp_path / "ex"
    summary = run_example_gen(reads, str(out))
    assert summary["splits"] == {"train": 3, "eval": 1}
    assert (summary["rows_read"], summary["rows_accepted"], summary["rows_rejected"]) == (5, 4, 1)
    assert summary["input"] == {s: str(tmp_path / f"{s}.csv") for s in ("train", "eval")}
    assert summary["format"] == {"train": "csv", "eval": "csv"} and summary["features"] == schema
    assert json.loads((out / "summary.json").read_text()) == summary
    # Unchanged: each split holds its own input's rows.
    again = run_example_gen(
        {None: ReadExamples(str(out / "Split-train" / "*"))}, str(tmp_path / "b"), splits={"all": 1}
    )
    assert again["splits"] == {"all": 3}
    rejected = (out / "rejected" / "rejected-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(r)["source"] for r in rejected] == [str(tmp_path / "eval.csv")]


def test_presplit_inputs_refuse_splits_and_differing_types(tmp_path):
    from conveyor.beam_utils.errors import InputError, UsageError

    (tmp_path / "train.csv").write_text("a,b\n1,x\n")
    (tmp_path / "eval.csv").write_text("a,b\n1.5,x\n")
    reads = {s: ReadExamples(str(tmp_path / f"{s}.csv")) for s in ("train", "eval")}
    with pytest.raises(
        UsageError, match=r"splits \{'train': 1\} and pre-split examples \['eval', 'train'\]"
    ):
        run_example_gen(reads, str(tmp_path / "x"), splits={"train": 1})
    with pytest.raises(
        InputError, match=r"eval.csv \(split 'eval'\): feature types differ .*train.csv.* \['a'\]"
    ):
        run_example_gen(reads, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_fingerprint_follows_remote_input_files(object_store):
    """A changed file on any Beam filesystem changes ExampleGen's cache key; an unchanged one does not."""
    from conveyor.components.example_gen.node import ExampleGen

    def put(path, data, updated):
        object_store.objects[path] = data
        object_store.updated[path] = updated

    put("teststore://bucket/data/a.csv", b"x,y\n1,2\n", 1000.0)
    put("teststore://bucket/data/b.csv", b"x,y\n3,4\n", 1000.0)
    gen = ExampleGen(input_base="teststore://bucket/data/*.csv")
    first = gen.fingerprint()
    assert gen.fingerprint() == first  # nothing changed
    put("teststore://bucket/data/b.csv", b"x,y\n3,4\n5,6\n", 2000.0)
    changed = gen.fingerprint()
    assert changed != first
    put("teststore://bucket/data/b.csv", b"x,y\n3,4\n5,7\n", 3000.0)  # same size
    assert gen.fingerprint() not in (first, changed)
    put("teststore://bucket/data/c.csv", b"x,y\n", 3000.0)  # a new file
    assert gen.fingerprint() != changed


def test_cli_input_folder_reads_all_its_files(tmp_path, capsys):
    from conftest import run_conveyor_in_process

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x,y\n1,a\n2,b\n")
    (tmp_path / "in" / "b.csv").write_text("x,y\n3,c\n")
    out = tmp_path / "out"
    assert run_conveyor_in_process("examples", "--input", tmp_path / "in", "--output", out) == 0
    assert "read 3  accepted 3" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == str(tmp_path / "in" / "*") and summary["rows_read"] == 3
