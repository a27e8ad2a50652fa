"""The monitor's PTransforms: its sources, ``MonitorWindows`` and ``SummarizeRun``.

:class:`WatchFiles` (new files of a pattern) and :class:`ReadPubSubExamples`
(Pub/Sub messages) are the streaming sources of canonical RecordBatches; their
reading is in ``sources.py``. :class:`MonitorWindows` computes statistics,
validation and (optionally) metrics per fixed window.

Over a PCollection of canonical RecordBatches (bounded or unbounded)::

    batches
      | assign event time   (a timestamp column, split per window with numpy;
      |                      else the element's own timestamp: arrival time)
      | WindowInto(FixedWindows(window_seconds)
      |            [, late firings within allowed_lateness, accumulating])
      | [BulkInference]     (with a model: RunInference + SavedModelHandler;
      |                      predictions appended as columns, dead letters kept)
      | WindowCombineFn     (one combine per window: statistics, metrics over
      |                      the labelled rows, counts)
      | validate            (schema + baseline statistics for drift)
      -> one result dict per firing of a window; files under
         OUTPUT/window-<start>-<end>/ (rewritten by each firing)

A window fires when the watermark passes its end, and again for late data
within ``allowed_lateness``; data later than that is dropped by Beam (not
counted: the Python SDK drops it inside the GroupByKey without a metric, and a
DoFn cannot read the watermark that decides it), so pick windows and lateness
wider than the sources' delay.

:class:`SummarizeRun` totals a run's window results and its source's reports
(files read and skipped, rejected rows) in one summary when the stream ends.
All of them carry Beam type hints: RecordBatches in and out of the sources,
dicts of results and reports after them.
"""

from __future__ import annotations

import datetime
import json
import logging
import posixpath
import time
import typing
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms import window
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.beam_utils import csv_io
from conveyor.beam_utils.files import FORMATS
from conveyor.beam_utils.read import DEFAULT_BATCH_SIZE
from conveyor.components.evaluation import MetricsCombineFn
from conveyor.components.monitor.sources import (
    MESSAGE_FORMATS,
    METRICS_NAMESPACE,
    REPORTS,
    DecodeMessageFn,
    ExampleDecoder,
    FirstSightFn,
    PollFn,
    ReadFileFn,
)
from conveyor.components.statistics import (
    ALL_EXAMPLES,
    CollectDatasetsFn,
    StatsCombineFn,
    StatsOptions,
    slice_batch,
)
from conveyor.components.validation import (
    ValidationOptions,
    anomaly_pairs,
    has_errors,
    validate_statistics,
)
from conveyor.dsl.layout import ANOMALIES_FILE, ANOMALIES_REPORT_FILE, STATS_FILE, serving_model_dir

