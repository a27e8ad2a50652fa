"""What each artifact type shows: data read from the files a component wrote in its uri.

:func:`view_of` returns ``{"kind", ...}`` for the artifact's type: statistics (per split
and feature, from ``Split-*/FeatureStats.pb``), schema (``schema.pbtxt``), anomalies
(``Split-*/SchemaDiff.pb``), evaluation (``metrics.json``, ``validation.json``),
blessing (the ``BLESSED``/``NOT_BLESSED`` marker, ``infra_validation.json``), pushed
model (``push_summary.json``), inference result (``inference_summary.json`` and the first
predictions of its PredictionLogs), examples (``summary.json`` and the first rows of each
split), transform graph (``transform_summary.json``). The protos are read
with ``tensorflow_metadata`` (plain protobuf: no TensorFlow import).
"""

from __future__ import annotations

import glob
import os

from conveyor.dsl import layout
from conveyor.orchestration.ui.plots import curves
from conveyor.orchestration.ui.store import read_json


def _splits(uri: str, file_name: str) -> dict[str, str]:
    """``{split: path}`` of ``<uri>/Split-<split>/<file_name>`` (or ``<uri>/<file_name>``)."""
    out = {}
    pattern = os.path.join(glob.escape(uri), layout.SPLIT_PREFIX + "*", file_name)
    for path in sorted(glob.glob(pattern)):
        out[layout.split_name(os.path.dirname(path))] = path
    if not out and os.path.isfile(os.path.join(uri, file_name)):
        out[""] = os.path.join(uri, file_name)
    return out


