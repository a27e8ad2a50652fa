"""A plain-text report of an ``Anomalies`` proto, for the terminal and CI logs."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2

_T = anomalies_pb2.AnomalyInfo
_M = anomalies_pb2.DriftSkewInfo.Measurement


def _severity(info) -> str:
    return _T.Severity.Name(info.severity) if info.severity else "ERROR"


def anomalies_report(anomalies: anomalies_pb2.Anomalies) -> str:
    """One block per anomalous feature (severity, types, what was expected and seen),
    then dataset-level anomalies and the drift/skew measurements."""
    lines = []
    infos = sorted(anomalies.anomaly_info.items())
    dataset = anomalies.dataset_anomaly_info
    errors = sum(1 for _, i in infos if i.severity != _T.WARNING)
    warnings = len(infos) - errors
    if dataset.reason:
        errors += dataset.severity != _T.WARNING
        warnings += dataset.severity == _T.WARNING
    if anomalies.data_missing:
        lines.append("ERROR  the statistics describe no data (0 examples)")
    if not infos and not dataset.reason:
        lines.append("No anomalies.")
    else:
        lines.append(f"{errors} error(s), {warnings} warning(s)")
    for name, info in infos:
        types = ", ".join(_T.Type.Name(r.type) for r in info.reason)
        lines.append(f"{_severity(info):<7} {name}: {types}")
        for r in info.reason:
            lines.append(f"          - {r.description}")
    if dataset.reason:
        types = ", ".join(_T.Type.Name(r.type) for r in dataset.reason)
        lines.append(f"{_severity(dataset):<7} (dataset): {types}")
        for r in dataset.reason:
            lines.append(f"          - {r.description}")
    measured = []
    for d in sorted(anomalies.drift_skew_info, key=lambda d: tuple(d.path.step)):
        name = ".".join(d.path.step)
        for kind, ms in (("drift", d.drift_measurements), ("skew", d.skew_measurements)):
            for m in ms:
                flag = "  ABOVE" if m.value > m.threshold else ""
                measured.append(
                    f"  {name:<24} {kind:<5} {_M.Type.Name(m.type):<26} "
                    f"{m.value:.6f} (threshold {m.threshold:g}){flag}"
                )
    if measured:
        lines.append("Drift and skew measurements:")
        lines.extend(measured)
    return "\n".join(lines)
