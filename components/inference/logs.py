"""Turning batch predictions into PredictionLogs and into prediction columns.

A :class:`~conveyor.components.inference.handler.BatchPrediction` holds a
record batch and one array per signature output. This module makes

* serialized ``tensorflow_serving`` ``PredictionLog`` protos, one a row: a
  ``predict_log`` for predict signatures, a ``classify_log`` or
  ``regress_log`` for classify and regress signatures (the signature's
  ``method_name`` decides), with the request (the row's example or input
  tensors) and the response, as TensorFlow Serving would log them;
* Arrow prediction columns (FLOAT, INT or BYTES lists, one list a row, the
  output's values flattened) to append to the batch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.components.inference.handler import BatchPrediction
from conveyor.components.inference.model import (
    CLASSIFY,
    EXAMPLES,
    REGRESS,
    InputPlan,
    SignatureInfo,
)


def _tensor_template(dtype_name: str, inner_shape: tuple):
    """A TensorProto with the dtype and shape [1, *inner_shape] set, no values."""
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    t = tensor_pb2.TensorProto()
    t.dtype = tf.as_dtype(dtype_name).as_datatype_enum
    t.tensor_shape.dim.add().size = 1
    for d in inner_shape:
        t.tensor_shape.dim.add().size = int(d)
    return t


class _TensorRows:
    """One batch array (rows on the first axis) and the TensorProto header of a row."""

    def __init__(self, key: str, array: np.ndarray):
        self.key = key
        self.is_string = array.dtype.kind in ("O", "S", "U")
        if not self.is_string:
            array = np.ascontiguousarray(array)
            dtype_name = array.dtype.name
        else:
            dtype_name = "string"
        self.array = array
        self.template = _tensor_template(dtype_name, array.shape[1:])


def _string_list(values) -> list:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


class PredictionLogEncoder:
    """Serializes the rows of batch predictions as ``PredictionLog`` protos."""

    def __init__(self, signature: SignatureInfo, plan: InputPlan):
        self._signature = signature
        self._plan = plan

    def encode(self, prediction: BatchPrediction) -> list[bytes]:
        """One serialized PredictionLog for each row of ``prediction``."""
        kind = self._signature.kind
        if kind == CLASSIFY:
            return self._classify(prediction)
        if kind == REGRESS:
            return self._regress(prediction)
        return self._predict(prediction)

    def decode(self, serialized: bytes):
        """A serialized PredictionLog as the proto message."""
        from tensorflow_serving.apis import prediction_log_pb2

        return prediction_log_pb2.PredictionLog.FromString(serialized)

    def _request_inputs(self, prediction: BatchPrediction) -> list[_TensorRows]:
        if self._plan.mode == EXAMPLES:
            ser = prediction.serialized
            if ser is None:
                ser = _encode_examples(prediction.examples)
            return [_TensorRows(self._plan.examples_key, np.asarray(ser, dtype=object))]
        from conveyor.components.inference.handler import column_tensor

        rows = []
        for t in self._plan.tensors:
            col = prediction.examples.column(prediction.examples.schema.get_field_index(t.key))
            rows.append(_TensorRows(t.key, column_tensor(col, t.key, t.dtype, t.shape)))
        return rows

    def _predict(self, prediction: BatchPrediction) -> list[bytes]:
        n = prediction.examples.num_rows
        if not n:
            return []
        w = _predict_wire()
        spec = _field(w.spec_signature, self._signature.name.encode())
        request_spec = _field(w.request_spec, spec)
        response_spec = _field(w.response_spec, spec)
        inputs = [_row_entries(w.request_inputs, r) for r in self._request_inputs(prediction)]
        outputs = [
            _row_entries(w.response_outputs, _TensorRows(k, v))
            for k, v in prediction.outputs.items()
        ]
        out = []
        for i in range(n):
            request = request_spec + b"".join([entries[i] for entries in inputs])
            response = response_spec + b"".join([entries[i] for entries in outputs])
            body = _field(w.log_request, request) + _field(w.log_response, response)
            out.append(_field(w.predict_log, body))
        return out

    def _serialized(self, prediction: BatchPrediction) -> list:
        if prediction.serialized is not None:
            return prediction.serialized
        return _encode_examples(prediction.examples)

    def _address(self, row_log, serialized_example: bytes) -> None:
        """Names the signature in a classify or regress log's request and response; adds the example."""
        row_log.request.model_spec.signature_name = self._signature.name
        row_log.request.input.example_list.examples.add().ParseFromString(serialized_example)
        row_log.response.model_spec.signature_name = self._signature.name

    def _classify(self, prediction: BatchPrediction) -> list[bytes]:
        from tensorflow_serving.apis import prediction_log_pb2

        n = prediction.examples.num_rows
        classes = prediction.outputs.get("classes")
        scores = prediction.outputs.get("scores")
        if classes is not None:
            classes = classes.reshape(n, -1)
        if scores is not None:
            scores = scores.reshape(n, -1).astype(np.float32, copy=False)
        width = (classes if classes is not None else scores).shape[1] if n else 0
        ser = self._serialized(prediction)
        out = []
        for i in range(n):
            log = prediction_log_pb2.PredictionLog()
            self._address(log.classify_log, ser[i])
            result = log.classify_log.response.result.classifications.add()
            labels = _string_list(classes[i]) if classes is not None else None
            for j in range(width):
                c = result.classes.add()
                if labels is not None:
                    c.label = labels[j]
                if scores is not None:
                    c.score = float(scores[i, j])
            out.append(log.SerializeToString())
        return out

    def _regress(self, prediction: BatchPrediction) -> list[bytes]:
        from tensorflow_serving.apis import prediction_log_pb2

        n = prediction.examples.num_rows
        if "outputs" in prediction.outputs:
            values = prediction.outputs["outputs"]
        else:
            (values,) = prediction.outputs.values()
        values = values.reshape(n, -1)[:, 0].astype(np.float64) if n else values
        ser = self._serialized(prediction)
        out = []
        for i in range(n):
            log = prediction_log_pb2.PredictionLog()
            self._address(log.regress_log, ser[i])
            log.regress_log.response.result.regressions.add().value = float(values[i])
            out.append(log.SerializeToString())
        return out