#: The element type of a window's result, a source's report and a run's summary (JSON values).
RESULT = dict[str, typing.Any]
_RESULT_HINT = beam.typehints.native_type_compatibility.convert_to_beam_type(RESULT)
METRICS_FILE = "metrics.json"
RESULT_FILE = "result.json"
#: Prefix of the model's prediction columns (kept out of the statistics).
PREDICTION_PREFIX = "__monitor_prediction__/"
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
    parents = np.asarray(
        pc.list_parent_indices(column).to_numpy(zero_copy_only=False), dtype=np.int64
    )
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
        secs = np.asarray(
            pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    else:
        text = pc.cast(values, pa.large_string()) if not pa.types.is_large_string(t) else values
        secs = np.full(n, np.nan)
        numeric = np.asarray(
            pc.fill_null(pc.match_substring_regex(text, _NUMBER_RE), False).to_numpy(
                zero_copy_only=False
            ),
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
                secs[rest] = (
                    np.asarray(stamps.to_numpy(zero_copy_only=False), dtype=np.float64) / _MICROS
                )
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
    return pa.RecordBatch.from_arrays(
        [batch.column(i) for i in keep], schema=pa.schema([batch.schema.field(i) for i in keep])
    )


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
            raise ValueError(
                f"timestamp column {self._column!r} is not in the examples; "
                f"columns: {', '.join(batch.schema.names)}"
            )
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
            piece = (
                batch
                if b - a == batch.num_rows
                else batch.take(pa.array(rows[a:b], type=pa.int64()))
            )
            yield window.TimestampedValue(piece, Timestamp(micros=int(stamps[a:b].max())))


class _ArrivalTimeFn(beam.DoFn):
    """Keeps the timestamp the source gave (Pub/Sub publish time, file match time);
    elements without one (bounded sources) get the processing time."""

    def process(self, batch, timestamp=beam.DoFn.TimestampParam):
        if timestamp <= MIN_TIMESTAMP:
            yield window.TimestampedValue(batch, Timestamp.now())
        else:
            yield batch


# ----------------------------------------------------------------- one window

#: What a window's combine receives: ``(kind, batch, error)`` with kind
#: ``rows`` (plain rows; their prediction, if any, is a column), ``predicted``
#: (rows with the model's prediction columns appended) or ``dead`` (rows the
#: model rejected; ``error`` says why).
ROWS, PREDICTED, DEAD = "rows", "predicted", "dead"
_MAX_ERRORS = 5


def _has_label(column) -> np.ndarray:
    """Rows whose label holds exactly one value that is not null (nor NaN)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        one = np.asarray(lengths.to_numpy(zero_copy_only=False)) == 1
    else:
        one = np.ones(len(column), dtype=bool)
    values, has = _first_values(column)
    ok = one & has
    if pa.types.is_floating(values.type):
        nums = np.asarray(
            pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        ok &= ~np.isnan(nums)
    return ok


class _WindowAccumulator:
    """Everything one window needs: statistics per slice, metrics per eval slice, counts."""

    __slots__ = ("stats", "metrics", "counts", "errors")

    def __init__(self):
        self.stats = {}  # statistics slice name -> DatasetStats
        self.metrics = {}  # eval slice key -> SliceAccumulator
        self.counts = {
            "rows_without_label": 0,
            "examples_predicted": 0,
            "examples_dead_lettered": 0,
        }
        self.errors = []  # the first few distinct dead-letter errors

    def __getstate__(self):
        return (self.stats, self.metrics, self.counts, self.errors)

    def __setstate__(self, state):
        self.stats, self.metrics, self.counts, self.errors = state


@beam.typehints.with_input_types(tuple[str, pa.RecordBatch, str | None])
@beam.typehints.with_output_types(
    tuple[statistics_pb2.DatasetFeatureStatisticsList, RESULT | None, RESULT]
)
class WindowCombineFn(beam.CombineFn):
    """One window's ``(kind, batch, error)`` parts -> ``(statistics, evaluation, counts)``.

    A single combine per window, so that each firing of a window (on time, then
    each late firing with allowed lateness) carries all of its figures at once.
    The statistics are those of :class:`StatsCombineFn` (sliced by the stats
    options' ``slice_by``) over every row, the columns ``stats_exclude``
    removed; the metrics those of the evaluation component over the rows that
    have a label; ``counts`` tells the rows without a label, the rows predicted
    and the rows the model rejected (dead letters, with their first errors).
    """

    def __init__(
        self, stats_options: StatsOptions, stats_exclude, settings=None, prediction_columns=()
    ):
        self._stats_options = stats_options
        self._exclude = tuple(stats_exclude)
        self._settings = settings
        self._prediction_columns = tuple(prediction_columns)
        self._setup()

    def _setup(self):
        self._stats = StatsCombineFn(self._stats_options)
        self._metrics = None
        self._slicer = None
        self._checked = None
        if self._settings is not None:
            from conveyor.components.evaluation import BatchSlicer

            self._metrics = MetricsCombineFn(self._settings)
            self._slicer = BatchSlicer(self._settings, list(self._prediction_columns))

    def __getstate__(self):
        return (self._stats_options, self._exclude, self._settings, self._prediction_columns)

    def __setstate__(self, state):
        self._stats_options, self._exclude, self._settings, self._prediction_columns = state
        self._setup()

    def create_accumulator(self):
        return _WindowAccumulator()

    def _add_stats(self, acc, name, batch):
        st = acc.stats.get(name)
        if st is None:
            st = acc.stats[name] = self._stats.create_accumulator()
        self._stats.add_input(st, batch)

    def _add_metrics(self, acc, batch):
        label = self._settings.candidate.label_key
        idx = batch.schema.get_field_index(label)
        has = _has_label(batch.column(idx)) if idx >= 0 else np.zeros(batch.num_rows, dtype=bool)
        acc.counts["rows_without_label"] += int(batch.num_rows - np.count_nonzero(has))
        if not has.any():
            return
        batch = batch if has.all() else batch.filter(pa.array(has))
        if batch.schema != self._checked:
            self._slicer.check_schema(batch.schema)
            self._checked = batch.schema
        for key, chunk in self._slicer.split(batch):
            m = acc.metrics.get(key)
            if m is None:
                m = acc.metrics[key] = self._metrics.create_accumulator()
            self._metrics.add_input(m, chunk)

    def add_input(self, acc, part):
        kind, batch, error = part
        if not batch.num_rows:
            return acc
        profiled = _drop_columns(batch, self._exclude)
        self._add_stats(acc, ALL_EXAMPLES, profiled)
        if self._stats_options.slice_by:
            for name, piece in slice_batch(profiled, self._stats_options.slice_by):
                self._add_stats(acc, name, piece)
        if kind == DEAD:
            acc.counts["examples_dead_lettered"] += batch.num_rows
            if error not in acc.errors and len(acc.errors) < _MAX_ERRORS:
                acc.errors.append(error)
            return acc
        if kind == PREDICTED:
            acc.counts["examples_predicted"] += batch.num_rows
        if self._settings is not None:
            self._add_metrics(acc, batch)
        return acc

    def merge_accumulators(self, accumulators):
        it = iter(accumulators)
        out = next(it, None)
        if out is None:
            return self.create_accumulator()
        for acc in it:
            for name, st in acc.stats.items():
                mine = out.stats.get(name)
                out.stats[name] = st if mine is None else self._stats.merge_accumulators([mine, st])
            for key, m in acc.metrics.items():
                mine = out.metrics.get(key)
                out.metrics[key] = (
                    m if mine is None else self._metrics.merge_accumulators([mine, m])
                )
            for k, v in acc.counts.items():
                out.counts[k] += v
            for e in acc.errors:
                if e not in out.errors and len(out.errors) < _MAX_ERRORS:
                    out.errors.append(e)
        return out

    def extract_output(self, acc):
        collect = CollectDatasetsFn(self._stats_options)
        datasets = collect.create_accumulator()
        for name, st in acc.stats.items():
            dataset = self._stats.extract_output(st)
            dataset.name = name
            collect.add_input(datasets, dataset)
        stats = collect.extract_output(datasets)
        evaluation = None
        if self._settings is not None:
            evaluation = _eval_report(
                acc.metrics, self._settings, acc.counts["examples_dead_lettered"]
            )
        return stats, evaluation, {**acc.counts, "dead_letter_errors": list(acc.errors)}


def _eval_report(metrics: dict, settings, dead_lettered: int) -> dict:
    from conveyor.components.evaluation import MetricsKernel, build_report, slice_entry

    kernel = MetricsKernel(settings)
    entries = [slice_entry(key, acc.rows, kernel.outputs(acc)) for key, acc in metrics.items()]
    return build_report(settings, entries, inference_failures=dead_lettered)


def _eval_settings(settings, with_model: bool):
    from conveyor.components.evaluation import OVERALL, EvalSettings

    if not isinstance(settings, EvalSettings):
        raise TypeError("eval_settings must be an EvalSettings (see evaluation.make_settings)")
    if with_model:
        if settings.baseline is not None:
            raise ValueError("with a model, eval_settings take one model spec (no baseline)")
    else:
        missing = [m.name for m in settings.models if not m.prediction_key]
        if missing:
            raise ValueError(
                f"model spec(s) {missing} need a prediction_key: without a model, "
                "monitoring evaluates a prediction column"
            )
    if OVERALL not in settings.slices:
        settings = settings.with_slices((OVERALL, *settings.slices))
    return settings


def _model_inference(model, input_schema: pa.Schema, signature: str, prediction_key: str | None):
    """A ``BulkInference`` for ``model`` (a path, a ``BulkInference`` or a
    ``SavedModelHandler``) and the column holding the prediction."""
    from conveyor.beam_utils.errors import InputError, UsageError
    from conveyor.components.inference import BulkInference, SavedModelHandler

    if isinstance(model, BulkInference):
        infer = model
    elif isinstance(model, SavedModelHandler):
        infer = BulkInference(
            model.signature.model_path,
            input_schema,
            model.signature.name,
            input_mode=model.plan.mode,
            prediction_prefix=PREDICTION_PREFIX,
        )
        infer.handler = model  # its batch sizes
    elif isinstance(model, str):
        infer = BulkInference(
            serving_model_dir(model), input_schema, signature, prediction_prefix=PREDICTION_PREFIX
        )
    else:
        raise TypeError(
            f"model must be a SavedModel directory, a BulkInference or a SavedModelHandler, "
            f"not {type(model).__name__}"
        )
    outputs = list(infer.signature.outputs)
    key = prediction_key
    if key is None:
        if len(outputs) != 1:
            raise UsageError(
                f"model {infer.signature.model_path} has outputs {outputs}; "
                "name one as the prediction key"
            )
        key = outputs[0]
    elif key not in outputs:
        raise InputError(
            f"model {infer.signature.model_path} (signature {infer.signature.name!r}) "
            f"has no output {key!r}; outputs: {outputs}"
        )
    return infer, infer.prediction_columns[key]


def _tag(kind):
    return lambda batch: (kind, batch, None)


def _dead_part(letter):
    return (DEAD, letter.examples, letter.error)


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
    return "window-{}-{}".format(
        *(format_time(t).replace("-", "").replace(":", "") for t in (start, end))
    )


def _write(path: str, data: bytes) -> None:
    from conveyor.beam_utils.files import create_file

    with create_file(path) as f:
        f.write(data)


def _firing(pane) -> tuple[str, int]:
    """``(on_time | late | early | unknown, pane index)`` of a window's firing."""
    from apache_beam.utils.windowed_value import PaneInfoTiming

    names = {
        PaneInfoTiming.EARLY: "early",
        PaneInfoTiming.ON_TIME: "on_time",
        PaneInfoTiming.LATE: "late",
    }
    if pane is None:
        return "unknown", 0
    return names.get(pane.timing, "unknown"), int(pane.index)


def _summary_line(result: dict) -> str:
    head = f"window {result['window_start']} .. {result['window_end']}: {result['num_examples']} examples"
    if result["anomalies"]:
        pairs = ", ".join(f"{f or '(dataset)'}:{t}" for f, t in result["anomalies"])
        text = f"{head}; {'ERROR' if result['errors'] else 'WARNING'} anomalies: {pairs}"
    else:
        text = f"{head}; no anomalies"
    overall = result.get("metrics")
    if overall:
        shown = ", ".join(
            f"{k}={v:.4g}"
            for k, v in sorted(overall.items())
            if isinstance(v, float) and k != "example_count"
        )
        if shown:
            text += f"; metrics: {shown}"
    if result.get("rows_without_label"):
        text += f"; {result['rows_without_label']} rows without label"
    if "examples_predicted" in result:
        text += f"; predicted {result['examples_predicted']}"
        if result["examples_dead_lettered"]:
            text += f", dead-lettered {result['examples_dead_lettered']}"
    return text + f"; {result['firing'].replace('_', '-')} firing, pane {result['pane_index']}"


class _ValidateWindowFn(beam.DoFn):
    """A window's statistics, evaluation and counts -> its result dict and files."""

    def __init__(
        self, schema, baseline, options: ValidationOptions, output_dir: str | None, with_model: bool
    ):
        self._schema = schema
        self._baseline = baseline
        self._options = options
        self._output_dir = output_dir
        self._with_model = with_model
        self._windows = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows")
        self._anomalous = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows_with_anomalies")
        self._failing = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "windows_with_errors")
        self._late = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "late_firings")
        self._late_failing = beam.metrics.Metrics.counter(
            METRICS_NAMESPACE, "late_firings_with_errors"
        )

    def process(self, element, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, (stats, evaluation, counts) = element
        from conveyor.components.validation import anomalies_report

        anomalies = validate_statistics(
            stats, self._schema, previous_statistics=self._baseline, options=self._options
        )
        pairs = sorted(anomaly_pairs(anomalies))
        firing, index = _firing(pane)
        result = {
            "window_start": format_time(window.start),
            "window_end": format_time(window.end),
            "num_examples": int(stats.datasets[0].num_examples) if stats.datasets else 0,
            "anomalies": [list(p) for p in pairs],
            "errors": has_errors(anomalies),
            "firing": firing,
            "pane_index": index,
            "output": None,
        }
        if evaluation is not None:
            result["metrics"] = evaluation["metrics"][0]["metrics"] if evaluation["metrics"] else {}
            result["rows_without_label"] = counts["rows_without_label"]
        if self._with_model:
            for key in ("examples_predicted", "examples_dead_lettered", "dead_letter_errors"):
                result[key] = counts[key]
        if pane is None or pane.is_first:
            self._windows.inc()
            if pairs:
                self._anomalous.inc()
            if result["errors"]:
                self._failing.inc()
        else:
            self._late.inc()
            if result["errors"]:
                self._late_failing.inc()
        if self._output_dir:
            folder = posixpath.join(self._output_dir, window_dir_name(window.start, window.end))
            _write(posixpath.join(folder, STATS_FILE), stats.SerializeToString())
            _write(posixpath.join(folder, ANOMALIES_FILE), anomalies.SerializeToString())
            _write(
                posixpath.join(folder, ANOMALIES_REPORT_FILE),
                (anomalies_report(anomalies) + "\n").encode("utf-8"),
            )
            if evaluation is not None:
                _write(
                    posixpath.join(folder, METRICS_FILE),
                    json.dumps(evaluation, indent=2, sort_keys=True, default=str).encode("utf-8"),
                )
            result["output"] = folder
            _write(
                posixpath.join(folder, RESULT_FILE),
                (json.dumps(result, indent=2, sort_keys=True) + "\n").encode("utf-8"),
            )
        _LOG.log(
            logging.WARNING if pairs or result.get("examples_dead_lettered") else logging.INFO,
            "%s",
            _summary_line(result),
        )
        yield result


# ----------------------------------------------------------------- the transform


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(RESULT)
class MonitorWindows(beam.PTransform):
    """RecordBatches -> one result dict per firing of each fixed window, with its files written.

    Each window's statistics are validated against ``schema`` and, for the
    schema's ``drift_comparator`` thresholds, against ``baseline_statistics``.
    A result is ``{window_start, window_end, num_examples, anomalies, errors,
    firing, pane_index, output}`` (times ISO-8601 UTC; ``anomalies`` the sorted
    ``[feature, type]`` pairs, ``""`` for the dataset; ``errors`` whether one
    has severity ERROR; ``firing`` ``on_time`` or ``late`` and ``pane_index``
    0, 1, ... for the window's successive firings; ``output`` the window's
    folder or None). With ``eval_settings`` it adds ``metrics`` (the overall
    slice's, over the rows that have a label) and ``rows_without_label``; with
    a ``model``, ``examples_predicted``, ``examples_dead_lettered`` (rows the
    model rejected: in the statistics, not in the metrics) and
    ``dead_letter_errors`` (the first few distinct errors).

    With ``output_dir`` each window writes ``OUTPUT/window-<start>-<end>/``
    ``FeatureStats.pb``, ``SchemaDiff.pb``, ``report.txt``, ``result.json``
    (and ``metrics.json``), rewritten whole at each firing: a late firing
    leaves the updated figures, a retried one the same files. Every firing logs
    one line.

    A window fires when the watermark passes its end. With
    ``allowed_lateness`` S, rows up to S seconds behind the watermark still
    count: each bundle of them fires the window again with all of its rows
    (accumulating), as a ``late`` firing. Rows later than that are dropped by
    Beam (the Python SDK neither counts nor reports them), as are all rows
    behind the watermark when S is 0.

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
      stats_options: :class:`StatsOptions` of the statistics (``hot_key_fanout``
        does not apply: a window's figures are one combine).
      validation_options: :class:`ValidationOptions` (environment, severities).
      eval_settings: an ``EvalSettings`` (``evaluation.make_settings(label,
        prediction)``) to compute model metrics per window. Without a
        ``model`` its ``prediction_key`` is a column of the rows; with one it
        names the model output to evaluate (optional when there is one). Its
        label, prediction and weight columns that the schema does not list
        are kept out of the statistics; rows without a label are counted and
        left out of the metrics.
      model: a SavedModel to run on each window's rows (with Beam's
        ``RunInference`` and the inference component's ``SavedModelHandler``,
        loaded once per worker): a directory (a SavedModel, or a Trainer
        output holding ``Format-Serving``), a
        :class:`~conveyor.components.inference.BulkInference` or a
        :class:`~conveyor.components.inference.SavedModelHandler`. Its
        predictions are appended as columns (kept out of the statistics).
      input_schema: the Arrow schema of the input batches, which the model's
        inputs are checked against and the batches conformed to (columns it
        lacks are dropped); default: the schema's features plus the label and
        weight columns (FLOAT). Used with ``model`` only.
      signature: the model's signature (with a model directory).
      allowed_lateness: seconds after a window's end during which late rows
        still fire it again (0: none).
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
        model=None,
        input_schema: pa.Schema | None = None,
        signature: str = "serving_default",
        allowed_lateness: float = 0.0,
    ):
        super().__init__()
        if not window_seconds or window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, not {window_seconds!r}")
        self.window_micros = int(round(window_seconds * _MICROS))
        if self.window_micros < 1:
            raise ValueError(
                f"window_seconds must be at least a microsecond, not {window_seconds!r}"
            )
        if allowed_lateness is None or allowed_lateness < 0:
            raise ValueError(f"allowed_lateness must not be negative, not {allowed_lateness!r}")
        self.allowed_lateness = float(allowed_lateness)
        self.schema = schema
        self.baseline_statistics = baseline_statistics
        self.timestamp_column = timestamp_column
        self.output_dir = output_dir
        self.stats_options = stats_options or StatsOptions()
        self.validation_options = validation_options or ValidationOptions()
        with_model = model is not None
        self.eval_settings = (
            _eval_settings(eval_settings, with_model) if eval_settings is not None else None
        )
        in_schema = {f.name for f in schema.feature}
        self.drop_timestamp_column = bool(timestamp_column) and timestamp_column not in in_schema
        used = []
        if self.eval_settings is not None:
            for m in self.eval_settings.models:
                used += [m.label_key, m.example_weight_key]
                if not with_model:
                    used.append(m.prediction_key)
        self.inference = None
        self.prediction_columns: tuple = ()
        if with_model:
            if input_schema is None:
                input_schema = _default_input_schema(schema, used)
            if self.drop_timestamp_column and timestamp_column in input_schema.names:
                input_schema = input_schema.remove(input_schema.get_field_index(timestamp_column))
            key = (
                self.eval_settings.candidate.prediction_key
                if self.eval_settings is not None
                else None
            )
            self.inference, column = _model_inference(model, input_schema, signature, key)
            if self.eval_settings is not None:
                self.prediction_columns = (column,)
            used += list(self.inference.prediction_columns.values())
        elif self.eval_settings is not None:
            self.prediction_columns = tuple(m.prediction_key for m in self.eval_settings.models)
        #: Columns that serve the evaluation only: kept out of the statistics.
        self.eval_only_columns = tuple(dict.fromkeys(c for c in used if c and c not in in_schema))

    def _windowing(self):
        from apache_beam.transforms import trigger

        size = self.window_micros / _MICROS
        if not self.allowed_lateness:
            return beam.WindowInto(window.FixedWindows(size))
        return beam.WindowInto(
            window.FixedWindows(size),
            trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=self.allowed_lateness,
        )

    def expand(self, batches):
        if self.timestamp_column:
            timed = batches | "EventTime" >> beam.ParDo(
                _EventTimeFn(self.timestamp_column, self.window_micros, self.drop_timestamp_column)
            ).with_output_types(pa.RecordBatch)
        else:
            timed = batches | "ArrivalTime" >> beam.ParDo(_ArrivalTimeFn()).with_output_types(
                pa.RecordBatch
            )
        windowed = timed | "Window" >> self._windowing()
        if self.inference is None:
            parts = windowed | "Tag" >> beam.Map(_tag(ROWS))
        else:
            from conveyor.components.inference import AppendPredictions

            result = windowed | "Infer" >> self.inference
            predicted = (
                result.predictions
                | "AppendPredictions"
                >> AppendPredictions(result.prediction_schema, result.prediction_columns)
                | "TagPredicted" >> beam.Map(_tag(PREDICTED))
            )
            dead = result.dead_letters | "TagDead" >> beam.Map(_dead_part)
            parts = (predicted, dead) | "Parts" >> beam.Flatten()
        combine = WindowCombineFn(
            self.stats_options, self.eval_only_columns, self.eval_settings, self.prediction_columns
        )
        return (
            parts
            | "KeyWindow" >> beam.Map(lambda part: (None, part))
            | "PerWindow" >> beam.CombinePerKey(combine)
            | "Validate"
            >> beam.ParDo(
                _ValidateWindowFn(
                    self.schema,
                    self.baseline_statistics,
                    self.validation_options,
                    self.output_dir,
                    self.inference is not None,
                )
            )
        )


def _default_input_schema(schema, extra_columns) -> pa.Schema:
    from conveyor.beam_utils import arrow

    base = arrow.from_metadata_schema(schema)
    fields = list(base)
    for name in dict.fromkeys(c for c in extra_columns if c):
        if name not in base.names:
            fields.append(pa.field(name, arrow.column_type(arrow.FLOAT)))
    return pa.schema(fields)


# ----------------------------------------------------------------- the sources


class _Source(beam.PTransform):
    """What the two sources share: their outputs and those outputs' type hints.

    A source gives its batches or, with ``reports``, the pair ``(batches,
    reports)``. Beam types a multi-output ParDo's outputs Any, and a class's
    output hint is one type for every output; so the outputs' types are set
    here, and with reports the pair's hints replace the class's (Beam checks
    the outputs against them when the pipeline is built).
    """

    reports = False

    def get_type_hints(self):
        """The class's hints; with reports, ``(RecordBatch, report dict)`` as the outputs'."""
        hints = super().get_type_hints()
        return hints.with_output_types(pa.RecordBatch, _RESULT_HINT) if self.reports else hints

    def _outputs(self, read):
        batches = read.batches
        batches.element_type = pa.RecordBatch
        if not self.reports:
            return batches
        reports = read[REPORTS]
        reports.element_type = _RESULT_HINT
        return batches, reports


@beam.typehints.with_output_types(pa.RecordBatch)
class WatchFiles(_Source):
    """New files of ``file_pattern`` -> canonical RecordBatches, as they appear.

    The pattern is matched every ``interval`` seconds (from when the pipeline
    is built), and a last time at ``stop_after``; each file is read once, when
    first matched (a file that changes later is not read again). A file that
    cannot be read is logged, counted and skipped (see ``sources.py``).

    Args:
      file_pattern: a glob on any Beam filesystem.
      schema: the canonical Arrow schema to read (CSV files need its columns in their header).
      format: ``csv``, ``tfrecord`` or ``parquet``; from each file's name when None
        (``.csv``/``.tsv``/``.txt``, also compressed, ``.parquet``/``.pq``,
        ``tfrecord`` or ``.gz``).
      interval: seconds between matches.
      stop_after: stop watching after this many seconds (the pipeline then
        finishes); None watches until the pipeline is cancelled.
      csv_options: delimiter and missing-value markers.
      batch_size: records (rows) per batch of a TFRecord (Parquet) file; CSV
        files come in blocks.
      reports: also return a PCollection of one report per file (see
        ``REPORTS``): the transform then gives ``(batches, reports)``.
    """

    def __init__(
        self,
        file_pattern: str,
        schema: pa.Schema,
        format: str | None = None,
        interval: float = 10.0,
        stop_after: float | None = None,
        csv_options: csv_io.CsvOptions | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        reports: bool = False,
    ):
        super().__init__()
        if format is not None and format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        if stop_after is not None and stop_after < 0:
            raise ValueError(f"stop_after must not be negative, not {stop_after}")
        self.file_pattern = file_pattern
        self.format = format
        self.interval = interval
        self.stop_after = stop_after
        self.batch_size = batch_size
        self.reports = reports
        self.decoder = ExampleDecoder(schema, csv_options)

    def expand(self, pbegin):
        start = time.time()
        stop = None if self.stop_after is None else start + self.stop_after
        read = (
            pbegin
            | "Plan" >> beam.Create([(start, stop, float(self.interval))])
            | "Poll" >> beam.ParDo(PollFn(self.file_pattern))
            | "KeyByPath"
            >> beam.Map(lambda metadata: (metadata.path, metadata)).with_output_types(
                beam.typehints.KV[str, typing.Any]
            )
            | "FirstSight" >> beam.ParDo(FirstSightFn())
            | "Read"
            >> beam.ParDo(ReadFileFn(self.decoder, self.format, self.batch_size)).with_outputs(
                REPORTS, main="batches"
            )
        )
        return self._outputs(read)


@beam.typehints.with_output_types(pa.RecordBatch)
class ReadPubSubExamples(_Source):
    """Pub/Sub messages -> canonical RecordBatches (one per message).

    Args:
      subscription: ``projects/<project>/subscriptions/<name>``.
      schema: the canonical Arrow schema to read.
      format: ``csv`` (payload: CSV lines, no header) or ``tfrecord`` (payload:
        one serialized tf.Example).
      csv_columns: the column order of the CSV lines (default: the schema's).
      csv_options: delimiter and missing-value markers.
      timestamp_attribute: a message attribute holding the event time
        (Beam's ``ReadFromPubSub`` option); default: the publish time.
      reports: also return a PCollection of reports (one per message with
        rejected rows, see ``REPORTS``): the transform then gives ``(batches, reports)``.
    """

    def __init__(
        self,
        subscription: str,
        schema: pa.Schema,
        format: str = "csv",
        csv_columns: Sequence[str] | None = None,
        csv_options: csv_io.CsvOptions | None = None,
        timestamp_attribute: str | None = None,
        reports: bool = False,
    ):
        super().__init__()
        if format not in MESSAGE_FORMATS:
            raise ValueError(f"format must be one of {MESSAGE_FORMATS}, not {format!r}")
        self.subscription = subscription
        self.format = format
        self.timestamp_attribute = timestamp_attribute
        self.reports = reports
        self.decoder = ExampleDecoder(schema, csv_options, csv_columns)

    def expand(self, pbegin):
        from apache_beam.io.gcp.pubsub import ReadFromPubSub

        decoded = (
            pbegin
            | "ReadPubSub"
            >> ReadFromPubSub(
                subscription=self.subscription, timestamp_attribute=self.timestamp_attribute
            )
            | "Decode"
            >> beam.ParDo(DecodeMessageFn(self.decoder, self.format)).with_outputs(
                REPORTS, main="batches"
            )
        )
        return self._outputs(decoded)


# ----------------------------------------------------------------- a run's totals

#: Unreadable files a summary names (it counts them all).
MAX_NAMED_FILES = 100


@beam.typehints.with_input_types(tuple[str, RESULT])
@beam.typehints.with_output_types(RESULT)
class RunSummaryFn(beam.CombineFn):
    """``("result", window result)`` and ``("report", source report)`` -> the run's totals.

    A window counts once, at its first firing; later firings count as late
    firings. The model's counts are those of each window's last firing (which
    holds all of its rows: late firings accumulate).
    """

    def create_accumulator(self):
        return {
            "windows": 0,
            "windows_with_anomalies": 0,
            "windows_with_errors": 0,
            "late_firings": 0,
            "late_firings_with_errors": 0,
            "model": {},
            "files_read": 0,
            "files_unreadable": 0,
            "unreadable_files": [],
            "rows_read": 0,
            "rows_rejected": 0,
        }

    def add_input(self, acc, item):
        kind, value = item
        if kind == "result":
            if value.get("pane_index", 0) == 0:
                acc["windows"] += 1
                acc["windows_with_anomalies"] += bool(value["anomalies"])
                acc["windows_with_errors"] += bool(value["errors"])
            else:
                acc["late_firings"] += 1
                acc["late_firings_with_errors"] += bool(value["errors"])
            if "examples_predicted" in value:
                key = value["window_start"]
                last = acc["model"].get(key)
                if last is None or value.get("pane_index", 0) >= last[0]:
                    acc["model"][key] = (
                        value.get("pane_index", 0),
                        value["examples_predicted"],
                        value["examples_dead_lettered"],
                    )
        else:
            acc["rows_rejected"] += value.get("rejected", 0)
            acc["rows_read"] += value.get("rows", 0)
            if "file" in value:
                if value.get("error"):
                    acc["files_unreadable"] += 1
                    acc["unreadable_files"].append(
                        {"file": value["file"], "reason": value["error"]}
                    )
                    acc["unreadable_files"] = sorted(
                        acc["unreadable_files"], key=lambda f: f["file"]
                    )[:MAX_NAMED_FILES]
                else:
                    acc["files_read"] += 1
        return acc

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        out = next(accumulators)
        for acc in accumulators:
            for key, value in acc.items():
                if key == "model":
                    for window_start, last in value.items():
                        if (
                            window_start not in out["model"]
                            or last[0] >= out["model"][window_start][0]
                        ):
                            out["model"][window_start] = last
                elif key == "unreadable_files":
                    out[key] = sorted(out[key] + value, key=lambda f: f["file"])[:MAX_NAMED_FILES]
                else:
                    out[key] += value
        return out

    def extract_output(self, acc):
        out = {k: v for k, v in acc.items() if k != "model"}
        if acc["model"]:
            out["examples_predicted"] = sum(p for _, p, _ in acc["model"].values())
            out["examples_dead_lettered"] = sum(d for _, _, d in acc["model"].values())
        return out


@beam.typehints.with_input_types(RESULT, RESULT)
@beam.typehints.with_output_types(RESULT)
class SummarizeRun(beam.PTransform):
    """``(window results, source reports)`` -> one summary dict when the stream ends.

    The summary (see :class:`RunSummaryFn`) comes out when the watermark
    reaches the end of time, that is when every source has finished (a file
    watch with ``stop_after``, a drained pipeline). With ``path`` it is written
    there as JSON, with ``run_id`` in it, for the launcher to read: the
    monitor's totals do not depend on the runner's metrics (the local
    FnApiRunner keeps those as one nested generator per bundle, which a long
    stream overflows when they are read).

    Args:
      path: where to write the summary (any Beam filesystem), or None.
      run_id: a token to write with it (tells this run's summary from an older one).
    """

    def __init__(self, path: str | None = None, run_id: str | None = None):
        super().__init__()
        self.path = path
        self.run_id = run_id

    def expand(self, inputs):
        from apache_beam.transforms import trigger

        results, reports = inputs

        def at_the_end():
            # One firing when the watermark reaches the end of time: the end of the stream
            # (said explicitly: Beam refuses the default trigger on an unbounded global window).
            return beam.WindowInto(
                window.GlobalWindows(),
                trigger=trigger.AfterWatermark(),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
            )

        tagged = [
            results
            | "GlobalResults" >> at_the_end()
            | "TagResults" >> beam.Map(lambda r: (None, ("result", r))),
            reports
            | "GlobalReports" >> at_the_end()
            | "TagReports" >> beam.Map(lambda r: (None, ("report", r))),
        ]
        summary = (
            tagged
            | "Both" >> beam.Flatten()
            | "Totals" >> beam.CombinePerKey(RunSummaryFn())
            | "Summary" >> beam.Map(lambda kv, run_id=self.run_id: dict(kv[1], run_id=run_id))
        )
        if self.path:
            _ = summary | "Write" >> beam.Map(_write_summary, self.path)
        return summary


def _write_summary(summary: dict, path: str) -> dict:
    _write(path, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return summary


def read_summary(path: str, run_id: str | None = None) -> dict | None:
    """The summary :class:`SummarizeRun` wrote at ``path`` (for ``run_id``), or None."""
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        summary = json.loads(f.read().decode("utf-8"))
    if run_id is not None and summary.get("run_id") != run_id:
        return None
    return summary
