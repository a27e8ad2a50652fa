"""A Beam ``ModelHandler`` for TensorFlow SavedModels over Arrow record batches.

Beam's own ``TFModelHandlerTensor`` loads models through Keras, which in
TensorFlow 2.16 (Keras 3) cannot load a SavedModel directory. This handler
loads with ``tf.saved_model.load`` (Keras 3 exports, tf_keras 2 exports and
TF1 SavedModels alike) and calls one signature.

Each element that ``RunInference`` batches is a ``pyarrow.RecordBatch`` of a
few rows, and its size for ``BatchElements`` is its row count, so
``min_batch_size`` and ``max_batch_size`` count rows. ``run_inference`` joins a
batch of record batches, builds the signature's arguments with numpy (or
tfx-bsl's C++ tf.Example encoder) and returns one :class:`BatchPrediction` per
record batch, so nothing downstream loops over rows to split results.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import ModelHandler

from conveyor.components.inference.model import EXAMPLES, InputPlan, SignatureInfo


class BatchPrediction(NamedTuple):
    """The predictions for one record batch.

    ``outputs`` maps each output key of the signature to an array whose first
    dimension is the batch's rows. ``serialized`` holds the rows as serialized
    tf.Examples when the signature took them (else None).
    """

    examples: pa.RecordBatch
    outputs: dict
    serialized: list | None = None


class _LoadedSignature:
    """A loaded SavedModel (kept alive) and the signature function to call.

    Beam's RunInference keeps what ``load_model`` returns in its ``Shared``
    cache, which outlives the pipeline; :func:`release_models` empties every
    instance, so the model's TensorFlow functions are freed while TensorFlow is
    still up (not at interpreter exit, where each prints "Exception ignored in
    AtomicFunction.__del__"). A released instance that is called again loads the
    model again.
    """

    def __init__(self, model_path: str, signature_name: str):
        self.model_path = model_path
        self.signature_name = signature_name
        self._lock = threading.Lock()
        self.model = None
        self._fn = None
        self._load()
        _LOADED.add(self)
        _release_at_exit()

    def _load(self) -> None:
        import tensorflow as tf

        model = tf.saved_model.load(self.model_path)
        self.model, self._fn = model, model.signatures[self.signature_name]

    @property
    def fn(self):
        fn = self._fn
        if fn is None:
            with self._lock:
                if self._fn is None:
                    self._load()
                fn = self._fn
        return fn

    def release(self) -> None:
        with self._lock:
            self.model = self._fn = None


_LOADED: weakref.WeakSet = weakref.WeakSet()
_EXIT_HOOK = []


def release_models() -> None:
    """Frees every SavedModel this process loaded for inference, now.

    Called when a pipeline that ran them ends, and at interpreter exit (an
    ``atexit`` hook, which runs before modules are torn down), so that the
    models' TensorFlow functions are not garbage-collected after TensorFlow's
    own state is gone. A pipeline that runs afterwards loads its model again.
    """
    from conveyor.beam_utils.user_modules import release_shared_objects

    for loaded in list(_LOADED):
        loaded.release()
    release_shared_objects()


def _release_at_exit() -> None:
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(atexit.register(release_models))


def column_tensor(column: pa.Array, name: str, dtype: str, shape: tuple) -> np.ndarray:
    """The values of a list column as an array of ``(rows,) + shape[1:]``.

    Every row must hold exactly ``prod(shape[1:])`` values.

    Raises:
      ValueError: naming the input and the first offending row.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    inner = tuple(int(d) for d in shape[1:])
    width = int(np.prod(inner)) if inner else 1
    if column.null_count:
        row = int(np.flatnonzero(~np.asarray(column.is_valid().to_numpy(zero_copy_only=False)))[0])
        raise ValueError(
            f"input {name!r}: {column.null_count} of {n} rows have no value (first: row {row} of the batch)"
        )
    offsets = np.asarray(column.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = np.diff(offsets)
    bad = np.flatnonzero(lengths != width)
    if bad.size:
        raise ValueError(
            f"input {name!r} takes {width} value(s) a row, but {bad.size} of {n} rows differ "
            f"(first: row {int(bad[0])} of the batch has {int(lengths[bad[0]])})"
        )
    values = column.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    if dtype == "string":
        flat = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    else:
        flat = values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return flat.reshape((n,) + inner)


class SavedModelHandler(ModelHandler[pa.RecordBatch, BatchPrediction, _LoadedSignature]):
    """Runs one signature of a SavedModel on record batches.

    Args:
      signature: the signature as read by
        :func:`~conveyor.components.inference.model.read_signature`.
      plan: how columns feed it, from
        :func:`~conveyor.components.inference.model.plan_inputs`.
      metadata_schema: the tensorflow-metadata schema of the input batches
        (encodes rows to tf.Examples in ``examples`` mode).
      min_batch_size, max_batch_size: bounds, in rows, of the batches that
        Beam's ``BatchElements`` forms.
    """

    def __init__(
        self,
        signature: SignatureInfo,
        plan: InputPlan,
        metadata_schema=None,
        *,
        min_batch_size: int = 256,
        max_batch_size: int = 4096,
    ):
        super().__init__()
        if min_batch_size < 1 or max_batch_size < min_batch_size:
            raise ValueError(
                f"batch sizes need 1 <= min <= max, got min={min_batch_size} max={max_batch_size}"
            )
        self._signature = signature
        self._plan = plan
        self._metadata_schema = metadata_schema
        self._min = min_batch_size
        self._max = max_batch_size
        self._encoder = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_encoder"] = None  # a C++ object; rebuilt where it is used
        return state

    @property
    def signature(self) -> SignatureInfo:
        """The signature it runs."""
        return self._signature

    @property
    def plan(self) -> InputPlan:
        """How columns feed the signature."""
        return self._plan

    def load_model(self) -> _LoadedSignature:
        return _LoadedSignature(self._signature.model_path, self._signature.name)

    def batch_elements_kwargs(self):
        return {
            "min_batch_size": self._min,
            "max_batch_size": self._max,
            "element_size_fn": _num_rows,
        }

    def get_num_bytes(self, batch: Sequence[pa.RecordBatch]) -> int:
        return sum(b.nbytes for b in batch)

    def get_metrics_namespace(self) -> str:
        return "conveyor.inference"

    def _encode(self, batch: pa.RecordBatch) -> list:
        if self._encoder is None:
            from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

            from conveyor.beam_utils.arrow import to_metadata_schema

            schema = self._metadata_schema or to_metadata_schema(batch.schema)
            self._encoder = RecordBatchToExamplesEncoder(schema)
        return self._encoder.encode(batch)

    def run_inference(
        self,
        batch: Sequence[pa.RecordBatch],
        model: _LoadedSignature,
        inference_args: dict | None = None,
    ) -> Iterable[BatchPrediction]:
        import tensorflow as tf

        if not batch:
            return []
        serialized = None
        if self._plan.mode == EXAMPLES:
            serialized = [self._encode(b) for b in batch]
            joined = [s for part in serialized for s in part]
            args = {
                self._plan.examples_key: tf.constant(np.asarray(joined, dtype=object), tf.string)
            }
        else:
            table = pa.Table.from_batches(batch)
            args = {
                t.key: tf.constant(
                    column_tensor(table.column(t.key), t.key, t.dtype, t.shape), dtype=t.dtype
                )
                for t in self._plan.tensors
            }
        result = model.fn(**args)
        outputs = {k: v.numpy() for k, v in result.items()}
        total = sum(b.num_rows for b in batch)
        for key, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != total:
                raise ValueError(
                    f"output {key!r} of signature {self._signature.name!r} has shape {value.shape}, "
                    f"not one row per example ({total} examples)"
                )
        out = []
        start = 0
        for i, b in enumerate(batch):
            end = start + b.num_rows
            out.append(
                BatchPrediction(
                    b,
                    {k: v[start:end] for k, v in outputs.items()},
                    serialized[i] if serialized is not None else None,
                )
            )
            start = end
        return out


def _num_rows(batch: pa.RecordBatch) -> int:
    return batch.num_rows
