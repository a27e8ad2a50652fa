"""The row-level checks of RecordBatches against a schema, behind ``ValidateExamples``.

TFDV validates statistics; a pipeline often also needs to keep bad rows out of
training. ``ValidateExamples(schema)`` (in ``transform.py``) runs
:class:`ValidateBatchFn` over every batch and splits the data into:

* ``valid``: RecordBatches (the input schema) of the rows that pass;
* ``quarantine``: one dict per rejected row, ``{"row": {feature: values},
  "reasons": [text, ...], "anomaly_types": [AnomalyInfo type name, ...]}``
  (bytes shown as UTF-8 text, so the dict is JSON-ready);
* ``counts``: one dict per batch, ``{"rows", "valid", "quarantined"}``;
  ``rows == valid + quarantined`` for every batch, so the totals reconcile.

The checks per feature of the schema (deprecated features and features outside
``environment`` are skipped), vectorised with pyarrow compute and numpy:

* missing in a row although required there (``presence.min_fraction`` of 1,
  or a fixed ``shape``): ``FEATURE_TYPE_LOW_FRACTION_PRESENT``; a required
  feature absent from the batch altogether: ``SCHEMA_MISSING_COLUMN``;
* a column of another type than the schema's: ``UNEXPECTED_DATA_TYPE``;
* number of values outside ``value_count`` or unequal to the ``shape``:
  ``FEATURE_TYPE_LOW_NUMBER_VALUES``/``..._HIGH_...``/``INVALID_FEATURE_SHAPE``;
* a string outside the string domain (``pc.is_in``), an integer or float outside
  ``int_domain``/``float_domain``, NaN or infinity where disallowed, a non-0/1
  integer or an unknown spelling in a ``bool_domain``: the matching TFDV type.

Columns the schema does not know pass through unchecked (statistics validation
reports them as ``SCHEMA_NEW_COLUMN``). Row-level checks are stricter than
statistics validation by nature: a string domain's ``min_domain_mass``
tolerance, for instance, cannot apply to a single row, so every out-of-domain
value rejects its row.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import schema_pb2

from conveyor.beam_utils import arrow as carrow
from conveyor.components.validation.validate import in_environment, is_deprecated

METRICS_NAMESPACE = "conveyor.validation"
_ARROW_TYPE = {
    schema_pb2.INT: carrow.INT,
    schema_pb2.FLOAT: carrow.FLOAT,
    schema_pb2.BYTES: carrow.BYTES,
}


def _show(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


class _Failures:
    """Rows that failed, with their reasons, gathered across checks."""

    def __init__(self, n: int):
        self.n = n
        self.bad = np.zeros(n, dtype=bool)
        self.reasons: dict[int, list[tuple[str, str]]] = {}

    def add(self, rows: np.ndarray, anomaly_type: str, messages) -> None:
        """``messages``: one text for all rows, or one per row of ``rows``."""
        if rows.size == 0:
            return
        self.bad[rows] = True
        if isinstance(messages, str):
            messages = [messages] * rows.size
        for r, m in zip(rows.tolist(), messages):
            self.reasons.setdefault(r, []).append((anomaly_type, m))


def _first_per_row(parents: np.ndarray, flat_bad: np.ndarray, values: pa.Array):
    """(rows with a bad value, the first bad value of each) from flat masks."""
    idx = np.flatnonzero(flat_bad)
    if idx.size == 0:
        return np.empty(0, dtype=np.int64), []
    rows, first = np.unique(parents[idx], return_index=True)
    picked = values.take(pa.array(idx[first])).to_pylist()
    return rows, picked


class _RowChecker:
    """The checks of one schema, applied to a RecordBatch."""

    def __init__(self, schema: schema_pb2.Schema, environment: str | None):
        self.features = [
            f
            for f in schema.feature
            if not is_deprecated(f)
            and in_environment(f, schema, environment)
            and f.type in _ARROW_TYPE
        ]
        self.domains = {d.name: list(d.value) for d in schema.string_domain}
        self.schema = schema
        self.environment = environment

    def check(self, batch: pa.RecordBatch) -> _Failures:
        fails = _Failures(batch.num_rows)
        names = set(batch.schema.names)
        for f in self.features:
            if f.name not in names:
                if f.presence.min_count > 0 or f.presence.min_fraction > 0:
                    fails.add(
                        np.arange(batch.num_rows),
                        "SCHEMA_MISSING_COLUMN",
                        f"{f.name}: required feature absent from the data",
                    )
                continue
            self._check_column(f, batch.column(f.name), fails)
        return fails

    def _check_column(self, f, col: pa.Array, fails: _Failures) -> None:
        name = f.name
        expected = carrow.column_type(_ARROW_TYPE[f.type])
        present = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        must_be_present = f.presence.min_fraction >= 1.0 or f.HasField("shape")
        if must_be_present:
            fails.add(
                np.flatnonzero(~present),
                "FEATURE_TYPE_LOW_FRACTION_PRESENT",
                f"{name}: missing, but the schema requires it in every example",
            )
        if col.type != expected:
            try:
                got = carrow.feature_type(col.type)
            except ValueError:
                got = str(col.type)
            fails.add(
                np.flatnonzero(present),
                "UNEXPECTED_DATA_TYPE",
                f"{name}: has type {got}, the schema expects {schema_pb2.FeatureType.Name(f.type)}",
            )
            return
        lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
        self._check_lengths(f, lengths, present, fails)
        values = pc.list_flatten(col)
        if len(values) == 0:
            return
        parents = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        self._check_values(f, values, parents, fails)

    def _check_lengths(self, f, lengths, present, fails) -> None:
        name = f.name
        if f.HasField("value_count"):
            vc = f.value_count
            if vc.HasField("min"):
                rows = np.flatnonzero(present & (lengths < vc.min))
                fails.add(
                    rows,
                    "FEATURE_TYPE_LOW_NUMBER_VALUES",
                    [
                        f"{name}: {n} value(s), the schema expects at least {vc.min}"
                        for n in lengths[rows]
                    ],
                )
            if vc.HasField("max"):
                rows = np.flatnonzero(present & (lengths > vc.max))
                fails.add(
                    rows,
                    "FEATURE_TYPE_HIGH_NUMBER_VALUES",
                    [
                        f"{name}: {n} value(s), the schema expects at most {vc.max}"
                        for n in lengths[rows]
                    ],
                )
        if f.HasField("shape"):
            size = int(np.prod([d.size for d in f.shape.dim])) if f.shape.dim else 1
            rows = np.flatnonzero(present & (lengths != size))
            fails.add(
                rows,
                "INVALID_FEATURE_SHAPE",
                [f"{name}: {n} value(s), the schema's shape holds {size}" for n in lengths[rows]],
            )

    def _check_values(self, f, values: pa.Array, parents: np.ndarray, fails: _Failures) -> None:
        name = f.name
        which = f.WhichOneof("domain_info")

        def report(flat_bad, anomaly_type, describe):
            rows, picked = _first_per_row(parents, flat_bad, values)
            fails.add(rows, anomaly_type, [describe(v) for v in picked])

        if which in ("domain", "string_domain") and f.type == schema_pb2.BYTES:
            allowed = (
                self.domains.get(f.domain) if which == "domain" else list(f.string_domain.value)
            )
            if allowed is None:
                return
            allowed_arr = pa.array([v.encode("utf-8") for v in allowed], pa.large_binary())
            inside = pc.is_in(values, value_set=allowed_arr).to_numpy(zero_copy_only=False)
            report(
                ~inside,
                "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                lambda v: f"{name}: value {_show(v)!r} is outside the domain",
            )
        elif which == "int_domain" and f.type == schema_pb2.INT:
            self._range(
                f.int_domain, values, report, name, "INT_TYPE_SMALL_INT", "INT_TYPE_BIG_INT"
            )
        elif which == "float_domain" and f.type == schema_pb2.FLOAT:
            d = f.float_domain
            arr = values.to_numpy(zero_copy_only=False)
            if d.disallow_nan:
                report(np.isnan(arr), "FLOAT_TYPE_HAS_NAN", lambda v: f"{name}: NaN is not allowed")
            if d.disallow_inf:
                report(
                    np.isinf(arr),
                    "FLOAT_TYPE_HAS_INF",
                    lambda v: f"{name}: {_show(v)} is not allowed",
                )
            self._range(d, values, report, name, "FLOAT_TYPE_SMALL_FLOAT", "FLOAT_TYPE_BIG_FLOAT")
        elif which == "bool_domain":
            d = f.bool_domain
            if f.type == schema_pb2.INT:
                arr = values.to_numpy(zero_copy_only=False)
                report(arr < 0, "BOOL_TYPE_SMALL_INT", lambda v: f"{name}: {v} is not 0 or 1")
                report(arr > 1, "BOOL_TYPE_BIG_INT", lambda v: f"{name}: {v} is not 0 or 1")
            elif f.type == schema_pb2.BYTES:
                spellings = [s.encode("utf-8") for s in (d.true_value, d.false_value) if s]
                inside = pc.is_in(values, value_set=pa.array(spellings, pa.large_binary()))
                report(
                    ~inside.to_numpy(zero_copy_only=False),
                    "BOOL_TYPE_UNEXPECTED_STRING",
                    lambda v: f"{name}: {_show(v)!r} is not a spelling of true or false",
                )

    @staticmethod
    def _range(domain, values, report, name, small, big) -> None:
        arr = values.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            if domain.HasField("min"):
                lo = domain.min
                report(arr < lo, small, lambda v: f"{name}: {_show(v)} is below the minimum {lo:g}")
            if domain.HasField("max"):
                hi = domain.max
                report(arr > hi, big, lambda v: f"{name}: {_show(v)} is above the maximum {hi:g}")


class ValidateBatchFn(beam.DoFn):
    """Checks each RecordBatch: valid rows out, rejected rows and per-batch counts tagged."""

    def __init__(self, schema_bytes: bytes, environment: str | None):
        self._schema_bytes = schema_bytes
        self._environment = environment
        self._checker = None
        self._rows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows")
        self._valid = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "valid_rows")
        self._quarantined = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "quarantined_rows")

    def setup(self):
        """Parses the schema once per worker."""
        schema = schema_pb2.Schema.FromString(self._schema_bytes)
        self._checker = _RowChecker(schema, self._environment)

    def process(self, batch: pa.RecordBatch):
        """Valid rows (main output), rejected rows (``quarantine``) and the batch's ``counts``."""
        fails = self._checker.check(batch)
        n = batch.num_rows
        bad = int(fails.bad.sum())
        self._rows.inc(n)
        self._valid.inc(n - bad)
        self._quarantined.inc(bad)
        if bad == 0:
            if n:
                yield batch
        else:
            if bad < n:
                yield batch.filter(pa.array(~fails.bad))
            rows = np.flatnonzero(fails.bad)
            taken = batch.take(pa.array(rows)).to_pylist()
            for r, row in zip(rows.tolist(), taken):
                reasons = fails.reasons[r]
                yield beam.pvalue.TaggedOutput(
                    "quarantine",
                    {
                        "row": {
                            k: (None if v is None else [_show(x) for x in v])
                            for k, v in row.items()
                        },
                        "reasons": [m for _, m in reasons],
                        "anomaly_types": sorted({t for t, _ in reasons}),
                    },
                )
        yield beam.pvalue.TaggedOutput("counts", {"rows": n, "valid": n - bad, "quarantined": bad})


def check_batch(batch: pa.RecordBatch, schema: schema_pb2.Schema, environment: str | None = None):
    """(valid mask as numpy bool, {row: [(anomaly type, reason)]}) of one batch, without Beam."""
    fails = _RowChecker(schema, environment).check(batch)
    return ~fails.bad, fails.reasons
