"""The serving process of InfraValidator: load a SavedModel, call its signatures, report.

Not imported by Conveyor: :mod:`~conveyor.components.infra_validator.server`
copies this file into an empty temporary folder and runs it there as
``python -I -S probe.py REQUEST.json``, so it imports nothing but the standard
library and TensorFlow (the site-packages folders named in the request are
added to ``sys.path``; their ``.pth`` files are not run). The request
(JSON) holds ``model_dir``, ``tags``, ``signature_names``, ``requests`` (a
TFRecord file of serialized ``tf.Example``, or null for LOAD_ONLY),
``site_dirs`` and ``exit_after_seconds``: it ends itself then, or as soon as
the process that started it is gone, so a validator killed with SIGKILL
leaves no server running.

It reports one JSON object a line on its standard output, which is kept for
reports (anything else printed there goes to standard error):
``started`` (python, sys_path, cwd, tensorflow), ``loaded`` (seconds,
signatures), one ``queried`` per signature (requests, outputs: their dtype and
shape), then ``done``; or ``failed`` with the ``stage`` (start, load,
signature, query) and the ``error``. It exits 0 whenever it could report.
"""

import json
import os
import re
import sys
import threading
import time

_MAX_ERROR = 2000


def _reporter():
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of TensorFlow and of Python code go to stderr
    sys.stdout = sys.stderr

    def report(event, **fields):
        out.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        out.flush()

    return report


#: Lines of TensorFlow's error text that say where in the graph, not what.
_GRAPH_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>|\[\[\{\{node .*|"
    r"File \".*|\s*$)"
)


def _error(e) -> str:
    """The error on one line: its type and message, without TensorFlow's graph locations."""
    lines = [line.strip() for line in str(e).splitlines()]
    kept = [line for line in lines if not _GRAPH_NOISE.match(line)] or lines
    message = re.sub(r"\s*\[Op:[^\]]*\]$", "", " ".join(kept).strip())
    text = f"{type(e).__name__}: {message}"
    return text if len(text) <= _MAX_ERROR else text[:_MAX_ERROR] + " ..."


def _feature_values(example, name: str):
    if name not in example.features.feature:
        return None
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def _tensor_for(tf, example, name: str, spec, number: int):
    """One input of one request (a batch of one example) built from the example's feature."""
    values = _feature_values(example, name)
    if values is None:
        raise ValueError(f"example {number} has no feature {name!r}, which the signature takes")
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    if spec.dtype == tf.string:
        values = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    if shape is None:
        return tf.constant(values, dtype=spec.dtype)
    if len(shape) == 0:
        if len(values) != 1:
            raise ValueError(
                f"example {number}: feature {name!r} has {len(values)} values; "
                "the signature takes a scalar"
            )
        return tf.constant(values[0], dtype=spec.dtype)
    if len(shape) == 1:  # one value per example
        if len(values) != 1:
            raise ValueError(
                f"example {number}: feature {name!r} has {len(values)} values; "
                f"the signature takes one per example (shape {shape})"
            )
        return tf.constant(values, dtype=spec.dtype)
    inner = [d if d is not None else -1 for d in shape[1:]]
    if inner.count(-1) > 1:
        raise ValueError(f"input {name!r} has more than one unknown inner dimension: {shape}")
    return tf.reshape(tf.constant(values, dtype=spec.dtype), [1, *inner])


def _requests(tf, signature, records):
    """``(number, kwargs)`` of each request: one example per request, as TFX's requests are."""
    _, inputs = signature.structured_input_signature
    if len(inputs) == 1:
        ((name, spec),) = inputs.items()
        if spec.dtype == tf.string:  # serialized tf.Example (predict, classify, regress)
            for i, record in enumerate(records, 1):
                value = tf.constant(record) if spec.shape.rank == 0 else tf.constant([record])
                yield i, {name: value}
            return
    for i, record in enumerate(records, 1):
        example = tf.train.Example.FromString(record)
        yield i, {n: _tensor_for(tf, example, n, s, i) for n, s in inputs.items()}


def _describe(outputs) -> dict:
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return {
        k: {"dtype": v.dtype.name, "shape": v.shape.as_list()}
        for k, v in outputs.items()
        if hasattr(v, "dtype")
    }


def _watch(parent: int, seconds: float) -> None:
    """Ends this process when its parent is gone (killed with -9) or after ``seconds``."""
    end = time.monotonic() + seconds
    while os.getppid() == parent and time.monotonic() < end:
        time.sleep(0.2)
    os._exit(3)


def main(argv) -> int:
    begin = time.monotonic()
    parent = os.getppid()
    report = _reporter()
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    threading.Thread(
        target=_watch, args=(parent, request["exit_after_seconds"]), daemon=True
    ).start()
    sys.path.extend(d for d in request["site_dirs"] if d not in sys.path)
    try:
        import tensorflow as tf
    except Exception as e:
        report("failed", stage="start", error=_error(e), sys_path=sys.path)
        return 0
    report(
        "started",
        pid=os.getpid(),
        python=sys.executable,
        sys_path=list(sys.path),
        cwd=os.getcwd(),
        tensorflow=tf.__version__,
        seconds=time.monotonic() - begin,
    )
    try:
        model = tf.saved_model.load(request["model_dir"], tags=request["tags"])
    except Exception as e:
        report("failed", stage="load", error=_error(e))
        return 0
    signatures = sorted(getattr(model, "signatures", {}) or {})
    report("loaded", seconds=time.monotonic() - begin, signatures=signatures)
    names = request["signature_names"]
    missing = [n for n in names if n not in signatures]
    if missing:
        report("failed", stage="signature", signature=missing[0], signatures=signatures)
        return 0
    if request["requests"] is None:
        report("done", seconds=time.monotonic() - begin)
        return 0
    records = [r.numpy() for r in tf.data.TFRecordDataset(request["requests"])]
    for name in names:
        signature = model.signatures[name]
        number, outputs = 0, {}
        try:
            for number, kwargs in _requests(tf, signature, records):  # noqa: B007 (reported)
                outputs = signature(**kwargs)
        except Exception as e:
            report("failed", stage="query", signature=name, example=number, error=_error(e))
            return 0
        report("queried", signature=name, requests=len(records), outputs=_describe(outputs))
    report("done", seconds=time.monotonic() - begin)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