def statistics_view(uri: str) -> dict:
    """Per split, one row per feature: type, count, missing %, mean, std, min, median, max,
    zeros, unique, top values, histogram buckets ``[low, high, count]``; drift between the
    first two splits (the statistics component's own view, ``statistics_view``)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from conveyor.components.statistics import statistics_view as view_of_stats

    stats = {}
    for split, path in _splits(uri, layout.STATS_FILE).items():
        stats[split] = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats[split].ParseFromString(f.read())
    return view_of_stats(stats)


def schema_view(uri: str) -> dict:
    """One row per feature of ``schema.pbtxt``: name, type, presence, valency, domain."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = layout.schema_path(uri)
    if not os.path.isfile(path):
        return {"kind": "schema", "features": [], "missing": layout.SCHEMA_FILE}
    with open(path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    domains = {d.name: [v for v in d.value] for d in schema.string_domain}
    rows = []
    for f in schema.feature:
        domain = f.domain or (f.WhichOneof("domain_info") or "")
        values = domains.get(f.domain, [])
        if f.WhichOneof("domain_info") == "string_domain":
            values = list(f.string_domain.value)
        rows.append(
            {
                "feature": f.name,
                "type": schema_pb2.FeatureType.Name(f.type),
                "presence": "required" if f.presence.min_fraction >= 1.0 else "optional",
                "min_fraction": f.presence.min_fraction,
                "valency": "single" if f.HasField("shape") or f.value_count.max == 1 else "",
                "domain": domain,
                "domain_values": values[:20],
            }
        )
    return {"kind": "schema", "features": rows}


def anomalies_view(uri: str) -> dict:
    """Per split, one row per anomalous feature: severity, short and long descriptions."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    splits = {}
    for split, path in _splits(uri, layout.ANOMALIES_FILE).items():
        anomalies = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        rows = [
            {
                "feature": name,
                "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                "short_description": info.short_description,
                "description": info.description,
            }
            for name, info in sorted(anomalies.anomaly_info.items())
        ]
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append(
                {
                    "feature": "(dataset)",
                    "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                    "short_description": info.short_description,
                    "description": info.description,
                }
            )
        splits[split] = {"anomalies": rows}
    return {"kind": "anomalies", "splits": splits}


def evaluation_view(uri: str) -> dict:
    """The slice table (``metrics.json``: one row per slice, its metric values and, with a
    baseline model, the baseline's and the difference), the validation (``validation.json``:
    blessed, failures, skipped thresholds), the ROC and calibration curves of each slice
    (``plots.json``, see :func:`conveyor.orchestration.ui.plots.curves`) and the PNG files."""
    metrics = read_json(os.path.join(uri, "metrics.json")) or []
    names: list[str] = []
    rows = []
    for entry in metrics if isinstance(metrics, list) else []:
        values = entry.get("metrics", {})
        for k in values:
            if k not in names:
                names.append(k)
        slice_ = entry.get("slice") or {}
        row = {
            "slice": ", ".join(f"{k}={v}" for k, v in slice_.items()) or "Overall",
            "metrics": values,
        }
        for key in ("baseline_metrics", "diff"):
            if isinstance(entry.get(key), dict):
                row[key] = entry[key]
        rows.append(row)
    plots = sorted(
        os.path.relpath(p, uri) for p in glob.glob(os.path.join(glob.escape(uri), "plots", "*.png"))
    )
    return {
        "kind": "evaluation",
        "metric_names": names,
        "slices": rows,
        "validation": read_json(os.path.join(uri, "validation.json")),
        "plots": plots,
        "curves": curves(read_json(os.path.join(uri, "plots.json"))),
    }


def blessing_view(uri: str) -> dict:
    """Whether the model was blessed (the marker file written) and, for InfraValidator's
    blessing, its ``infra_validation.json``."""
    names = (layout.BLESSED, layout.NOT_BLESSED, layout.INFRA_BLESSED, layout.INFRA_NOT_BLESSED)
    markers = [m for m in names if os.path.exists(os.path.join(uri, m))]
    return {
        "kind": "blessing",
        "markers": markers,
        "blessed": any(m in (layout.BLESSED, layout.INFRA_BLESSED) for m in markers),
        "infra_validation": read_json(os.path.join(uri, "infra_validation.json")),
    }


def _summary(kind: str, file_name: str):
    def view(uri: str) -> dict:
        return {"kind": kind, "summary": read_json(os.path.join(uri, file_name))}

    view.__doc__ = f"``{file_name}`` of the artifact, as it is."
    return view


def inference_view(uri: str) -> dict:
    """``inference_summary.json`` (the counts) and the first predictions of its
    PredictionLog files (:func:`conveyor.orchestration.ui.predictions.sample`); ``skipped``
    when BulkInferrer ran nothing because the model was not blessed."""
    from conveyor.orchestration.ui import predictions

    return {
        "kind": "inference_result",
        "summary": read_json(os.path.join(uri, "inference_summary.json")),
        "skipped": os.path.exists(os.path.join(uri, layout.SKIPPED_NOT_BLESSED)),
        "sample": predictions.sample(uri),
    }


def transform_view(uri: str) -> dict:
    """``transform_summary.json`` and the features in and out: the raw schema under
    ``metadata/`` and the transformed one under ``transformed_metadata/`` (TFT's layout)."""
    out = {"kind": "transform_graph", "summary": read_json(os.path.join(uri, SUMMARY_TRANSFORM))}
    for key, folder in (
        ("input_features", "metadata"),
        ("output_features", "transformed_metadata"),
    ):
        path = os.path.join(uri, folder)
        out[key] = schema_view(path)["features"] if os.path.isdir(path) else []
    return out


#: The Transform component's summary in its TransformGraph.
SUMMARY_TRANSFORM = "transform_summary.json"

#: Rows of each split shown from an Examples artifact.
SAMPLE_ROWS = 10


def examples_view(uri: str) -> dict:
    """``summary.json`` (split counts, features and their types) and the first rows of each
    split, decoded from its TFRecord files with Conveyor's own tf.Example decoder."""
    summary = read_json(os.path.join(uri, layout.SUMMARY_FILE))
    features = summary.get("features") if isinstance(summary, dict) else None
    sample = {}
    if isinstance(features, dict) and features:
        for folder in sorted(glob.glob(os.path.join(glob.escape(uri), layout.SPLIT_PREFIX + "*"))):
            split = layout.split_name(folder)
            files = sorted(glob.glob(os.path.join(glob.escape(folder), "*")))
            if split is not None and files:
                sample[split] = _first_rows(files[0], features, SAMPLE_ROWS)
    return {"kind": "examples", "summary": summary, "sample": sample}


def _first_rows(path: str, features: dict, n: int) -> list[dict]:
    import contextlib
    import itertools

    from conveyor.beam_utils import arrow, tfrecord_io
    from conveyor.beam_utils.example_parsing import ExampleDecoder

    with open(path, "rb") as f, contextlib.closing(tfrecord_io.open_records(f, path)) as records:
        batch = list(itertools.islice(records, n))
    if not batch:
        return []
    rows = ExampleDecoder(arrow.make_schema(features)).decode(batch).to_pylist()
    return [{k: _cell(v) for k, v in row.items()} for row in rows]


def _cell(value):
    if isinstance(value, list):
        value = [_cell(v) for v in value]
        return value[0] if len(value) == 1 else value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


#: artifact type -> its view.
VIEWS = {
    "ExampleStatistics": statistics_view,
    "Schema": schema_view,
    "ExampleAnomalies": anomalies_view,
    "ModelEvaluation": evaluation_view,
    "ModelBlessing": blessing_view,
    "InfraBlessing": blessing_view,
    "PushedModel": _summary("pushed_model", "push_summary.json"),
    "InferenceResult": inference_view,
    "Examples": examples_view,
    "TransformGraph": transform_view,
}


def view_of(type_name: str, uri: str) -> dict | None:
    """The view of an artifact of ``type_name`` stored at ``uri`` (None: no view for its type,
    or its folder is not on this machine)."""
    view = VIEWS.get(type_name)
    if view is None or "://" in uri or not os.path.isdir(uri):
        return None
    try:
        return view(uri)
    except Exception as e:  # a half-written or foreign file: say so on the page
        return {"kind": "error", "error": f"{type(e).__name__}: {e}"}
