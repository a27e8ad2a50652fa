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
        [
            arrow.to_column(ids, SCHEMA.field("id").type),
            arrow.to_column(xs, SCHEMA.field("x").type),
            arrow.to_column(s, SCHEMA.field("s").type),
            tags,
        ],
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


@pytest.mark.parametrize(
    "name,compress,message",
    [
        # A plain file: its records' CRCs name the damaged record.
        ("bad.tfrecord", False, r"bad.tfrecord: corrupt TFRecord: record \d+ at byte \d+"),
        # A gzip file: the stream's own checks fail first.
        ("bad.tfrecord.gz", True, r"bad.tfrecord.gz: corrupt gzip stream"),
    ],
)
def test_damaged_file_stops_with_its_name(tmp_path, name, compress, message):
    path = tmp_path / name
    _write_tfrecord(path, _batch(), compress=compress)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(Exception, match=message):
        run_read(ReadExamples(str(path), schema=SCHEMA), tmp_path / "w")


def test_record_crc_checked_inside_a_gzip_stream(tmp_path):
    # A record written with a wrong CRC and then compressed: the gzip stream is
    # sound, the record is not.
    records = example_coder.RecordBatchToExamplesEncoder().encode(_batch())
    raw = bytearray(tfrecord_io.frame(records))
    damaged = len(tfrecord_io.frame(records[:300]))  # records[300]'s header: record 301 from 1
    raw[damaged + 12 + len(records[300])] ^= 0x01  # its data CRC: the record itself still decodes
    path = tmp_path / "crc.tfrecord.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(
        Exception,
        match=rf"crc.tfrecord.gz: corrupt TFRecord: record 301 at byte {damaged} fails its data CRC",
    ):
        run_read(ReadExamples(str(path), schema=SCHEMA), tmp_path / "w")


def test_truncated_tfrecord_stops_with_file(tmp_path):
    path = tmp_path / "cut.tfrecord.gz"
    _write_tfrecord(path, _batch(), compress=False)
    raw = path.read_bytes()
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(Exception, match=r"cut.tfrecord.gz: truncated TFRecord: record 500 "):
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
    with pytest.raises(
        InputError, match="m: corrupt TFRecord: record 1 at byte 0 fails its data CRC"
    ):
        list(tfrecord_io.iter_records(io.BytesIO(bytes(bad)), "m"))


def test_damaged_length_mid_file_stops_there_not_at_the_end():
    # A length header whose CRC fails must not be trusted to buffer the rest of the stream.
    import io
    import struct

    out = io.BytesIO()
    for i in range(2000):
        rec = bytes([i % 251]) * 300
        header = struct.pack("<Q", len(rec))
        out.write(header + tfrecord_io.masked_crc32c(header).to_bytes(4, "little") + rec)
        out.write(tfrecord_io.masked_crc32c(rec).to_bytes(4, "little"))
    raw = bytearray(out.getvalue())
    raw[316 * 1000 + 5] ^= 0x40  # a high byte of record 1001 (from 1)'s length: ~1 TB
    stream = io.BytesIO(bytes(raw))
    with pytest.raises(
        InputError, match="m: corrupt TFRecord: record 1001 at byte 316000 fails its length CRC"
    ):
        for _ in tfrecord_io.iter_record_chunks(stream, "m", chunk_size=4096, check_crcs=False):
            pass
    assert stream.tell() < len(raw) * 0.6  # stopped near the damage


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
    t = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int32()),
            "f": pa.array([1.5, 2.5, None]),
            "s": pa.array(["a", None, "c"]),
            "b": pa.array([True, False, None]),
            "l": pa.array([[1.0, 2.0], [], None], pa.list_(pa.float64())),
        }
    )
    pq.write_table(t, tmp_path / "t.parquet")
    read = ReadExamples(str(tmp_path / "t.parquet"))
    assert arrow.feature_types(read.arrow_schema) == {
        "i": "INT",
        "f": "FLOAT",
        "s": "BYTES",
        "b": "INT",
        "l": "FLOAT",
    }
    table, rejected, rows = run_read(read, tmp_path / "w")
    assert rows == 3 and rejected == []
    assert table.to_pydict() == {
        "i": [[1], None, [3]],
        "f": [[1.5], [2.5], None],
        "s": [[b"a"], None, [b"c"]],
        "b": [[1], [0], None],
        "l": [[1.0, 2.0], [], None],
    }


