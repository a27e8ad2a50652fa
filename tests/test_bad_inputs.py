"""Bad inputs through every command that reads examples.

One table of bad inputs (damaged, mis-encoded or malformed files of each
format) walks through ``examples``, ``statistics``, ``transform``, ``evaluate``
and ``infer``; the streaming ``monitor`` watches a folder holding all of them
beside one good file. For each pair the test asserts what the README promises:
either exit status 2 with a message naming the file, and nothing written that
looks like a complete output; or the bad rows as rejected rows, counted, with
rows read = accepted + rejected. A file that is readable after all (a UTF-16
CSV with its byte-order mark) must read as its UTF-8 twin does.

The commands run in this process (``conveyor.orchestration.cli.main``), so
TensorFlow and Beam are imported once for the whole table.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.orchestration.cli import main

ROWS = 40
HEADER = "x,y,label,score,name"


def _good_rows(n: int = ROWS) -> list[str]:
    rng = random.Random(7)
    return [f"{i},{rng.uniform(-3, 3):.4f},{i % 2},{rng.random():.4f},n{i % 5}" for i in range(n)]


def _good_csv_text() -> str:
    return HEADER + "\n" + "\n".join(_good_rows()) + "\n"


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tfrecord(records: list[bytes]) -> bytes:
    out = bytearray()
    for r in records:
        length = struct.pack("<Q", len(r))
        out += (
            length + struct.pack("<I", _masked_crc(length)) + r + struct.pack("<I", _masked_crc(r))
        )
    return bytes(out)


def _examples(n: int = ROWS) -> list[bytes]:
    from tensorflow.core.example import example_pb2

    records = []
    for line in _good_rows(n):
        x, y, label, score, name = line.split(",")
        ex = example_pb2.Example()
        f = ex.features.feature
        f["x"].int64_list.value.append(int(x))
        f["y"].float_list.value.append(float(y))
        f["label"].int64_list.value.append(int(label))
        f["score"].float_list.value.append(float(score))
        f["name"].bytes_list.value.append(name.encode())
        records.append(ex.SerializeToString())
    return records


# name -> (file name, expectation). Expectations:
#   ("error", text): exit 2, the message names the file and contains text;
#   ("rejected", n): exit 0, n rows rejected, the rest accepted;
#   ("same",): exit 0, read exactly as the good CSV.
CASES = {
    "missing file": ("absent.csv", ("error", "no such file")),
    "empty csv": ("empty.csv", ("error", "empty")),
    "binary garbage csv": ("garbage.csv", ("error", "")),
    "truncated csv.gz": ("cut.csv.gz", ("error", "")),
    "invalid utf-8 csv": ("latin1.csv", ("error", "UTF-8")),
    "repeated csv header": ("dup_header.csv", ("error", "repeats")),
    "csv row with too few fields": ("short_row.csv", ("rejected", 1)),
    "utf-16 csv with bom": ("utf16.csv", ("same",)),
    "parquet with repeated columns": ("dup.parquet", ("error", "repeat")),
    "garbage parquet": ("garbage.parquet", ("error", "")),
    "tfrecord with a bad crc": ("badcrc.tfrecord", ("error", "")),
    "truncated gzip tfrecord": ("cut.tfrecord.gz", ("error", "")),
    "tfrecord with one record not a tf.Example": ("one_bad.tfrecord", ("rejected", 1)),
}


def _write_case(folder: Path, name: str) -> Path:
    file_name = CASES[name][0]
    path = folder / file_name
    good = _good_csv_text()
    if name == "missing file":
        return path
    if name == "empty csv":
        path.write_bytes(b"")
    elif name == "binary garbage csv":
        path.write_bytes(random.Random(1).randbytes(4096))
    elif name == "truncated csv.gz":
        path.write_bytes(gzip.compress(good.encode() * 20)[:-40])
    elif name == "invalid utf-8 csv":
        rows = _good_rows()
        rows[20] = rows[20].replace("n0", "caf\xe9")
        path.write_bytes((HEADER + "\n" + "\n".join(rows) + "\n").encode("latin-1"))
    elif name == "repeated csv header":
        path.write_text("x,x,label\n1,2,0\n")
    elif name == "csv row with too few fields":
        rows = _good_rows()
        rows[10] = "1,2"
        path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    elif name == "utf-16 csv with bom":
        path.write_bytes(good.encode("utf-16"))
    elif name == "parquet with repeated columns":
        pq.write_table(pa.table([pa.array([1, 2, 3]), pa.array([4, 5, 6])], names=["x", "x"]), path)
    elif name == "garbage parquet":
        path.write_bytes(b"PAR1" + random.Random(2).randbytes(2000) + b"PAR1")
    elif name == "tfrecord with a bad crc":
        data = bytearray(_tfrecord(_examples()))
        data[30] ^= 0xFF
        path.write_bytes(bytes(data))
    elif name == "truncated gzip tfrecord":
        path.write_bytes(gzip.compress(_tfrecord(_examples()))[:-60])
    elif name == "tfrecord with one record not a tf.Example":
        records = _examples()
        records[5] = b"\xff\xff\xff\xff not a protobuf"
        path.write_bytes(_tfrecord(records))
    else:  # pragma: no cover - a case without a writer is a bug in this table
        raise AssertionError(name)
    return path


PREP = """
import tensorflow as tf
import tensorflow_transform as tft


