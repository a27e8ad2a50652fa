"""``run_validation``: statistics and a schema in, anomalies out (ExampleValidator's and ``conveyor validate``'s step)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence

from conveyor.dsl import layout
from conveyor.dsl.layout import ANOMALIES_FILE, ANOMALIES_REPORT_FILE


def _statistics(value):
    """A statistics proto as it is, or read from its path."""
    from conveyor.beam_utils.proto_io import read_statistics

    return read_statistics(value) if isinstance(value, str) else value


def run_validation(
    statistics,
    schema,
    output_dir: str,
    options=None,
    *,
    previous_statistics=None,
    baseline_split: str | None = None,
    serving_statistics=None,
    report_file: bool = True,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Validates statistics against a schema and writes the anomalies; returns the summary.

    Every split is read, validated and written in turn: ``Split-<name>/SchemaDiff.pb``
    (a binary ``Anomalies``, TFX ExampleValidator's layout) and, with
    ``report_file``, ``Split-<name>/report.txt`` (:func:`anomalies_report`).

    Args:
      statistics: the statistics to check: a ``FeatureStats.pb`` path (text
        format if the name ends in ``.pbtxt``) or a
        ``DatasetFeatureStatisticsList``, or ``{split: either}`` (a
        StatisticsGen artifact, ``layout.split_files(uri, layout.STATS_FILE)``).
        A split named ``None``, and statistics given alone, are written to
        ``output_dir`` itself rather than to a split folder.
      schema: the curated schema: a ``schema.pbtxt`` path (binary if the name
        ends in ``.pb``) or a ``Schema``.
      output_dir: the ExampleAnomalies artifact's directory.
      options: :class:`ValidationOptions` (environment, dataset, severities).
      previous_statistics: a baseline (path or proto) every split is compared
        with by the schema's drift comparators.
      baseline_split: instead, the split of ``statistics`` the other splits are
        compared with (e.g. ``"train"``); it is itself validated without one.
      serving_statistics: serving statistics (path or proto), for the schema's
        skew comparators.
      report_file: also write ``report.txt`` beside each ``SchemaDiff.pb``.
      beam_args: Beam flags, taken as by every ``run_*``. Statistics are one
        small proto per split, so no pipeline is built and they are not used.

    Returns:
      ``{"splits": {split or "": {"anomalies": Anomalies, "errors": bool,
      "features": [anomalous features, sorted]}}, "errors": whether any split
      has an ERROR anomaly}``. An ExampleAnomalies artifact holds the anomalies
      alone (as TFX's), so the summary is not written.

    Raises:
      InputError: a statistics or schema file cannot be read (naming it).
      ValueError: ``baseline_split`` is not a split of ``statistics``, or the
        statistics have no dataset named ``options.dataset``.
    """
    from conveyor.beam_utils.files import write_text
    from conveyor.beam_utils.proto_io import read_schema, write_anomalies
    from conveyor.components.validation.report import anomalies_report
    from conveyor.components.validation.validate import (
        ValidationOptions,
        has_errors,
        validate_statistics,
    )

    del beam_args  # no pipeline: see the docstring
    options = options or ValidationOptions()
    splits = dict(statistics) if isinstance(statistics, Mapping) else {None: statistics}
    if baseline_split is not None:
        if previous_statistics is not None:
            raise ValueError("run_validation: give previous_statistics or baseline_split, not both")
        if baseline_split not in splits:
            names = sorted(s for s in splits if s is not None)
            raise ValueError(
                f"no statistics for the drift baseline split {baseline_split!r} (splits: {names})"
            )
    if isinstance(schema, str):
        schema = read_schema(schema)
    baseline = _statistics(
        previous_statistics if baseline_split is None else splits[baseline_split]
    )
    serving = _statistics(serving_statistics) if serving_statistics is not None else None
    summary = {}
    for split, stats in splits.items():
        previous = baseline if baseline_split is None or split != baseline_split else None
        anomalies = validate_statistics(
            _statistics(stats),
            schema,
            previous_statistics=previous,
            serving_statistics=serving,
            options=options,
        )
        out = layout.split_uri(output_dir, split) if split is not None else output_dir
        write_anomalies(anomalies, posixpath.join(out, ANOMALIES_FILE))
        if report_file:
            write_text(posixpath.join(out, ANOMALIES_REPORT_FILE), anomalies_report(anomalies))
        summary["" if split is None else split] = {
            "anomalies": anomalies,
            "errors": has_errors(anomalies),
            "features": sorted(anomalies.anomaly_info),
        }
    return {"splits": summary, "errors": any(s["errors"] for s in summary.values())}
