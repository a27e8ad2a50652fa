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


def empty_list_marks(data: bytes) -> np.ndarray:
    """Positions in ``data`` where a present but empty list may be encoded.

    ``data`` may be any bytes holding records (a framed TFRecord chunk, say):
    a record that holds no such position holds no empty list.
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

        self.tf = tf  # the TensorFlow module, for callers that build on the parser
        self._schema = schema
        dtypes = {arrow.INT: tf.int64, arrow.FLOAT: tf.float32, arrow.BYTES: tf.string}
        self._features = {
            name: tf.io.RaggedFeature(dtypes[t], row_splits_dtype=tf.int64)
            for name, t in arrow.feature_types(schema).items()
        }
        self._parse_fn = None

    def parse(self, serialized) -> dict:
        """TensorFlow ops: a string tensor of records -> ``parts``.

        ``parts`` holds, per column, the row splits and the values (for BYTES:
        the value lengths and the values joined into one string), ready for
        :meth:`to_batch`. Runs eagerly or traced (:meth:`parse_numpy`).
        """
        tf = self.tf
        parsed = tf.io.parse_example(serialized, self._features)
        parts = {}
        for name, ragged in parsed.items():
            if ragged.values.dtype == tf.string:
                parts[name] = (ragged.row_splits, tf.strings.length(ragged.values),
                               tf.strings.reduce_join(ragged.values))
            else:
                parts[name] = (ragged.row_splits, ragged.values)
        return parts

    def parse_numpy(self, records) -> dict:
        """A list of serialized records -> the ``parts`` of :meth:`parse` as numpy arrays.

        Runs :meth:`parse` as one traced TensorFlow function (traced on the
        first call, ~0.2 s; eager ops cost more than that over a few hundred
        batches). TensorFlow releases the GIL while it runs, so a thread of
        its own overlaps it with Python work.
        """
        if self._parse_fn is None:
            tf = self.tf
            self._parse_fn = tf.function(self.parse, input_signature=[tf.TensorSpec([None], tf.string)])
        parts = self._parse_fn(self.tf.constant(records, dtype=self.tf.string))
        return {name: tuple(t.numpy() for t in tensors) for name, tensors in parts.items()}

    def decode(self, records) -> pa.RecordBatch:
        """A list of serialized records -> a canonical RecordBatch."""
        return self.to_batch(self.parse_numpy(records))

    def try_decode(self, records) -> pa.RecordBatch | None:
        """Like :meth:`decode`, or None when the records may hold a present but
        empty list (decode those with tfx-bsl)."""
        return None if may_hold_empty_list(records) else self.decode(records)

    def to_batch(self, parts: dict) -> pa.RecordBatch:
        """The ``parts`` of :meth:`parse_numpy` -> a canonical RecordBatch."""
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
