"""``MonitorWindows``: statistics, validation and (optionally) metrics per fixed window.

Over a PCollection of canonical RecordBatches (bounded or unbounded)::

    batches
      | assign event time   (a timestamp column, split per window with numpy;
      |                      else the element's own timestamp: arrival time)
      | WindowInto(FixedWindows(window_seconds))
      | GenerateStatistics  (one DatasetFeatureStatisticsList per window)
      | validate            (schema + baseline statistics for drift)
      -> one result dict per window; files under OUTPUT/window-<start>-<end>/

A window's result fires when the watermark passes its end; data behind the
watermark (later than the window it belongs to) is dropped by Beam, so pick
windows wider than the sources' delay.
"""

from __future__ import annotations

import datetime
import json
import logging
import posixpath

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms import window
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from conveyor.components.evaluation.transform import MetricsCombineFn
from conveyor.components.statistics.component import STATS_FILE
from conveyor.components.statistics.options import StatsOptions
from conveyor.components.statistics.transform import GenerateStatistics
from conveyor.components.validation.validate import (
    ValidationOptions,
    anomaly_pairs,
    has_errors,
    validate_statistics,
)

METRICS_NAMESPACE = "conveyor.monitor"
ANOMALIES_FILE = "SchemaDiff.pb"
REPORT_FILE = "report.txt"
METRICS_FILE = "metrics.json"
RESULT_FILE = "result.json"
_MICROS = 1_000_000
_NUMBER_RE = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"

_LOG = logging.getLogger(__name__)


# ----------------------------------------------------------------- event time


