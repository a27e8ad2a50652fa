"""A model's own preprocessing signatures, run before its metrics (TFMA's
``model_specs[].preprocessing_function_names``).

A TFX module file saves its model with a ``transform_features`` signature
beside ``serving_default``: serialized tf.Examples in, the transformed
features out, the label among them (``species_xf``). The Evaluator calls
such signatures on the raw examples, batch by batch; their outputs are that
model's *transformed features*, where its ``label_key``, ``example_weight_key``
and the slicing features are looked up before the raw features, as TFMA does.
The prediction signature still takes the raw examples.

:func:`plan_preprocessing` reads the signatures from ``saved_model.pb`` at
construction (a missing one is an :class:`~conveyor.beam_utils.errors.InputError`
naming it and the signatures the model has) and decides how each is fed
(serialized tf.Examples, or named tensors from raw columns). :class:`PreprocessFn`
runs them in a pipeline: the SavedModel is loaded once per DoFn instance, in
``setup``; each RecordBatch is encoded once, every signature called on the
whole batch, and the outputs appended as list columns
``<prefix>transformed_features/<output key>``. A batch whose call raises goes
to the ``dead`` output (its row count), as failed inference does.
:func:`resolve_columns` maps labels, weights and slicing features to the
columns they are read from.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa

from conveyor.beam_utils import arrow
from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.components.evaluation.config import (
    DEFAULT_PREPROCESSING_FUNCTION_NAMES,
    EvalSettings,
    ModelSettings,
)

#: What comes after a model's column prefix in the columns of its transformed features.
TRANSFORMED = "transformed_features/"
#: The tag of :class:`PreprocessFn`'s output of failed batches' row counts.
DEAD = "dead"
METRICS_NAMESPACE = "conveyor.evaluation"

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """One model's preprocessing signatures, how they are fed, and where their outputs go.

    Attributes:
      model: the model spec.
      model_path: its SavedModel.
      signatures: the signatures called, in order (``SignatureInfo``).
      plans: how each is fed (``InputPlan``), from the raw columns.
      columns: ``{output key: (index of the signature giving it, column)}``;
        when several signatures give a key, the last one's is kept (TFMA
        updates one dict with each signature's outputs in turn).
      raw_schema: the raw examples' schema (what the signatures read).
      output_schema: the schema of the batches out: the batches in with the
        columns appended.
    """

    model: ModelSettings
    model_path: str
    signatures: tuple
    plans: tuple
    columns: Mapping[str, tuple[int, str]]
    raw_schema: pa.Schema
    output_schema: pa.Schema

    @property
    def outputs(self) -> dict[str, str]:
        """``{output key: column}`` of the model's transformed features."""
        return {key: col for key, (_, col) in self.columns.items()}


def plan_preprocessing(
    model: ModelSettings,
    model_path: str,
    raw_schema: pa.Schema,
    schema: pa.Schema,
    prefix: str,
) -> Preprocessing | None:
    """The :class:`Preprocessing` of one model, or None when it has nothing to call.

    The signatures are the model spec's ``preprocessing_function_names``, each
    required; without names, those of TFMA's defaults
    (:data:`~conveyor.components.evaluation.config.DEFAULT_PREPROCESSING_FUNCTION_NAMES`)
    the model has. ``raw_schema`` is what they read; ``schema`` is that of
    the batches they see (raw columns plus predictions), which the transformed
    features' columns (``prefix`` + ``transformed_features/`` + key) are appended to.

    Raises:
      InputError: a named signature the model lacks (the message lists the
        ones it has), or one the raw examples cannot feed.
    """
    from conveyor.components.inference import output_feature_type, plan_inputs, read_signature

    names = model.preprocessing_function_names
    required = bool(names)
    signatures, plans = [], []
    for name in names or DEFAULT_PREPROCESSING_FUNCTION_NAMES:
        try:
            sig = read_signature(model_path, name)
        except InputError as e:
            if not required:
                continue  # a default the model does not have (the path was checked before)
            raise InputError(
                f"model spec {model.name!r}: preprocessing_function_names names {name!r}: {e}"
            ) from None
        signatures.append(sig)
        plans.append(plan_inputs(sig, raw_schema))
    if not signatures:
        return None
    columns: dict[str, tuple[int, str]] = {}
    for i, sig in enumerate(signatures):
        for key in sig.outputs:
            columns[key] = (i, f"{prefix}{TRANSFORMED}{key}")
    fields = list(schema)
    for key, (i, col) in columns.items():
        if col in schema.names:
            raise InputError(
                f"column {col!r} (output {key!r} of {signatures[i].name!r}) is already in the examples"
            )
        kind = output_feature_type(signatures[i].outputs[key].dtype)
        fields.append(pa.field(col, arrow.column_type(kind)))
    return Preprocessing(
        model, model_path, tuple(signatures), tuple(plans), columns, raw_schema, pa.schema(fields)
    )


