"""Validation: check statistics and examples against a schema.

The schema comes from :mod:`conveyor.components.schema_gen` (``conveyor schema``),
curated by a person.

* :func:`validate_statistics` (and :class:`ValidateStatistics`): statistics +
  schema (+ baseline statistics for drift, serving statistics for skew, an
  environment) -> an ``Anomalies`` proto in TFDV's format (``conveyor validate``).
* :class:`ValidateExamples`: row-level checks of RecordBatches against the
  schema, splitting them into valid rows and a quarantine of rejected rows with
  their reasons.

Example::

    from conveyor.components.schema_gen import infer_schema
    from conveyor.components.validation import validate_statistics

    schema = infer_schema(train_stats)
    anomalies = validate_statistics(eval_stats, schema, previous_statistics=train_stats)

Names are imported on first use, so the CLI can load its modules without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "DatasetView": "stats_view",
    "select_dataset": "stats_view",
    "ValidationOptions": "validate",
    "validate_statistics": "validate",
    "has_errors": "validate",
    "anomaly_pairs": "validate",
    "ValidateStatistics": "transforms",
    "ValidateExamples": "examples",
    "ValidateExamplesResult": "examples",
    "anomalies_report": "report",
    "read_statistics": "conveyor.beam_utils.proto_io",
    "read_schema": "conveyor.beam_utils.proto_io",
    "write_schema": "conveyor.beam_utils.proto_io",
    "write_anomalies": "conveyor.beam_utils.proto_io",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
