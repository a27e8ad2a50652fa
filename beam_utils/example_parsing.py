"""Decoding serialized ``tf.Example`` records into canonical RecordBatches.

tfx-bsl's ``ExamplesToRecordBatchDecoder`` parses each record into a full proto
message and builds the Arrow columns from it. :class:`ExampleDecoder` reads the
wire format once, in C (``_wire.c``, built when the package is
installed), straight into the buffers of the canonical columns (see
:mod:`conveyor.beam_utils.arrow`), with the GIL released. On the flights it
decodes several times faster than TensorFlow's ``ParseExampleV2`` and needs no
TensorFlow.

The two decoders give the same batch for every record the C decoder accepts:
a missing feature (or one whose Feature holds no list) is null, a present one
with no values ``[]``; packed and unpacked values and unknown fields are read
as protobuf reads them, and features outside the schema are checked as
protobuf would parse them, not kept. It refuses, with :class:`NotDecoded`, a
batch holding a record it does not decode exactly as tfx-bsl would: one that is
malformed, holds a feature of another type than the schema's, names a feature
twice, or holds a Feature with two lists or a map entry with two keys or
values. The caller hands that batch to tfx-bsl, which decides record by record.
200,000 damaged records in a fuzz run, and 3,000 in the tests, found none the C
decoder accepted that tfx-bsl refuses, nor any decoded differently.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from conveyor.beam_utils import _wire, arrow

# The Feature field number of each kind of list.
_KINDS = {arrow.BYTES: 1, arrow.FLOAT: 2, arrow.INT: 3}


class NotDecoded(ValueError):
    """A batch :class:`ExampleDecoder` does not decode; the message names the
    record (from 0 in the batch) and why."""


class ExampleDecoder:
    """Decodes serialized tf.Examples into RecordBatches of a canonical schema.

    >>> decoder = ExampleDecoder(arrow.make_schema({"x": arrow.INT}))
    >>> x_is_5 = b"\\n\\x0c\\n\\n\\n\\x01x\\x12\\x05\\x1a\\x03\\n\\x01\\x05"  # features {x: int64_list [5]}
    >>> decoder.decode([x_is_5, b""]).column("x").to_pylist()
    [[5], None]
    """

    def __init__(self, schema: pa.Schema):
        self._schema = schema
        types = arrow.feature_types(schema)
        self._names = [name.encode() for name in types]
        self._kinds = bytes(_KINDS[t] for t in types.values())

    def decode(self, records) -> pa.RecordBatch:
        """A sequence of serialized records -> a RecordBatch."""
        lengths = np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records))
        starts = np.zeros(len(records), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return self.decode_framed(b"".join(records), starts, lengths)

    def decode_framed(self, data, starts: np.ndarray, lengths: np.ndarray) -> pa.RecordBatch:
        """Decodes the records ``data[starts[i]:starts[i] + lengths[i]]``, reading ``data`` in place.

        Raises :class:`NotDecoded` naming the first record it does not decode.
        """
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        try:
            parts = _wire.decode(data, starts, lengths, self._names, self._kinds)
        except ValueError as e:
            raise NotDecoded(str(e)) from None
        rows = len(starts)
        columns = [_column(part, field.type, rows) for part, field in zip(parts, self._schema)]
        return pa.RecordBatch.from_arrays(columns, schema=self._schema)


def _column(part, list_type: pa.DataType, rows: int) -> pa.Array:
    validity, nulls, count, offsets, values, value_offsets = part
    buffers = [None, pa.py_buffer(value_offsets), pa.py_buffer(values)] if value_offsets is not None \
        else [None, pa.py_buffer(values)]
    children = pa.Array.from_buffers(list_type.value_type, count, buffers)
    bitmap = pa.py_buffer(validity) if validity is not None else None
    return pa.Array.from_buffers(
        list_type, rows, [bitmap, pa.py_buffer(offsets)], null_count=nulls, children=[children]
    )
