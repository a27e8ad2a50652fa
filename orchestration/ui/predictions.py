"""A sample of the predictions in an InferenceResult, read without TensorFlow.

BulkInferrer writes ``<uri>/inference_result/prediction_logs-*.gz``: gzip TFRecords of
TensorFlow Serving ``PredictionLog`` protos. Their message classes live in
``tensorflow_serving``, whose import pulls in TensorFlow; the UI must not (it starts in
well under 2 s). So this module reads the few fields a sample shows straight from the
protobuf wire format (field numbers of ``prediction_log.proto``, ``predict.proto``,
``classification.proto``, ``regression.proto`` and TensorFlow's ``tensor.proto``):

* ``predict_log`` (6): ``response.outputs``, a map of output name -> ``TensorProto``;
* ``classify_log`` (2): ``response.result.classifications[].classes[]`` (label, score);
* ``regress_log`` (3): ``response.result.regressions[].value``.

Anything else is reported by its kind (``multi_inference_log``, ...), never dropped
silently.
"""

from __future__ import annotations

import glob
import itertools
import os
import struct

__all__ = ["PREDICTION_DIR", "SAMPLE_PREDICTIONS", "WireError", "decode_log", "sample"]

#: The folder of an InferenceResult that holds the PredictionLog files.
PREDICTION_DIR = "inference_result"
#: Predictions shown from an InferenceResult.
SAMPLE_PREDICTIONS = 10

_LOG_KINDS = {
    2: "classify_log",
    3: "regress_log",
    4: "multi_inference_log",
    5: "session_run_log",
    6: "predict_log",
    7: "predict_streamed_log",
}

# TensorProto dtype -> struct format of one element of tensor_content.
_CONTENT = {
    1: "f",
    2: "d",
    3: "i",
    4: "B",
    5: "h",
    6: "b",
    9: "q",
    10: "?",
    17: "H",
    22: "I",
    23: "Q",
}
_DT_STRING, _DT_HALF = 7, 19


class WireError(ValueError):
    """A record is not a well-formed protocol buffer."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise WireError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def _fields(data: bytes):
    """``(field number, wire type, value)`` of each field: ints for varints, bytes otherwise."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})")
        if i > len(data):
            raise WireError(f"field {number} runs past the end")
        yield number, wire, value


def _first(data: bytes, number: int) -> bytes | None:
    for n, wire, value in _fields(data):
        if n == number and wire == 2:
            return value
    return None


def _repeated(data: bytes, number: int) -> list[bytes]:
    return [v for n, wire, v in _fields(data) if n == number and wire == 2]


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed(wire: int, value, fmt: str) -> list:
    """A repeated scalar field's values: packed (wire 2) or one element (wire 0/1/5)."""
    if wire == 0:
        return [_signed(value)] if fmt in "iq" else [value]
    if wire in (1, 5):
        return list(struct.unpack("<" + fmt, value))
    if fmt in "fd":
        size = struct.calcsize(fmt)
        return list(struct.unpack(f"<{len(value) // size}{fmt}", value))
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(_signed(v) if fmt in "iq" else v)
    return out


def _half(bits: int) -> float:
    return struct.unpack("<e", struct.pack("<H", bits & 0xFFFF))[0]


def tensor_values(data: bytes) -> list:
    """The values of a serialized ``TensorProto``, flattened (strings decoded as UTF-8)."""
    dtype, content, values = 0, None, []
    scalar_fields = {5: "f", 6: "d", 7: "i", 10: "q", 11: "B", 13: "H", 16: "I", 17: "Q"}
    for n, wire, value in _fields(data):
        if n == 1 and wire == 0:
            dtype = value
        elif n == 4 and wire == 2:
            content = value
        elif n == 8 and wire == 2:
            values.append(value.decode("utf-8", errors="replace"))
        elif n in scalar_fields:
            got = _packed(wire, value, scalar_fields[n])
            if n == 13 or dtype == _DT_HALF:
                got = [_half(v) for v in got]
            elif n == 11:
                got = [bool(v) for v in got]
            values.extend(got)
    if content and dtype in _CONTENT:
        fmt = _CONTENT[dtype]
        count = len(content) // struct.calcsize(fmt)
        values = list(struct.unpack(f"<{count}{fmt}", content[: count * struct.calcsize(fmt)]))
    elif content and dtype == _DT_HALF:
        values = [v[0] for v in struct.iter_unpack("<e", content)]
    return values


def _float32(b: bytes) -> float:
    return struct.unpack("<f", b)[0]


def _map_entries(data: bytes, number: int) -> dict[str, bytes]:
    out = {}
    for entry in _repeated(data, number):
        key = _first(entry, 1)
        value = _first(entry, 2)
        out[(key or b"").decode("utf-8", errors="replace")] = value or b""
    return out


def _cell(values: list):
    values = [round(v, 6) if isinstance(v, float) else v for v in values]
    return values[0] if len(values) == 1 else values


def decode_log(record: bytes) -> dict:
    """One serialized ``PredictionLog`` as ``{"kind", "outputs": {name: value(s)}}``."""
    kind, body = None, b""
    for n, wire, value in _fields(record):
        if n in _LOG_KINDS and wire == 2:
            kind, body = _LOG_KINDS[n], value
    if kind is None:
        return {"kind": "unknown", "outputs": {}}
    response = _first(body, 2) or b""
    outputs: dict = {}
    if kind == "predict_log":
        for name, tensor in sorted(_map_entries(response, 1).items()):
            outputs[name] = _cell(tensor_values(tensor))
    elif kind == "classify_log":
        result = _first(response, 1) or b""
        for i, classification in enumerate(_repeated(result, 1)):
            classes = []
            for c in _repeated(classification, 1):
                label, score = "", None
                for n, wire, value in _fields(c):
                    if n == 1 and wire == 2:
                        label = value.decode("utf-8", errors="replace")
                    elif n == 2 and wire == 5:
                        score = round(_float32(value), 6)
                classes.append([label, score])
            outputs["classes" if i == 0 else f"classes_{i}"] = classes
    elif kind == "regress_log":
        result = _first(response, 1) or b""
        values = []
        for regression in _repeated(result, 1):
            for n, wire, value in _fields(regression):
                if n == 1 and wire == 5:
                    values.append(_float32(value))
        outputs["value"] = _cell(values)
    return {"kind": kind, "outputs": outputs}


def sample(uri: str, n: int = SAMPLE_PREDICTIONS) -> dict:
    """``{"file", "predictions": [{"kind", "outputs"}], "error"}``: the first ``n``
    PredictionLogs of the first file under ``<uri>/inference_result`` (``{}`` with none)."""
    import contextlib

    from conveyor.beam_utils import tfrecord_io

    pattern = os.path.join(glob.escape(os.path.join(uri, PREDICTION_DIR)), "prediction_logs*")
    files = sorted(glob.glob(pattern))
    if not files:
        return {}
    path = files[0]
    out = {"file": os.path.relpath(path, uri), "predictions": [], "error": None}
    try:
        with (
            open(path, "rb") as f,
            contextlib.closing(tfrecord_io.open_records(f, path)) as records,
        ):
            for record in itertools.islice(records, n):
                out["predictions"].append(decode_log(record))
    except Exception as e:  # a half-written or foreign file: say which and why
        out["error"] = f"{out['file']}: {type(e).__name__}: {e}"
    return out
