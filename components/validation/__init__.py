"""Validation: check statistics and examples against a schema.

The schema comes from :mod:`conveyor.components.schema_gen` (``conveyor schema``),
curated by a person.

* :func:`validate_statistics` (and :class:`ValidateStatistics`): statistics +
  schema (+ baseline statistics for drift, serving statistics for skew, an
  environment) -> an ``Anomalies`` proto in TFDV's format; :func:`has_errors`,
  :func:`anomaly_pairs` and :func:`anomalies_report` read it.
* :func:`run_validation`: statistics files (or an ExampleStatistics artifact's
  ``{split: path}``) in, ``SchemaDiff.pb`` (and ``report.txt``) per split out:
  the step of the ``ExampleValidator`` node and of ``conveyor validate``.
* :class:`ValidateExamples`: row-level checks of RecordBatches against the
  schema, splitting them into valid rows and a quarantine of rejected rows with
  their reasons (a :class:`ValidateExamplesResult`).
* :class:`DatasetView` and :func:`select_dataset`: statistics as validation
  reads them (TFDV's reading of the proto), which schema inference shares.
* ``read_statistics``, ``read_schema``, ``write_schema``, ``write_anomalies``:
  re-exported from :mod:`conveyor.beam_utils.proto_io`, where they live.

Example::

    from conveyor.components.schema_gen import infer_schema
    from conveyor.components.validation import has_errors, validate_statistics

    schema = infer_schema(train_stats)
    anomalies = validate_statistics(eval_stats, schema, previous_statistics=train_stats)
    if has_errors(anomalies): ...

Names are imported on first use, so the CLI can load its modules without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "ValidationOptions": "validate",
    "validate_statistics": "validate",
    "has_errors": "validate",
    "anomaly_pairs": "validate",
    "ValidateStatistics": "transform",
    "ValidateExamples": "transform",
    "ValidateExamplesResult": "transform",
    "anomalies_report": "report",
    "run_validation": "component",
    "DatasetView": "stats_view",
    "select_dataset": "stats_view",
    "read_statistics": "conveyor.beam_utils.proto_io",
    "read_schema": "conveyor.beam_utils.proto_io",
    "write_schema": "conveyor.beam_utils.proto_io",
    "write_anomalies": "conveyor.beam_utils.proto_io",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
