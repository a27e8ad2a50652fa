"""``run_monitor``: a stream in, statistics, drift and metrics per window out (``conveyor monitor``'s step).

Example::

    from conveyor.components.monitor import WatchFiles, run_monitor

    source = WatchFiles("incoming/*.csv", arrow_schema, interval=30, stop_after=3600, reports=True)
    summary = run_monitor(source, "monitor/", schema, window_seconds=600, timestamp_column="ts")
    print(summary["windows"], summary["windows_with_errors"])
"""

from __future__ import annotations

from collections.abc import Sequence

#: The run's totals, written in the output directory when the stream ends.
SUMMARY_FILE = "summary.json"


def run_monitor(
    source,
    output_dir: str,
    schema,
    *,
    baseline_statistics=None,
    window_seconds: float = 600.0,
    timestamp_column: str | None = None,
    stats_options=None,
    validation_options=None,
    eval_settings=None,
    model=None,
    input_schema=None,
    signature: str = "serving_default",
    allowed_lateness: float = 0.0,
    beam_args: Sequence[str] | None = None,
) -> dict | None:
    """Monitors a stream in one streaming Beam pipeline, until it ends; returns the run's totals.

    The source's batches go through :class:`MonitorWindows` (each window's
    folder ``window-<start>-<end>/`` written in ``output_dir`` as it fires) and
    its reports and the windows' results through :class:`SummarizeRun`, which
    writes ``summary.json`` in ``output_dir`` when the stream ends (a file watch
    reaching its ``stop_after``, a drained pipeline). The pipeline runs until
    then, or until it is cancelled.

    Args:
      source: the stream, a :class:`WatchFiles` or :class:`ReadPubSubExamples`
        made with ``reports=True`` (any PTransform of the pipeline's start that
        gives ``(batches, reports)`` will do).
      output_dir: the folder of the windows' folders and ``summary.json``
        (written into as the windows fire: prepare it beforehand).
      schema: the curated tensorflow-metadata ``Schema``.
      baseline_statistics, window_seconds, timestamp_column, stats_options,
      validation_options, eval_settings, model, input_schema, signature,
      allowed_lateness: as :class:`MonitorWindows` takes them.
      beam_args: Beam flags (a runner, its options); the pipeline is made a
        streaming one whatever they say.

    Returns:
      the summary :class:`SummarizeRun` wrote (windows, anomalies, late
      firings, files read and skipped with their reasons, rows read and
      rejected; ``examples_predicted`` and ``examples_dead_lettered`` with a
      model). A file watch during which nothing came in writes none and gets
      zero totals; a Pub/Sub read that writes none was stopped before its end
      (cancelled): None.

    Raises:
      UsageError: settings :class:`MonitorWindows` refuses (before the
        pipeline is built); ValueError: a source that gives no reports.
    """
    import uuid

    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import StandardOptions

    from conveyor.beam_utils.errors import InputError, UsageError
    from conveyor.beam_utils.options import pipeline_options
    from conveyor.components.monitor.transform import (
        MonitorWindows,
        ReadPubSubExamples,
        RunSummaryFn,
        SummarizeRun,
        read_summary,
    )

    try:
        monitor = MonitorWindows(
            schema,
            baseline_statistics,
            window_seconds,
            timestamp_column,
            output_dir=output_dir,
            stats_options=stats_options,
            validation_options=validation_options,
            eval_settings=eval_settings,
            model=model,
            input_schema=input_schema,
            signature=signature,
            allowed_lateness=allowed_lateness,
        )
    except (InputError, UsageError):
        raise
    except ValueError as e:
        raise UsageError(str(e)) from None

    options = pipeline_options(beam_args)
    options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(options=options)
    read = pipeline | "Source" >> source
    if not (isinstance(read, tuple) and len(read) == 2):
        raise ValueError(
            "run_monitor: the source must give (batches, reports): make it with reports=True"
        )
    batches, reports = read
    results = batches | "Monitor" >> monitor
    # The totals travel through the pipeline and a file, not the runner's metrics:
    # the local runner's metrics of a long stream overflow the stack when read.
    run_id = uuid.uuid4().hex
    summary_path = FileSystems.join(output_dir, SUMMARY_FILE)
    _ = (results, reports) | "Summary" >> SummarizeRun(summary_path, run_id)
    pipeline.run().wait_until_finish()

    summary = read_summary(summary_path, run_id)
    if summary is None and not isinstance(source, ReadPubSubExamples):  # nothing came in
        fn = RunSummaryFn()
        summary = fn.extract_output(fn.create_accumulator())
    return summary