# --- protobuf wire format for predict logs ----------------------------------------
#
# A predict log holds, for every row, the same model spec and tensor headers
# around that row's values. Writing the wire format directly (field numbers
# read from the descriptors) costs a few byte joins a row instead of a dozen
# message operations; tests parse the result with the real protos.


class _PredictWire(NamedTuple):
    predict_log: int
    log_request: int
    log_response: int
    request_spec: int
    request_inputs: int
    response_spec: int
    response_outputs: int
    spec_signature: int
    tensor_content: int
    string_val: int


_WIRE: list = []


def _predict_wire() -> _PredictWire:
    if not _WIRE:
        from tensorflow.core.framework import tensor_pb2
        from tensorflow_serving.apis import (
            model_pb2,
            predict_pb2,
            prediction_log_pb2,
        )

        def num(message, name):
            return message.DESCRIPTOR.fields_by_name[name].number

        _WIRE.append(
            _PredictWire(
                predict_log=num(prediction_log_pb2.PredictionLog, "predict_log"),
                log_request=num(prediction_log_pb2.PredictLog, "request"),
                log_response=num(prediction_log_pb2.PredictLog, "response"),
                request_spec=num(predict_pb2.PredictRequest, "model_spec"),
                request_inputs=num(predict_pb2.PredictRequest, "inputs"),
                response_spec=num(predict_pb2.PredictResponse, "model_spec"),
                response_outputs=num(predict_pb2.PredictResponse, "outputs"),
                spec_signature=num(model_pb2.ModelSpec, "signature_name"),
                tensor_content=num(tensor_pb2.TensorProto, "tensor_content"),
                string_val=num(tensor_pb2.TensorProto, "string_val"),
            )
        )
    return _WIRE[0]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(128)]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    size = len(payload)
    return _varint((number << 3) | 2) + (_SMALL[size] if size < 128 else _varint(size)) + payload


def _row_entries(map_field: int, rows: _TensorRows) -> list[bytes]:
    """Each row's ``map<string, TensorProto>`` entry for ``rows.key``."""
    w = _predict_wire()
    key = _field(1, rows.key.encode())
    header = rows.template.SerializeToString()
    n = rows.array.shape[0]
    if rows.is_string:
        flat = rows.array.reshape(n, -1)
        tensors = [
            header
            + b"".join(
                [_field(w.string_val, v if isinstance(v, bytes) else str(v).encode()) for v in row]
            )
            for row in flat
        ]
    else:
        data = rows.array.tobytes()
        width = len(data) // n if n else 0
        tag = _varint((w.tensor_content << 3) | 2) + _varint(width)
        tensors = [header + tag + data[i * width : (i + 1) * width] for i in range(n)]
    return [_field(map_field, key + _field(2, t)) for t in tensors]


def _encode_examples(batch: pa.RecordBatch) -> list:
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    return RecordBatchToExamplesEncoder(arrow.to_metadata_schema(batch.schema)).encode(batch)


# --- prediction columns ---------------------------------------------------------


def output_feature_type(dtype: str) -> str:
    """The feature type of a column holding an output of ``dtype``."""
    if dtype.startswith("float") or dtype in ("half", "bfloat16"):
        return arrow.FLOAT
    if dtype == "string":
        return arrow.BYTES
    return arrow.INT


def output_schema(schema: pa.Schema, signature: SignatureInfo, columns: dict) -> pa.Schema:
    """``schema`` with the prediction columns ``{output key: column}`` appended."""
    fields = list(schema)
    for key, col in columns.items():
        fields.append(
            pa.field(col, arrow.column_type(output_feature_type(signature.outputs[key].dtype)))
        )
    return pa.schema(fields)


def prediction_column(values: np.ndarray, feature_type: str) -> pa.LargeListArray:
    """A list column with row ``i`` holding ``values[i]`` flattened."""
    n = values.shape[0]
    flat = values.reshape(n, -1)
    width = flat.shape[1]
    flat = flat.reshape(-1)
    if feature_type == arrow.FLOAT:
        child = pa.array(flat.astype(np.float32, copy=False), pa.float32())
    elif feature_type == arrow.INT:
        child = pa.array(flat.astype(np.int64, copy=False), pa.int64())
    else:
        child = pa.array(
            [v if isinstance(v, bytes) else str(v).encode() for v in flat], pa.large_binary()
        )
    offsets = pa.array(np.arange(n + 1, dtype=np.int64) * width)
    return pa.LargeListArray.from_arrays(offsets, child)


def append_predictions(
    prediction: BatchPrediction, schema: pa.Schema, columns: dict
) -> pa.RecordBatch:
    """The batch's rows with one prediction column per output, in ``schema``."""
    batch = prediction.examples
    arrays = list(batch.columns)
    for key, col in columns.items():
        ft = arrow.feature_type(schema.field(col).type)
        arrays.append(prediction_column(prediction.outputs[key], ft))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