def _first_values(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The first value of each row of a list column (or the column itself), and
    a mask of the rows that have one."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    t = column.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        return column, np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    flat = pc.list_flatten(column)
    parents = np.asarray(pc.list_parent_indices(column).to_numpy(zero_copy_only=False), dtype=np.int64)
    rows, first = np.unique(parents, return_index=True)
    values = flat.take(pa.array(first, type=pa.int64()))
    has = np.zeros(n, dtype=bool)
    has[rows] = True
    # Scatter back to one slot per row (rows without a value stay null).
    index = np.full(n, -1, dtype=np.int64)
    index[rows] = np.arange(len(rows), dtype=np.int64)
    taken = values.take(pa.array(index, mask=~has))
    return taken, has & np.asarray(taken.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _parse_iso(text: str) -> float:
    value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def event_micros(column: pa.Array) -> np.ndarray:
    """Event time of each row in microseconds since the epoch (UTC), ``-1`` where unknown.

    The column holds seconds since the epoch (INT or FLOAT), ``timestamp``
    values, or text: numbers of seconds or ISO-8601 date-times (UTC unless
    they carry an offset). A list column is read by its first value; a row
    without one, or whose text does not parse, has no event time.
    """
    values, has = _first_values(column)
    n = len(values)
    out = np.full(n, -1, dtype=np.int64)
    t = values.type
    if pa.types.is_timestamp(t):
        micros = pc.cast(pc.cast(values, pa.timestamp("us", tz=t.tz)), pa.int64())
        out[has] = np.asarray(micros.to_numpy(zero_copy_only=False))[has]
        return out
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        secs = np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        text = pc.cast(values, pa.large_string()) if not pa.types.is_large_string(t) else values
        secs = np.full(n, np.nan)
        numeric = np.asarray(
            pc.fill_null(pc.match_substring_regex(text, _NUMBER_RE), False).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        if numeric.any():
            secs[numeric] = np.asarray(
                pc.cast(text.filter(pa.array(numeric)), pa.float64()).to_numpy(zero_copy_only=False)
            )
        rest = has & ~numeric
        if rest.any():
            picked = text.filter(pa.array(rest))
            try:
                stamps = pc.cast(pc.cast(picked, pa.timestamp("us", tz="UTC")), pa.int64())
                secs[rest] = np.asarray(stamps.to_numpy(zero_copy_only=False), dtype=np.float64) / _MICROS
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                parsed = []  # some text is no timestamp: parse one by one, NaN for the bad ones
                for s in picked.to_pylist():
                    try:
                        parsed.append(_parse_iso(s))
                    except (TypeError, ValueError):
                        parsed.append(np.nan)
                secs[rest] = parsed
    good = has & np.isfinite(secs)
    out[good] = np.round(secs[good] * _MICROS).astype(np.int64)
    out[out < 0] = -1  # before the epoch: refused rather than mistaken for "unknown"
    return out


def _drop_columns(batch: pa.RecordBatch, names) -> pa.RecordBatch:
    keep = [i for i, f in enumerate(batch.schema) if f.name not in names]
    if len(keep) == batch.num_columns:
        return batch
    return pa.RecordBatch.from_arrays([batch.column(i) for i in keep],
                                      schema=pa.schema([batch.schema.field(i) for i in keep]))


class _EventTimeFn(beam.DoFn):
    """Splits each batch by fixed window of its timestamp column; emits the pieces
    timestamped inside their window (rows without an event time are dropped and counted)."""

    def __init__(self, column: str, window_micros: int, drop_column: bool):
        self._column = column
        self._size = window_micros
        self._drop = drop_column
        self._missing = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_without_event_time")

    def process(self, batch: pa.RecordBatch):
        idx = batch.schema.get_field_index(self._column)
        if idx < 0:
            raise ValueError(f"timestamp column {self._column!r} is not in the examples; "
                             f"columns: {', '.join(batch.schema.names)}")
        micros = event_micros(batch.column(idx))
        if self._drop:
            batch = _drop_columns(batch, (self._column,))
        known = np.flatnonzero(micros >= 0)
        if len(known) < len(micros):
            self._missing.inc(len(micros) - len(known))
        if not len(known):
            return
        win = micros[known] // self._size
        order = np.argsort(win, kind="stable")
        rows, win, stamps = known[order], win[order], micros[known][order]
        starts = np.flatnonzero(np.concatenate([[True], win[1:] != win[:-1]]))
        ends = np.append(starts[1:], len(rows))
        for a, b in zip(starts, ends):
            piece = batch if b - a == batch.num_rows else batch.take(pa.array(rows[a:b], type=pa.int64()))
            yield window.TimestampedValue(piece, Timestamp(micros=int(stamps[a:b].max())))


class _ArrivalTimeFn(beam.DoFn):
    """Keeps the timestamp the source gave (Pub/Sub publish time, file match time);
    elements without one (bounded sources) get the processing time."""

    def process(self, batch, timestamp=beam.DoFn.TimestampParam):
        if timestamp <= MIN_TIMESTAMP:
            yield window.TimestampedValue(batch, Timestamp.now())
        else:
            yield batch


# ----------------------------------------------------------------- evaluation


class _EvalSliceFn(beam.DoFn):
    def __init__(self, settings):
        self._settings = settings

    def setup(self):
        from conveyor.components.evaluation.slicing import BatchSlicer

        self._slicer = BatchSlicer(self._settings, [m.prediction_key for m in self._settings.models])
        self._schema = None

    def process(self, batch: pa.RecordBatch):
        if batch.schema != self._schema:
            self._slicer.check_schema(batch.schema)
            self._schema = batch.schema
        yield from self._slicer.split(batch)


def _slice_entry(item, settings):
    from conveyor.components.evaluation.metrics import MetricsKernel
    from conveyor.components.evaluation.report import slice_entry

    key, acc = item
    return slice_entry(key, acc.rows, MetricsKernel(settings).outputs(acc))


def _eval_report(entries, settings):
    from conveyor.components.evaluation.report import build_report

    return build_report(settings, entries)


class _EvaluateWindows(beam.PTransform):
    """Windowed RecordBatches with a label and a prediction column -> one
    evaluation report per window (the dict ``EvaluateModel`` reports)."""

    def __init__(self, settings):
        super().__init__()
        self._settings = settings

    def expand(self, batches):
        s = self._settings
        return (
            batches
            | "SplitBySlice" >> beam.ParDo(_EvalSliceFn(s))
            | "ComputeMetrics" >> beam.CombinePerKey(MetricsCombineFn(s))
            | "SliceOutputs" >> beam.Map(_slice_entry, s)
            | "GatherSlices" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
            | "Report" >> beam.Map(_eval_report, s)
        )


def _eval_settings(settings):
    from conveyor.components.evaluation.config import OVERALL, EvalSettings

    if not isinstance(settings, EvalSettings):
        raise TypeError("eval_settings must be an EvalSettings (see evaluation.make_settings)")
    missing = [m.name for m in settings.models if not m.prediction_key]
    if missing:
        raise ValueError(f"model spec(s) {missing} need a prediction_key: monitoring evaluates "
                         "a prediction column, it runs no model")
    if OVERALL not in settings.slices:
        settings = settings.with_slices((OVERALL, *settings.slices))
    return settings


# ----------------------------------------------------------------- validation


def format_time(ts: Timestamp) -> str:
    """``2024-05-01T12:00:00Z`` (with microseconds when they are not zero)."""
    dt = ts.to_utc_datetime(has_tz=True)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def window_dir_name(start: Timestamp, end: Timestamp) -> str:
    """``window-20240501T120000Z-20240501T121000Z``: the folder of one window's files."""
    return "window-{}-{}".format(*(format_time(t).replace("-", "").replace(":", "") for t in (start, end)))


def _write(path: str, data: bytes) -> None:
    from apache_beam.io.filesystems import FileSystems

    folder = posixpath.dirname(path)
    if folder and not FileSystems.exists(folder):
        FileSystems.mkdirs(folder)
    with FileSystems.create(path) as f:
        f.write(data)


def _summary_line(result: dict) -> str:
    head = f"window {result['window_start']} .. {result['window_end']}: {result['num_examples']} examples"
    if result["anomalies"]:
        pairs = ", ".join(f"{f or '(dataset)'}:{t}" for f, t in result["anomalies"])
        text = f"{head}; {'ERROR' if result['errors'] else 'WARNING'} anomalies: {pairs}"
    else:
        text = f"{head}; no anomalies"
    overall = result.get("metrics")
    if overall:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(overall.items())
                          if isinstance(v, float) and k != "example_count")
        if shown:
            text += f"; metrics: {shown}"
    return text


class _ValidateWindowFn(beam.DoFn):
    """A window's statistics (and evaluation report) -> its result dict and files."""

    def __init__(self, schema, baseline, options: ValidationOptions, output_dir: str | None):
        self._schema = schema
        self._baseline = baseline
        self._options = options
        self._output_dir = output_dir
        self._windows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows")
        self._anomalous = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows_with_anomalies")
        self._failing = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows_with_errors")

    def process(self, element, window=beam.DoFn.WindowParam):
        stats, evaluation = element
        from conveyor.components.validation.report import anomalies_report

        anomalies = validate_statistics(stats, self._schema, previous_statistics=self._baseline,
                                        options=self._options)
        pairs = sorted(anomaly_pairs(anomalies))
        result = {
            "window_start": format_time(window.start),
            "window_end": format_time(window.end),
            "num_examples": int(stats.datasets[0].num_examples) if stats.datasets else 0,
            "anomalies": [list(p) for p in pairs],
            "errors": has_errors(anomalies),
            "output": None,
        }
        if evaluation is not None:
            result["metrics"] = evaluation["metrics"][0]["metrics"] if evaluation["metrics"] else {}
        self._windows.inc()
        if pairs:
            self._anomalous.inc()
        if result["errors"]:
            self._failing.inc()
        if self._output_dir:
            folder = posixpath.join(self._output_dir, window_dir_name(window.start, window.end))
            _write(posixpath.join(folder, STATS_FILE), stats.SerializeToString())
            _write(posixpath.join(folder, ANOMALIES_FILE), anomalies.SerializeToString())
            _write(posixpath.join(folder, REPORT_FILE), (anomalies_report(anomalies) + "\n").encode("utf-8"))
            if evaluation is not None:
                _write(posixpath.join(folder, METRICS_FILE),
                       json.dumps(evaluation, indent=2, sort_keys=True, default=str).encode("utf-8"))
            result["output"] = folder
            _write(posixpath.join(folder, RESULT_FILE),
                   (json.dumps(result, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        _LOG.log(logging.WARNING if pairs else logging.INFO, "%s", _summary_line(result))
        yield result


def _pair_up(item):
    _, grouped = item
    stats = grouped["stats"]
    reports = grouped["evaluation"]
    if not stats:  # no statistics without examples; nothing to report
        return []
    return [(stats[0], reports[0] if reports else None)]


# ----------------------------------------------------------------- the transform


class MonitorWindows(beam.PTransform):
    """RecordBatches -> one result dict per fixed window, with its files written.

    Each window's statistics are validated against ``schema`` and, for the
    schema's ``drift_comparator`` thresholds, against ``baseline_statistics``.
    A result is ``{window_start, window_end, num_examples, anomalies, errors,
    output}`` (times ISO-8601 UTC; ``anomalies`` the sorted ``[feature, type]``
    pairs, ``""`` for the dataset; ``errors`` whether one has severity ERROR;
    ``output`` the window's folder or None), plus ``metrics`` (the overall
    slice's) with ``eval_settings``. With ``output_dir`` each window writes
    ``OUTPUT/window-<start>-<end>/`` ``FeatureStats.pb``, ``SchemaDiff.pb``,
    ``report.txt``, ``result.json`` (and ``metrics.json``); rewritten whole,
    so a retried window leaves the same files. Every window logs one line.

    Args:
      schema: the curated tensorflow-metadata ``Schema``.
      baseline_statistics: a ``DatasetFeatureStatisticsList`` of reference data
        (say, the training data), or None to check the schema only.
      window_seconds: width of the fixed windows.
      timestamp_column: a column of event times (seconds since the epoch, or
        ISO-8601 text); None takes the elements' timestamps (the source's
        arrival time; the processing time for elements without one). A column
        that the schema does not list is removed before the statistics.
      output_dir: where to write each window's files (None: write nothing).
      stats_options: :class:`StatsOptions` of the statistics.
      validation_options: :class:`ValidationOptions` (environment, severities).
      eval_settings: an ``EvalSettings`` (``evaluation.make_settings(label,
        prediction_column)``) to compute model metrics per window from a
        prediction column. Its label, prediction and weight columns that the
        schema does not list are kept out of the statistics.
    """

    def __init__(
        self,
        schema,
        baseline_statistics=None,
        window_seconds: float = 60.0,
        timestamp_column: str | None = None,
        *,
        output_dir: str | None = None,
        stats_options: StatsOptions | None = None,
        validation_options: ValidationOptions | None = None,
        eval_settings=None,
    ):
        super().__init__()
        if not window_seconds or window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, not {window_seconds!r}")
        self.window_micros = int(round(window_seconds * _MICROS))
        if self.window_micros < 1:
            raise ValueError(f"window_seconds must be at least a microsecond, not {window_seconds!r}")
        self.schema = schema
        self.baseline_statistics = baseline_statistics
        self.timestamp_column = timestamp_column
        self.output_dir = output_dir
        self.stats_options = stats_options or StatsOptions()
        self.validation_options = validation_options or ValidationOptions()
        self.eval_settings = _eval_settings(eval_settings) if eval_settings is not None else None
        in_schema = {f.name for f in schema.feature}
        self.drop_timestamp_column = bool(timestamp_column) and timestamp_column not in in_schema
        used = []
        if self.eval_settings is not None:
            for m in self.eval_settings.models:
                used += [m.label_key, m.prediction_key, m.example_weight_key]
        #: Columns that serve the evaluation only: kept out of the statistics.
        self.eval_only_columns = tuple(dict.fromkeys(c for c in used if c and c not in in_schema))

    def expand(self, batches):
        if self.timestamp_column:
            timed = batches | "EventTime" >> beam.ParDo(
                _EventTimeFn(self.timestamp_column, self.window_micros, self.drop_timestamp_column))
        else:
            timed = batches | "ArrivalTime" >> beam.ParDo(_ArrivalTimeFn())
        windowed = timed | "Window" >> beam.WindowInto(
            window.FixedWindows(self.window_micros / _MICROS))
        profiled = windowed
        if self.eval_only_columns:
            profiled = windowed | "DropEvalColumns" >> beam.Map(_drop_columns, self.eval_only_columns)
        stats = profiled | "Statistics" >> GenerateStatistics(self.stats_options)
        if self.eval_settings is None:
            pairs = stats | "NoEvaluation" >> beam.Map(lambda s: (s, None))
        else:
            reports = windowed | "Evaluate" >> _EvaluateWindows(self.eval_settings)
            pairs = (
                {
                    "stats": stats | "KeyStats" >> beam.Map(lambda s: (0, s)),
                    "evaluation": reports | "KeyReports" >> beam.Map(lambda r: (0, r)),
                }
                | "JoinPerWindow" >> beam.CoGroupByKey()
                | "Pair" >> beam.FlatMap(_pair_up)
            )
        return pairs | "Validate" >> beam.ParDo(
            _ValidateWindowFn(self.schema, self.baseline_statistics, self.validation_options,
                              self.output_dir))