@dataclasses.dataclass(frozen=True)
class ResolvedColumns:
    """Where each model's label and weight, and each slicing feature, are read.

    ``labels`` and ``weights`` are per model (``settings.models`` order; a
    weight None: every example weighs 1); ``slices`` maps a slicing feature
    to its column when that is not the column of its own name.
    """

    labels: tuple[str, ...]
    weights: tuple[str | None, ...]
    slices: Mapping[str, str]


def resolve_columns(
    settings: EvalSettings,
    schema: pa.Schema,
    transformed: Mapping[str, Mapping[str, str]],
) -> ResolvedColumns:
    """Looks labels, weights and slicing features up in the transformed features first.

    ``transformed`` is ``{model name: {output key: column}}`` (a model's
    :attr:`Preprocessing.outputs`). A model's label and weight are its own
    transformed feature of that name if it has one, else the raw column; a
    slicing feature is the first model's (``settings.models`` order) that has
    it, else the raw column, as TFMA searches the models' transformed features.

    Raises:
      InputError: a label or weight key of a model with preprocessing that is
        neither an output of its preprocessing signatures nor a column.
    """
    names = set(schema.names)
    labels, weights = [], []
    for model in settings.models:
        own = transformed.get(model.name, {})
        for field, key, out in (
            ("label_key", model.label_key, labels),
            ("example_weight_key", model.example_weight_key, weights),
        ):
            if key is None:
                out.append(None)
            elif key in own:
                out.append(own[key])
            elif own and key not in names:
                raise InputError(
                    f"{field} {key!r} of model spec {model.name!r} is neither an output of its "
                    f"preprocessing signatures ({', '.join(sorted(own))}) nor a column of the "
                    f"examples ({', '.join(n for n in schema.names if not n.startswith('__'))})"
                )
            else:
                out.append(key)
    slices = {}
    for spec in settings.slices:
        for name in spec.columns:
            for model in settings.models:
                column = transformed.get(model.name, {}).get(name)
                if column is not None:
                    slices[name] = column
                    break
    return ResolvedColumns(tuple(labels), tuple(weights), slices)


# --- running ---------------------------------------------------------------------


