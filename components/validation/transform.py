"""Beam PTransforms of validation: statistics against a schema, and rows against a schema.

* :class:`ValidateStatistics`: statistics are small (one proto per dataset), so
  it is a ``Map`` over a PCollection of ``DatasetFeatureStatisticsList``: it
  composes with ``GenerateStatistics`` in one pipeline and works per window as
  well.
* :class:`ValidateExamples`: every row of every ``pyarrow.RecordBatch`` checked
  against the schema (the checks are in ``row_checks.py``), split into valid
  rows and a quarantine of rejected rows with their reasons.

Example::

    stats = batches | GenerateStatistics()
    anomalies = stats | ValidateStatistics(schema, previous_statistics=beam.pvalue.AsSingleton(base))
    checked = batches | ValidateExamples(schema, environment="SERVING")
    checked.valid | WriteExamples(...)
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from conveyor.components.validation.row_checks import ValidateBatchFn
from conveyor.components.validation.validate import ValidationOptions, validate_statistics

# A statistics list, or one dataset of it.
_STATISTICS = statistics_pb2.DatasetFeatureStatisticsList | statistics_pb2.DatasetFeatureStatistics


def _validate(stats, schema, previous, serving, options):
    return validate_statistics(
        stats, schema, previous_statistics=previous, serving_statistics=serving, options=options
    )


@beam.typehints.with_input_types(_STATISTICS)
@beam.typehints.with_output_types(anomalies_pb2.Anomalies)
class ValidateStatistics(beam.PTransform):
    """PCollection of ``DatasetFeatureStatisticsList`` -> PCollection of ``Anomalies``.

    ``schema``, ``previous_statistics`` and ``serving_statistics`` are protos or
    singleton side inputs (``beam.pvalue.AsSingleton(pcoll)``), so a schema or a
    baseline computed in the same pipeline can be passed.
    """

    def __init__(
        self,
        schema,
        *,
        previous_statistics=None,
        serving_statistics=None,
        options: ValidationOptions | None = None,
    ):
        super().__init__()
        self._schema = schema
        self._previous = previous_statistics
        self._serving = serving_statistics
        self._options = options or ValidationOptions()

    def expand(self, statistics):
        """One ``Anomalies`` per statistics element."""
        return statistics | "Validate" >> beam.Map(
            _validate, self._schema, self._previous, self._serving, self._options
        )


class ValidateExamplesResult(NamedTuple):
    """The outputs of :class:`ValidateExamples`.

    Attributes:
      valid: RecordBatches (the input schema) of the rows that pass.
      quarantine: one dict per rejected row, ``{"row": {feature: values},
        "reasons": [text, ...], "anomaly_types": [AnomalyInfo type name, ...]}``
        (bytes shown as UTF-8 text, so the dict is JSON-ready).
      counts: one dict per batch, ``{"rows", "valid", "quarantined"}``, with
        ``rows == valid + quarantined``, so the totals reconcile.
    """

    valid: beam.PCollection
    quarantine: beam.PCollection
    counts: beam.PCollection


# Input types only: the three outputs (see ValidateExamplesResult) have different types, and a
# PTransform's output hint would be given to all three.
@beam.typehints.with_input_types(pa.RecordBatch)
class ValidateExamples(beam.PTransform):
    """Splits RecordBatches into rows that satisfy ``schema`` and a quarantine.

    The checks per feature of the schema (deprecated features and features
    outside ``environment`` are skipped): presence where required, type,
    number of values (``value_count``, ``shape``), string, int, float and bool
    domains (NaN and infinity where disallowed), each reported with TFDV's
    anomaly type. Columns the schema does not know pass through unchecked.
    Row-level checks are stricter than statistics validation by nature: every
    out-of-domain value rejects its row.

    Args:
      schema: the curated tensorflow-metadata ``Schema``.
      environment: the environment of the data (e.g. ``SERVING``): features the
        schema keeps out of it are not checked.

    Returns a :class:`ValidateExamplesResult` ``(valid, quarantine, counts)``.
    """

    def __init__(self, schema: schema_pb2.Schema, environment: str | None = None):
        super().__init__()
        self._schema_bytes = schema.SerializeToString()
        self._environment = environment

    def expand(self, batches):
        """The :class:`ValidateExamplesResult` of the batches."""
        out = batches | "CheckRows" >> beam.ParDo(
            ValidateBatchFn(self._schema_bytes, self._environment)
        ).with_outputs("quarantine", "counts", main="valid")
        return ValidateExamplesResult(out.valid, out.quarantine, out.counts)