def preprocessing_fn(inputs):
    y = tf.sparse.to_dense(inputs["y"]) if isinstance(inputs["y"], tf.SparseTensor) else inputs["y"]
    return {"y_z": tft.scale_to_z_score(tf.reshape(y, [-1]))}
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A SavedModel whose one signature takes the FLOAT column ``y``."""
    import tensorflow as tf

    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="y")])
        def serve(self, y):
            return {"prob": tf.sigmoid(y)}

    path = str(tmp_path_factory.mktemp("model") / "scorer")
    module = Scorer()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def prep_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("prep") / "prep.py"
    path.write_text(PREP)
    return str(path)


def _command(command: str, path: Path, out: Path, model_dir: str, prep_file: str) -> list[str]:
    args = [command, "--input", str(path), "--output", str(out)]
    if command == "transform":
        args += ["--module-file", prep_file]
    elif command == "evaluate":
        args += ["--prediction-key", "score", "--label-key", "label", "--no-images"]
    elif command == "infer":
        args += ["--model", model_dir]
    return args


# What a complete output of each command holds; none of it may exist after an error.
COMPLETE = {
    "examples": ["summary.json"],
    "statistics": ["statistics_summary.json", "FeatureStats.pb"],
    "transform": ["transform_summary.json", "transform_graph"],
    "evaluate": ["metrics.json", "blessing"],
    "infer": ["inference_summary.json", "inference_result"],
}


def _counts(command: str, out: Path) -> tuple[int, int, int]:
    """(read, accepted, rejected) as the command's own output records them."""
    if command == "examples":
        s = json.loads((out / "summary.json").read_text())
        return s["rows_read"], s["rows_accepted"], s["rows_rejected"]
    if command == "statistics":
        c = json.loads((out / "statistics_summary.json").read_text())
        c = c.get("input", c)
        return c["read"], c["accepted"], c["rejected"]
    if command == "transform":
        s = json.loads((out / "transform_summary.json").read_text())
        rejected = sum(s["rows_rejected"].values())
        accepted = sum(s["rows"].values())
        return accepted + rejected, accepted, rejected
    if command == "evaluate":
        rejected = int(json.loads((out / "rejected_rows_count.json").read_text()))
        metrics = json.loads((out / "metrics.json").read_text())
        overall = metrics[0] if isinstance(metrics, list) else metrics
        accepted = int(_find_example_count(overall))
        return accepted + rejected, accepted, rejected
    if command == "infer":
        s = json.loads((out / "inference_summary.json").read_text())
        return s["rows_read"], s["examples_in"], s["rows_rejected_on_read"]
    raise AssertionError(command)


def _find_example_count(entry) -> float:
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key == "example_count" and isinstance(value, (int, float)):
                return value
            found = _find_example_count(value)
            if found is not None:
                return found
    if isinstance(entry, list):
        for value in entry:
            found = _find_example_count(value)
            if found is not None:
                return found
    return None


COMMANDS = ["examples", "statistics", "transform", "evaluate", "infer"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_through_command(case, command, tmp_path, capsys, model_dir, prep_file):
    path = _write_case(tmp_path, case)
    out = tmp_path / "out"
    expect = CASES[case][1]
    status = main(_command(command, path, out, model_dir, prep_file))
    captured = capsys.readouterr()
    if expect[0] == "error":
        assert status == 2, (status, captured.err[-3000:])
        assert path.name in captured.err, captured.err[-3000:]
        assert expect[1].lower() in captured.err.lower(), captured.err[-3000:]
        assert "Traceback" not in captured.err, captured.err[-3000:]
        for name in COMPLETE[command]:
            assert not (out / name).exists(), f"{command} left {name} after an error"
        return
    assert status == 0, (status, captured.err[-3000:])
    read, accepted, rejected = _counts(command, out)
    assert read == accepted + rejected
    if expect[0] == "rejected":
        assert (read, rejected) == (ROWS, expect[1])
    else:
        assert (read, accepted, rejected) == (ROWS, ROWS, 0)


def test_utf16_csv_reads_as_its_utf8_twin(tmp_path, capsys):
    twin = tmp_path / "utf8.csv"
    twin.write_text(_good_csv_text())
    path = _write_case(tmp_path, "utf-16 csv with bom")
    assert main(["examples", "--input", str(twin), "--output", str(tmp_path / "a")]) == 0
    assert main(["examples", "--input", str(path), "--output", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    for key in ("rows_read", "rows_accepted", "splits", "features"):
        assert a[key] == b[key]


def test_monitor_skips_and_counts_every_bad_file(tmp_path, capsys):
    watched = tmp_path / "incoming"
    watched.mkdir()
    bad = [
        c
        for c, (f, e) in CASES.items()
        if e[0] == "error" and f.endswith(".csv") and c != "missing file"
    ]
    for case in bad:
        _write_case(watched, case)
    (watched / "good.csv").write_text(_good_csv_text())
    schema_dir = tmp_path / "schema_src"
    assert (
        main(["statistics", "--input", str(watched / "good.csv"), "--output", str(schema_dir)]) == 0
    )
    assert (
        main(
            [
                "schema",
                "--statistics",
                str(schema_dir / "FeatureStats.pb"),
                "--output",
                str(tmp_path / "schema.pbtxt"),
            ]
        )
        == 0
    )
    out = tmp_path / "monitor"
    status = main(
        [
            "monitor",
            "--input",
            str(watched / "*.csv"),
            "--schema",
            str(tmp_path / "schema.pbtxt"),
            "--output",
            str(out),
            "--window-seconds",
            "3600",
            "--poll-interval",
            "0.5",
            "--stop-after",
            "6",
        ]
    )
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert status == 0, log[-3000:]
    for case in bad:
        assert CASES[case][0] in log, (case, log[-3000:])
    assert os.path.isdir(out)