def test_not_a_parquet_file_names_it(tmp_path):
    good = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": [1]}), good)
    (tmp_path / "b.parquet").write_bytes(b"garbage")
    with pytest.raises(Exception, match="b.parquet: not a Parquet file"):
        run_read(ReadExamples(str(tmp_path / "*.parquet")), tmp_path / "w")


def test_write_layout_and_csv_tfrecord_round_trip(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text('id,name,score\n1,a,0.5\n2,,NA\n3,"c,d",-2\n4,e,1e10\n')
    read = ReadExamples(str(csv))
    first, _, _ = run_read(read, tmp_path / "w1")
    with beam.Pipeline(options=pipeline_options()) as p:
        (p | "R" >> ReadExamples(str(csv))).examples | WriteExamples(
            str(tmp_path / "ex"), split="train", num_shards=2
        )
    files = sorted(
        os.path.basename(f) for f in glob.glob(str(tmp_path / "ex" / "Split-train" / "*"))
    )
    assert files == ["data_tfrecord-00000-of-00002.gz", "data_tfrecord-00001-of-00002.gz"]
    back = ReadExamples(str(tmp_path / "ex" / "Split-train" / "*"))
    second, rejected, rows = run_read(back, tmp_path / "w2")
    assert rows == 4 and rejected == []
    # Same values and the same types, whatever the column order of the decoder.
    second = second.select(first.column_names)
    assert sort_table(second, "id").equals(sort_table(first, "id"))
    assert second.schema.equals(first.schema)


# ---------------------------------------------------------------- the C decoder
# example_parsing.ExampleDecoder (beam_utils/_wire.c) against tfx-bsl's decoder.

WIDE = arrow.make_schema(
    {"i": "INT", "f": "FLOAT", "b": "BYTES", "i2": "INT", "f2": "FLOAT", "b2": "BYTES"}
)
_KINDS = {"INT": "int64_list", "FLOAT": "float_list", "BYTES": "bytes_list"}
_SPECIAL_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-45, 3.4e38, -1.5]


def _exact(records, schema=WIDE):
    decoder = example_coder.ExamplesToRecordBatchDecoder(
        arrow.to_metadata_schema(schema).SerializeToString()
    )
    return arrow.conform(decoder.DecodeBatch(records), schema)


def _bits(batch):
    """The batch with float values as their int32 bits (NaN compares equal to itself)."""
    cols = []
    for col in batch.columns:
        if col.type.value_type == pa.float32():
            col = pa.LargeListArray.from_arrays(
                arrow._offsets_with_nulls(col), col.values.view(pa.int32())
            )
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _assert_same(got, want):
    got.validate(full=True)
    assert got.schema.equals(want.schema)
    assert _bits(got).equals(_bits(want)), (got.to_pydict(), want.to_pydict())


def _random_values(rng, kind, n):
    if kind == "INT":
        return [int(v) for v in rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)]
    if kind == "FLOAT":
        return [
            float(rng.choice(_SPECIAL_FLOATS)) if rng.random() < 0.3 else float(rng.normal())
            for _ in range(n)
        ]
    return [rng.bytes(int(rng.integers(0, 12))) for _ in range(n)]  # arbitrary bytes, some b""


