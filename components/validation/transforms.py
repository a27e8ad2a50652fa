"""Beam PTransforms around schema inference and statistics validation.

Statistics are small (one proto per dataset), so both transforms are a ``Map``
over a PCollection of ``DatasetFeatureStatisticsList``: they compose with
``GenerateStatistics`` in one pipeline and work per window as well.

Example::

    stats = batches | GenerateStatistics()
    schema = stats | InferSchema()
    anomalies = stats | ValidateStatistics(beam.pvalue.AsSingleton(schema))
"""

from __future__ import annotations

import apache_beam as beam

from conveyor.components.validation.validate import ValidationOptions, validate_statistics


def _validate(stats, schema, previous, serving, options):
    return validate_statistics(stats, schema, previous_statistics=previous,
                               serving_statistics=serving, options=options)


class ValidateStatistics(beam.PTransform):
    """PCollection of ``DatasetFeatureStatisticsList`` -> PCollection of ``Anomalies``.

    ``schema``, ``previous_statistics`` and ``serving_statistics`` are protos or
    singleton side inputs (``beam.pvalue.AsSingleton(pcoll)``), so a schema or a
    baseline computed in the same pipeline can be passed.
    """

    def __init__(self, schema, *, previous_statistics=None, serving_statistics=None,
                 options: ValidationOptions | None = None):
        super().__init__()
        self._schema = schema
        self._previous = previous_statistics
        self._serving = serving_statistics
        self._options = options or ValidationOptions()

    def expand(self, statistics):
        return statistics | "Validate" >> beam.Map(
            _validate, self._schema, self._previous, self._serving, self._options)
