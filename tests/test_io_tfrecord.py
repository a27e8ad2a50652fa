"""TFRecord and Parquet reading, writing in TFX's layout, and round trips."""

import glob
import gzip
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_helpers import run_read, sort_table
from tfx_bsl.coders import example_coder

from conveyor.beam_utils import arrow, tfrecord_io
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples, WriteExamples
from conveyor.beam_utils.options import pipeline_options

SCHEMA = arrow.make_schema({"id": "INT", "x": "FLOAT", "s": "BYTES", "tags": "BYTES"})


def _batch(n=500, seed=0):
    rng = np.random.default_rng(seed)
    ids = pa.array(np.arange(n))
    xs = pa.array(rng.normal(size=n).astype(np.float32))
    xs = pa.array([None if i % 7 == 0 else v for i, v in enumerate(xs.to_pylist())], pa.float32())
    s = pa.array([f"v{i % 13}" if i % 5 else None for i in range(n)])
    tags = pa.array(
        [[f"t{j}".encode() for j in range(i % 4)] if i % 11 else None for i in range(n)],
        pa.large_list(pa.large_binary()),
    )
    return pa.RecordBatch.from_arrays(
        [arrow.to_column(ids, SCHEMA.field("id").type), arrow.to_column(xs, SCHEMA.field("x").type),
         arrow.to_column(s, SCHEMA.field("s").type), tags],
        schema=SCHEMA,
    )


def _write_tfrecord(path, batch, compress=True):
    records = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    tfrecord_io.write_records(str(path), records, compress=compress)
    return records


@pytest.mark.parametrize("compress", [True, False])
def test_tfrecord_plain_and_gzip_detected_from_content(tmp_path, compress):
    path = tmp_path / "data.tfrecord"  # no .gz in the name: gzip is found from the bytes
    batch = _batch()
    _write_tfrecord(path, batch, compress)
    read = ReadExamples(str(path), schema=SCHEMA, batch_size=128)
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rejected == [] and rows == 500
    assert sort_table(table, "id").equals(pa.Table.from_batches([batch]))


def test_tfrecord_schema_inferred(tmp_path):
    path = tmp_path / "data.tfrecord.gz"
    _write_tfrecord(path, _batch())
    types = arrow.feature_types(ReadExamples(str(path)).arrow_schema)
    assert types == {"id": "INT", "x": "FLOAT", "s": "BYTES", "tags": "BYTES"}


def test_corrupt_tfrecord_stops_with_file_and_record(tmp_path):
    path = tmp_path / "bad.tfrecord"
    _write_tfrecord(path, _batch(), compress=False)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(Exception, match=r"bad.tfrecord: corrupt TFRecord: record \d+ at byte \d+"):
        run_read(ReadExamples(str(path), schema=SCHEMA), tmp_path / "w")


def test_truncated_tfrecord_stops_with_file(tmp_path):
    path = tmp_path / "cut.tfrecord.gz"
    _write_tfrecord(path, _batch(), compress=False)
    raw = path.read_bytes()
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(Exception, match=r"cut.tfrecord.gz: truncated TFRecord: record 499"):
        run_read(ReadExamples(str(path), schema=SCHEMA), tmp_path / "w")


def test_crc_check_detects_flipped_bit():
    import io

    rec = b"hello world"
    buf = io.BytesIO()
    header = len(rec).to_bytes(8, "little")
    buf.write(header + tfrecord_io.masked_crc32c(header).to_bytes(4, "little") + rec)
    buf.write(tfrecord_io.masked_crc32c(rec).to_bytes(4, "little"))
    good = buf.getvalue()
    assert list(tfrecord_io.iter_records(io.BytesIO(good), "m")) == [rec]
    bad = bytearray(good)
    bad[14] ^= 1
    with pytest.raises(InputError, match="m: corrupt TFRecord: record 0 at byte 0 fails its data CRC"):
        list(tfrecord_io.iter_records(io.BytesIO(bytes(bad)), "m"))


def test_record_of_wrong_type_is_rejected_not_fatal(tmp_path):
    good = example_coder.RecordBatchToExamplesEncoder().encode(_batch(20))
    odd = pa.RecordBatch.from_arrays(
        [pa.array([[1.5]], pa.large_list(pa.float32()))], names=["id"]
    )  # id as a float: does not decode as INT
    bad = example_coder.RecordBatchToExamplesEncoder().encode(odd)
    path = tmp_path / "mixed.tfrecord.gz"
    tfrecord_io.write_records(str(path), good[:10] + bad + [b"not a proto \xff"] + good[10:])
    table, rejected, rows = run_read(ReadExamples(str(path), schema=SCHEMA), tmp_path / "w")
    assert rows == 22 and table.num_rows == 20, rejected
    assert sorted(r["row"] for r in rejected) == [11, 12]
    assert all("mixed.tfrecord.gz" == os.path.basename(r["source"]) for r in rejected)


def test_parquet_flat_and_list_columns(tmp_path):
    t = pa.table({
        "i": pa.array([1, None, 3], pa.int32()),
        "f": pa.array([1.5, 2.5, None]),
        "s": pa.array(["a", None, "c"]),
        "b": pa.array([True, False, None]),
        "l": pa.array([[1.0, 2.0], [], None], pa.list_(pa.float64())),
    })
    pq.write_table(t, tmp_path / "t.parquet")
    read = ReadExamples(str(tmp_path / "t.parquet"))
    assert arrow.feature_types(read.arrow_schema) == {"i": "INT", "f": "FLOAT", "s": "BYTES", "b": "INT", "l": "FLOAT"}
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 3 and rejected == []
    assert table.to_pydict() == {
        "i": [[1], None, [3]], "f": [[1.5], [2.5], None], "s": [[b"a"], None, [b"c"]],
        "b": [[1], [0], None], "l": [[1.0, 2.0], [], None],
    }


def test_not_a_parquet_file_names_it(tmp_path):
    good = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": [1]}), good)
    (tmp_path / "b.parquet").write_bytes(b"garbage")
    with pytest.raises(Exception, match="b.parquet: not a Parquet file"):
        run_read(ReadExamples(str(tmp_path / "*.parquet")), tmp_path / "w")


def test_write_layout_and_csv_tfrecord_round_trip(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("id,name,score\n1,a,0.5\n2,,NA\n3,\"c,d\",-2\n4,e,1e10\n")
    read = ReadExamples(str(csv))
    first, _, _ = run_read(read, tmp_path / "w1")
    with beam.Pipeline(options=pipeline_options()) as p:
        (p | "R" >> ReadExamples(str(csv))).examples | WriteExamples(str(tmp_path / "ex"), split="train", num_shards=2)
    files = sorted(os.path.basename(f) for f in glob.glob(str(tmp_path / "ex" / "Split-train" / "*")))
    assert files == ["data_tfrecord-00000-of-00002.gz", "data_tfrecord-00001-of-00002.gz"]
    back = ReadExamples(str(tmp_path / "ex" / "Split-train" / "*"))
    second, rejected, rows = run_read(back, tmp_path / "w2")
    assert rows == 4 and rejected == []
    # Same values and the same types, whatever the column order of the decoder.
    second = second.select(first.column_names)
    assert sort_table(second, "id").equals(sort_table(first, "id"))
    assert second.schema.equals(first.schema)
