"""Monitoring: statistics, validation (drift) and metrics per fixed window of a stream.

:class:`MonitorWindows` turns a PCollection of RecordBatches (a stream, or a
bounded PCollection) into one result per fixed window: the window's
statistics validated against a schema and a baseline (the schema's
``drift_comparator`` thresholds), optionally model metrics from a prediction
column or from a SavedModel run on the window's rows, with ``FeatureStats.pb``,
``SchemaDiff.pb`` and ``report.txt`` written per window and one log line per
firing (late data within ``allowed_lateness`` fires a window again).
:class:`WatchFiles` (new CSV, TFRecord or Parquet files of a pattern, looked
for every few seconds; unreadable files logged and skipped) and
:class:`ReadPubSubExamples` (messages of CSV lines or serialized tf.Examples)
are its streaming sources; :class:`SummarizeRun` totals a run (windows,
anomalies, files read and skipped) when its stream ends. :func:`run_monitor`
runs them all in one streaming pipeline (window folders and ``summary.json``
written, the summary returned), and ``conveyor monitor`` runs that from the
command line.

Example::

    from conveyor.components.monitor import MonitorWindows, WatchFiles

    results = (p | WatchFiles("incoming/*.csv", arrow_schema, interval=30)
                 | MonitorWindows(schema, baseline, 600, timestamp_column="ts",
                                  output_dir="monitor/"))

    # or the whole run, until the watch stops:
    from conveyor.components.monitor import run_monitor

    source = WatchFiles("incoming/*.csv", arrow_schema, interval=30, stop_after=3600, reports=True)
    summary = run_monitor(source, "monitor/", schema, baseline_statistics=baseline,
                          window_seconds=600, timestamp_column="ts")

Names are imported on first use, so the CLI can load ``monitor.cli`` without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "MonitorWindows": "transform",
    "event_micros": "transform",
    "window_dir_name": "transform",
    "SummarizeRun": "transform",
    "read_summary": "transform",
    "WatchFiles": "transform",
    "ReadPubSubExamples": "transform",
    "ExampleDecoder": "sources",
    "run_monitor": "component",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
