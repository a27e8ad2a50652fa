"""Hash-bucket splitting: ratios, determinism, grouping by chosen columns."""

import numpy as np
import pyarrow as pa
import pytest

from conveyor.beam_utils import arrow
from conveyor.beam_utils.hashing import column_hashes, row_hashes
from conveyor.beam_utils.split import HashSplitFn, parse_splits


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    schema = arrow.make_schema({"user": "BYTES", "x": "FLOAT", "k": "INT"})
    users = pa.array([f"u{u}" for u in rng.integers(0, n // 10, size=n)])
    return pa.RecordBatch.from_arrays(
        [
            arrow.to_column(users, schema.field("user").type),
            arrow.to_column(
                pa.array(rng.normal(size=n).astype(np.float32)), schema.field("x").type
            ),
            arrow.to_column(pa.array(rng.integers(0, 1000, size=n)), schema.field("k").type),
        ],
        schema=schema,
    )


def _split(batch, ratios, cols=None):
    out = {}
    for tagged in HashSplitFn(ratios, cols).process(batch):
        out.setdefault(tagged.tag, []).append(tagged.value)
    return {k: pa.Table.from_batches(v) for k, v in out.items()}


def test_ratios_close_to_weights():
    parts = _split(_batch(30000), {"train": 2, "eval": 1})
    n_train, n_eval = parts["train"].num_rows, parts["eval"].num_rows
    assert n_train + n_eval == 30000
    assert abs(n_train / 30000 - 2 / 3) < 0.02


def test_three_way_split_and_determinism_across_batching():
    batch = _batch(9000)
    whole = _split(batch, {"a": 1, "b": 1, "c": 2})
    halves = [
        _split(batch.slice(0, 4000), {"a": 1, "b": 1, "c": 2}),
        _split(batch.slice(4000), {"a": 1, "b": 1, "c": 2}),
    ]
    for name in "abc":
        joined = pa.concat_tables([h[name] for h in halves if name in h])
        assert joined.equals(whole[name])
    assert abs(whole["c"].num_rows / 9000 - 0.5) < 0.03


def test_hash_columns_keep_groups_together():
    parts = _split(_batch(20000), {"train": 2, "eval": 1}, ["user"])
    users = {name: {v[0] for v in t.column("user").to_pylist()} for name, t in parts.items()}
    assert users["train"].isdisjoint(users["eval"])


def test_row_hash_ignores_column_order_and_float_width():
    b = _batch(100)
    flipped = pa.RecordBatch.from_arrays(b.columns[::-1], names=b.schema.names[::-1])
    assert (row_hashes(b) == row_hashes(flipped)).all()
    as64 = pa.array([1.5, None], pa.float64())
    as32 = pa.array([1.5, None], pa.float32())
    assert (
        column_hashes(arrow.wrap_scalars(as64, pa.float64()))
        == column_hashes(arrow.wrap_scalars(as32, pa.float32()))
    ).all()


def test_list_order_null_and_empty_hash_differently():
    col = pa.array([[1, 2], [2, 1], [], None], pa.large_list(pa.int64()))
    h = column_hashes(col)
    assert len(set(h.tolist())) == 4


def test_parse_splits():
    assert parse_splits("train:2,eval:1") == {"train": 2, "eval": 1}
    for bad in ("train", "train:0", "a:1,a:2", "x:-1", ":3"):
        with pytest.raises(ValueError):
            parse_splits(bad)