def _random_examples(n, seed=0, empty_lists=False):
    """Serialized tf.Examples of WIDE's features: some missing, lists of 1-5 values, extra features."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        ex = tf.train.Example()
        for name, kind in arrow.feature_types(WIDE).items():
            draw = rng.random()
            if draw < 0.25:
                continue  # missing
            values = getattr(ex.features.feature[name], _KINDS[kind])
            if empty_lists and draw < 0.3:
                values.SetInParent()  # present, no values
            else:
                values.value.extend(_random_values(rng, kind, int(rng.integers(1, 6))))
        if rng.random() < 0.2:
            ex.features.feature["not_in_schema"].float_list.value.append(1.0)
        records.append(ex.SerializeToString())
    return records


def _decoder(schema=WIDE):
    from conveyor.beam_utils.example_parsing import ExampleDecoder

    return ExampleDecoder(schema)


def _tfx_bsl_or_error(records, schema=WIDE):
    try:
        return _exact(records, schema)
    except Exception as e:  # tfx-bsl raises RuntimeError for a record it cannot parse
        return e


def test_decoder_equals_tfx_bsl_on_varied_records():
    for seed in range(3):
        # Missing features, present empty lists, extra features, an empty record.
        records = _random_examples(300, seed, empty_lists=seed > 0) + [b""]
        _assert_same(_decoder().decode(records), _exact(records))
    # Records as tfx-bsl encodes a batch: a missing feature is an empty Feature, [] an empty list.
    batch = _batch()
    records = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    got = _decoder(SCHEMA).decode(records)
    assert got.equals(_exact(records, SCHEMA)) and got.equals(batch)
    assert [] in got.column("tags").to_pylist() and None in got.column("tags").to_pylist()


def test_decoder_all_missing_no_records_and_framed_in_place():
    got = _decoder().decode([b"", b"", b""])
    _assert_same(got, _exact([b"", b"", b""]))
    assert got.column(0).null_count == 3
    assert _decoder().decode([]).num_rows == 0
    # Records read in place from a larger buffer, in any order.
    records = _random_examples(20, seed=4)
    blob = b"junk" + b"".join(records)
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    starts = 4 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    order = np.arange(20)[::-1]
    got = _decoder().decode_framed(blob, starts[order], lengths[order])
    _assert_same(got, _exact([records[i] for i in order]))


def _entry(key: bytes, feature: bytes) -> bytes:
    entry = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
    return b"\x0a" + bytes([len(entry)]) + entry


def _example(*entries: bytes) -> bytes:
    features = b"".join(entries)
    return b"\x0a" + bytes([len(features)]) + features


_INT5 = b"\x1a\x03\x0a\x01\x05"  # int64_list, packed [5]
_BYTES_A = b"\x0a\x03\x0a\x01a"  # bytes_list [b"a"]

# Encodings protobuf's serializers do not write but every protobuf parser reads.
_READ_AS_PROTOBUF_DOES = {
    "unpacked int64": _example(_entry(b"i", b"\x1a\x04\x08\x05\x08\x06")),
    "unpacked float": _example(_entry(b"f", b"\x12\x0a\x0d\x00\x00\x80\x3f\x0d\x00\x00\x00\x40")),
    "packed in two runs": _example(_entry(b"i", b"\x1a\x06\x0a\x01\x05\x0a\x01\x06")),
    "empty packed run": _example(
        _entry(b"i", b"\x1a\x02\x0a\x00"), _entry(b"f", b"\x12\x02\x0a\x00")
    ),
    "negative and largest int64": _example(
        _entry(b"i", b"\x1a\x15\x0a\x13" + b"\xff" * 9 + b"\x01" + b"\xff" * 8 + b"\x7f")
    ),
    "unknown fields everywhere": b"\x28\x01"
    + _example(
        b"\x18\x07",
        _entry(b"i", b"\x20\x01" + b"\x1a\x05\x0a\x01\x05\x10\x02"),
        _entry(b"b", b"\x0a\x05\x0a\x01a\x10\x01"),
    ),
    "value written before key": _example(
        b"\x0a\x0a\x12" + bytes([len(_INT5)]) + _INT5 + b"\x0a\x01i"
    ),
    "wire type of another field": _example(
        _entry(b"i", b"\x1a\x05\x0d\x01\x02\x03\x04")
    ),  # a fixed32: skipped
    "entry with no value": _example(b"\x0a\x03\x0a\x01i"),
    "Feature with no list": _example(_entry(b"i", b""), _entry(b"b", _BYTES_A)),
    "features in two messages": _example(_entry(b"i", _INT5)) + _example(_entry(b"b", _BYTES_A)),
    "other feature with two lists": _example(_entry(b"i", _INT5), _entry(b"zz", _INT5 + _BYTES_A)),
}


@pytest.mark.parametrize("case", sorted(_READ_AS_PROTOBUF_DOES))
def test_decoder_reads_non_canonical_encodings_as_protobuf_does(case):
    record = _READ_AS_PROTOBUF_DOES[case]
    _assert_same(_decoder().decode([record]), _exact([record]))


# Records the decoder refuses (with the reason it gives); tfx-bsl decides them.
_REFUSED = {
    "garbage": (b"not a proto \xff", "malformed"),
    "truncated": (_example(_entry(b"i", _INT5))[:-2], "malformed"),
    "field number 0": (b"\x02\x00" + _example(_entry(b"i", _INT5)), "malformed"),
    "wrong type": (_example(_entry(b"i", _BYTES_A)), "another type"),
    "float list of 3 bytes": (_example(_entry(b"f", b"\x12\x05\x0a\x03abc")), "float_list"),
    "malformed outside the schema": (
        _example(_entry(b"i", _INT5), _entry(b"zz", b"\x1a\x02\x0a\x09")),
        "malformed",
    ),
    "name not UTF-8": (_example(_entry(b"\xff", _BYTES_A)), "UTF-8"),
    "feature twice": (
        _example(_entry(b"i", _INT5), _entry(b"i", b"\x1a\x03\x0a\x01\x07")),
        "twice",
    ),
    "Feature with two lists": (_example(_entry(b"i", _INT5 + _INT5)), "two lists"),
}


@pytest.mark.parametrize("case", sorted(_REFUSED))
def test_decoder_refuses_naming_the_record(case):
    from conveyor.beam_utils.example_parsing import NotDecoded

    record, reason = _REFUSED[case]
    records = _random_examples(3, seed=9) + [record]
    with pytest.raises(NotDecoded, match=f"record 3: .*{reason}"):
        _decoder().decode(records)


def test_decoder_never_accepts_what_tfx_bsl_refuses_fuzzed():
    # Damaged records (bytes changed, cut, inserted): the decoder either refuses
    # the record or decodes it exactly as tfx-bsl does, and never crashes.
    from conveyor.beam_utils.example_parsing import NotDecoded

    rng = np.random.default_rng(2024)
    base = _random_examples(100, seed=1, empty_lists=True)
    outcomes = {"same": 0, "refused": 0}
    for _ in range(3000):
        record = bytearray(base[rng.integers(len(base))])
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(len(record) + 1))
            op = rng.integers(3)
            if op == 0 and at < len(record):
                record[at] = int(rng.integers(256))
            elif op == 1:
                del record[at:]
            else:
                record.insert(at, int(rng.integers(256)))
        record = bytes(record)
        try:
            got = _decoder().decode([record])
        except NotDecoded:
            outcomes["refused"] += 1
            continue
        want = _tfx_bsl_or_error([record])
        assert not isinstance(want, Exception), (record, want)
        _assert_same(got, want)
        outcomes["same"] += 1
    assert outcomes["same"] > 100 and outcomes["refused"] > 100, outcomes


def _read_fn_batches(path, schema, batch_size):
    """Runs ReadTFRecordFn on one file; returns (batches, rejected rows, sizes of the batches decoded in C)."""
    from conveyor.beam_utils.file_readers import ReadTask, ReadTFRecordFn

    fn = ReadTFRecordFn(schema, batch_size)
    fn.setup()
    fast = []
    decode_framed = fn._example_decoder.decode_framed

    def counted(*args):
        batch = decode_framed(*args)
        fast.append(batch.num_rows)
        return batch

    fn._example_decoder.decode_framed = counted
    batches, rejected = [], []
    for batch, bad, _ in fn.read(ReadTask(str(path))):
        batches.append(batch)
        rejected.extend(bad)
    fn.teardown()
    return batches, rejected, fast


def test_reader_hands_a_refused_batch_to_tfx_bsl(tmp_path):
    # A feature twice in one record: the C decoder refuses it; tfx-bsl takes the last.
    twice = _example(_entry(b"i", _INT5), _entry(b"i", b"\x1a\x03\x0a\x01\x07"))
    records = _random_examples(200, seed=7, empty_lists=True)
    records = records[:150] + [twice] + records[150:]
    path = tmp_path / "e.tfrecord.gz"
    tfrecord_io.write_records(str(path), records)
    batches, rejected, fast = _read_fn_batches(path, WIDE, 100)
    assert rejected == [] and len(batches) == 3
    assert fast == [100, 1]  # the first and last batches; the second went to tfx-bsl
    got = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    _assert_same(got, _exact(records))
    assert got.column("i").to_pylist()[150] == [7]


def test_reader_rejects_wrong_type_after_the_decoder_refuses(tmp_path):
    good = _random_examples(30, seed=3)
    import tensorflow as tf

    ex = tf.train.Example()
    ex.features.feature["i"].float_list.value.append(1.5)  # INT feature with floats
    records = good[:10] + [ex.SerializeToString()] + good[10:]
    path = tmp_path / "w.tfrecord"
    tfrecord_io.write_records(str(path), records, compress=False)
    batches, rejected, fast = _read_fn_batches(path, WIDE, 16)
    assert [r.row for r in rejected] == [11] and "wrong type" in rejected[0].reason
    assert fast == [15]  # the second batch; the first was refused and went to tfx-bsl
    got = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    _assert_same(got, _exact(good))


@pytest.mark.parametrize("compress", [True, False])
def test_records_split_across_chunks_read_the_same(tmp_path, compress):
    # The stream is framed in chunks; records that straddle a chunk's end, and
    # chunks smaller than one record, must give what one chunk gives.
    import tensorflow as tf

    from conveyor.beam_utils.file_readers import ReadTask, ReadTFRecordFn

    ex = tf.train.Example()
    ex.features.feature["i"].float_list.value.append(1.5)  # INT feature with floats: rejected
    records = (
        _random_examples(40, seed=11)
        + _random_examples(20, seed=12, empty_lists=True)
        + [ex.SerializeToString()]
        + _random_examples(40, seed=13)
    )
    path = tmp_path / "mixed.tfrecord"
    tfrecord_io.write_records(str(path), records, compress=compress)
    results = []
    for chunk_bytes in (8 << 20, 1000, 7):
        fn = ReadTFRecordFn(WIDE, 16)
        fn.CHUNK_BYTES = chunk_bytes
        fn.setup()
        batches, rejected, counts = [], [], []
        for batch, bad, n in fn.read(ReadTask(str(path))):
            batches.append(batch)
            rejected += [r.row for r in bad]
            counts.append(n)
        fn.teardown()
        assert counts == [16] * 6 + [5]
        rows = sum(counts)
        results.append((pa.Table.from_batches(batches).combine_chunks(), rejected, rows))
    good = _exact(records[:60] + records[61:])
    for table, rejected, rows in results:
        assert rejected == [61] and rows == len(records)
        _assert_same(table.to_batches()[0], good)


def test_decoder_docstring_example_runs():
    import doctest

    from conveyor.beam_utils import example_parsing

    assert doctest.testmod(example_parsing).failed == 0


def test_frame_finds_whole_records_and_stops_at_a_partial_one():
    from conveyor.beam_utils import _wire

    records = [b"", b"a", b"bc" * 100]
    data = tfrecord_io.frame(records)
    heads, end = _wire.frame(data, 0)
    assert np.frombuffer(heads, np.int64).tolist() == [0, 16, 33] and end == len(data)
    heads, end = _wire.frame(data[:-1], 0)  # the last record cut short by a byte
    assert np.frombuffer(heads, np.int64).tolist() == [0, 16] and end == 33
    heads, end = _wire.frame(data, 16)
    assert np.frombuffer(heads, np.int64).tolist() == [16, 33]
    huge = (1 << 63).to_bytes(8, "little") + bytes(8)  # a length past any buffer, no overflow
    assert _wire.frame(huge, 0) == (b"", 0)
    assert _wire.frame(b"", 0) == (b"", 0) and _wire.frame(data, len(data) + 5) == (
        b"",
        len(data) + 5,
    )


def test_crc32c_in_c_equals_google_crc32c_with_and_without_sse42():
    import google_crc32c

    from conveyor.beam_utils import _wire

    def masked(data):
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 8, 9, 63, 1000, 100_003):
        data = rng.bytes(n)
        assert _wire.masked_crc32c(data) == _wire.masked_crc32c(data, True) == masked(data), n
