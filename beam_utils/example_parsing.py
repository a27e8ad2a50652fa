"""Decoding serialized ``tf.Example`` records with TensorFlow's parser.

tfx-bsl's ``ExamplesToRecordBatchDecoder`` parses each record into a full proto
message and builds the Arrow columns from it; TensorFlow's ``parse_example``
reads the wire format directly and is several times faster. :class:`TFExampleParser`
runs the latter and assembles the canonical columns (see
:mod:`conveyor.beam_utils.arrow`) from its values and row splits with numpy.

The two agree on everything but one case: TensorFlow reports a feature that is
present with an empty list the same as a missing one (no values), where tfx-bsl
gives ``[]`` rather than null. :func:`may_hold_empty_list` finds the records
that can hold such a feature (a numpy scan of the joined records, about four
times faster than the same scan as TensorFlow ops), so that the caller decodes
those with tfx-bsl.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from conveyor.beam_utils import arrow

# A present but empty list is a map entry whose value (field 2, length 2) is a
# Feature holding one empty list: \x12\x02 then \x0a\x00 (bytes_list), \x12\x00
# (float_list) or \x1a\x00 (int64_list). Encoders that write an empty packed
# field inside the list give \x12\x02\x0a\x00 (float) or \x1a\x02\x0a\x00
# (int64) within the value instead. The scan looks for [\x12\x1a] \x02
# [\x0a\x12\x1a] \x00, a small superset of these.
_LEAD = np.array([0x12, 0x1A], dtype=np.uint8)
_INNER = np.array([0x0A, 0x12, 0x1A], dtype=np.uint8)


def may_hold_empty_list(records) -> bool:
    """True if some record may hold a feature that is present with an empty list.

    ``records`` is a sequence of serialized records or their concatenation.

    Never false for records encoded canonically (by protobuf's serializers or
    tfx-bsl's encoder) that hold such a feature; true now and then for records
    that hold none, when their values happen to contain the byte pattern.
    """
    joined = records if isinstance(records, bytes) else b"".join(records)
    return len(empty_list_marks(joined)) > 0


def empty_list_marks(data) -> np.ndarray:
    """Positions in ``data`` where a present but empty list may be encoded.

    ``data`` (bytes or a memoryview) may be any bytes holding records (framed
    TFRecords, say): a record that holds no such position holds no empty list.
    """
    data = np.frombuffer(data, dtype=np.uint8)
    hits = np.flatnonzero((data[1:-2] == 0x02) & (data[3:] == 0x00))
    if not len(hits):
        return hits
    return hits[np.isin(data[hits], _LEAD) & np.isin(data[hits + 2], _INNER)]


class TFExampleParser:
    """Decodes a list of serialized tf.Examples into a canonical RecordBatch.

    Imports TensorFlow when built. A row with no values is a null list (a
    missing feature), so the result equals tfx-bsl's decoding of the same
    records whenever :func:`may_hold_empty_list` is false for them. Raises
    whatever TensorFlow raises for a record that is not a tf.Example, or holds
    a feature of the schema with another type.
    """

    def __init__(self, schema: pa.Schema):
        import tensorflow as tf

        self._tf = tf
        self._schema = schema
        dtypes = {arrow.INT: tf.int64, arrow.FLOAT: tf.float32, arrow.BYTES: tf.string}
        self._dtypes = {name: dtypes[t] for name, t in arrow.feature_types(schema).items()}

    def parse_numpy(self, records) -> dict:
        """A list of serialized records -> per column, numpy arrays for :meth:`to_batch`.

        Per column: the row splits and the values (for BYTES: the value
        lengths and the values joined into one string). One ``ParseExampleV2``
        op and two string ops per BYTES column, run eagerly as raw ops (no
        Python wrappers to build, nothing to trace); TensorFlow releases the GIL
        while they run, so a thread of its own overlaps them with Python work.
        """
        return self._parse(self._tf.constant(records, dtype=self._tf.string))

    def parse_framed(self, blob: bytes, starts: np.ndarray, lengths: np.ndarray) -> dict:
        """Like :meth:`parse_numpy`, for the records ``blob[starts[i]:starts[i] + lengths[i]]``
        (TensorFlow slices them out, in C++)."""
        raw = self._tf.raw_ops
        return self._parse(raw.Substr(input=blob, pos=starts, len=lengths))

    def _parse(self, serialized) -> dict:
        tf = self._tf
        raw = tf.raw_ops
        names = list(self._dtypes)
        out = raw.ParseExampleV2(
            serialized=serialized, names=[], sparse_keys=[], dense_keys=[],
            ragged_keys=names, dense_defaults=[], num_sparse=0, sparse_types=[],
            ragged_value_types=[self._dtypes[n] for n in names],
            ragged_split_types=[tf.int64] * len(names), dense_shapes=[])
        parts = {}
        for name, values, splits in zip(names, out.ragged_values, out.ragged_row_splits):
            if values.dtype == tf.string:
                parts[name] = (splits.numpy(), raw.StringLength(input=values).numpy(),
                               raw.ReduceJoin(inputs=values, reduction_indices=0).numpy())
            else:
                parts[name] = (splits.numpy(), values.numpy())
        return parts

    def decode(self, records) -> pa.RecordBatch:
        """A list of serialized records -> a canonical RecordBatch."""
        return self.to_batch(self.parse_numpy(records))

    def to_batch(self, parts: dict) -> pa.RecordBatch:
        """The result of :meth:`parse_numpy` -> a canonical RecordBatch."""
        return pa.RecordBatch.from_arrays(
            [self._column(parts[f.name], f.type) for f in self._schema], schema=self._schema
        )

    @staticmethod
    def _column(part, list_type: pa.DataType) -> pa.Array:
        splits = np.asarray(part[0])
        rows = len(splits) - 1
        if len(part) == 3:  # BYTES: one buffer of all the bytes and their offsets
            lengths = np.asarray(part[1])
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            joined = part[2]
            values = pa.Array.from_buffers(
                list_type.value_type, len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(joined)]
            )
        else:
            values = pa.array(np.asarray(part[1]), type=list_type.value_type)
        valid = splits[1:] != splits[:-1]
        nulls = rows - int(np.count_nonzero(valid))
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
        return pa.Array.from_buffers(
            list_type, rows, [bitmap, pa.py_buffer(splits)], null_count=nulls, children=[values]
        )