class _LoadedModel:
    """A SavedModel loaded for its preprocessing signatures; :func:`release_preprocessing_models`
    frees it while TensorFlow is up (a released one loads again when called)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._model = None
        self._load()
        _LOADED.add(self)
        _release_at_exit()

    def _load(self):
        import tensorflow as tf

        self._model = tf.saved_model.load(self.path)

    def signature(self, name: str):
        """The signature function ``name`` (loading the model again if released)."""
        with self._lock:
            if self._model is None:
                self._load()
            return self._model.signatures[name]

    def release(self) -> None:
        with self._lock:
            self._model = None


_LOADED: weakref.WeakSet = weakref.WeakSet()
_EXIT_HOOK: list = []


def release_preprocessing_models() -> None:
    """Frees the SavedModels that :class:`PreprocessFn` loaded in this process, now."""
    for loaded in list(_LOADED):
        loaded.release()


def _release_at_exit() -> None:
    if not _EXIT_HOOK:
        import atexit

        _EXIT_HOOK.append(atexit.register(release_preprocessing_models))


class PreprocessFn(beam.DoFn):
    """RecordBatches -> the same rows with the model's transformed features appended.

    The SavedModel loads once per DoFn instance (``setup``); a batch is encoded
    to serialized tf.Examples once (when a signature takes them) and each
    signature called on all its rows. A batch whose call raises is logged and
    its row count goes to the :data:`DEAD` output.
    """

    def __init__(self, preprocessing: Preprocessing):
        self._pre = preprocessing
        self._loaded = None
        self._encoder = None
        self._rows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "examples_preprocessed")
        self._dead = beam.metrics.Metrics.counter(
            METRICS_NAMESPACE, "examples_preprocessing_failed"
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_loaded"] = state["_encoder"] = None
        return state

    def setup(self):
        self._loaded = _LoadedModel(self._pre.model_path)

    def teardown(self):
        if self._loaded is not None:
            self._loaded.release()
            self._loaded = None

    def process(self, batch: pa.RecordBatch):
        if not batch.num_rows:
            return
        try:
            out = self.transform(batch)
        except Exception as e:  # the model's failure on these rows: dead-lettered, counted
            _LOG.warning(
                "preprocessing (%s of %s) failed on a batch of %d examples: %s",
                ", ".join(s.name for s in self._pre.signatures),
                self._pre.model_path,
                batch.num_rows,
                e,
            )
            self._dead.inc(batch.num_rows)
            yield beam.pvalue.TaggedOutput(DEAD, batch.num_rows)
            return
        self._rows.inc(batch.num_rows)
        yield out

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with every transformed feature column appended (raises on a bad output)."""
        import tensorflow as tf

        from conveyor.components.inference import prediction_column

        pre = self._pre
        if self._loaded is None:
            self.setup()
        n = batch.num_rows
        raw = arrow.conform(batch, pre.raw_schema)  # the raw columns alone
        serialized = None
        results = []
        for sig, plan in zip(pre.signatures, pre.plans):
            if plan.examples_key is not None:  # serialized tf.Examples (else named tensors)
                if serialized is None:
                    serialized = tf.constant(np.asarray(self._encode(raw), dtype=object), tf.string)
                args = {plan.examples_key: serialized}
            else:
                args = _tensor_args(raw, plan)
            result = self._loaded.signature(sig.name)(**args)
            results.append({k: np.asarray(v.numpy()) for k, v in result.items()})
        arrays = list(batch.columns)
        for key, (i, col) in pre.columns.items():
            values = results[i][key]
            if values.ndim == 0 or values.shape[0] != n:
                raise ValueError(
                    f"output {key!r} of signature {pre.signatures[i].name!r} has shape "
                    f"{values.shape}, not one row per example ({n} examples)"
                )
            kind = arrow.feature_type(pre.output_schema.field(col).type)
            arrays.append(prediction_column(values, kind))
        return pa.RecordBatch.from_arrays(arrays, schema=pre.output_schema)

    def _encode(self, raw: pa.RecordBatch) -> list:
        if self._encoder is None:
            from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

            self._encoder = RecordBatchToExamplesEncoder(
                arrow.to_metadata_schema(self._pre.raw_schema)
            )
        return self._encoder.encode(raw)


def _tensor_args(raw: pa.RecordBatch, plan) -> dict:
    import tensorflow as tf

    from conveyor.components.inference import column_tensor

    return {
        t.key: tf.constant(column_tensor(raw.column(t.key), t.key, t.dtype, t.shape), dtype=t.dtype)
        for t in plan.tensors
    }


def check_models_with_preprocessing(
    settings: EvalSettings, paths: Mapping[str, str | None]
) -> None:
    """Refuses preprocessing_function_names on a model spec evaluated without a model."""
    for model in settings.models:
        if model.preprocessing_function_names and not paths.get(model.name):
            raise UsageError(
                f"model spec {model.name!r} names preprocessing_function_names "
                f"{list(model.preprocessing_function_names)} but has no SavedModel to call them on"
            )


def names_of(preprocessings: Sequence[Preprocessing]) -> dict[str, dict[str, str]]:
    """``{model name: {output key: column}}`` of several models' preprocessing."""
    return {p.model.name: p.outputs for p in preprocessings}
