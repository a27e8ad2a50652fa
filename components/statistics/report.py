"""Human-readable renderings of a ``DatasetFeatureStatisticsList``.

:func:`write_html` writes the Facets Overview page (TFDV's rendering of the
proto, which reads our output as it reads its own); :func:`summary` is a short
plain-text table for the terminal.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import statistics_pb2

FNS = statistics_pb2.FeatureNameStatistics


def html(stats: statistics_pb2.DatasetFeatureStatisticsList) -> str:
    """The Facets Overview HTML of ``stats`` (a self-contained page)."""
    from tensorflow_data_validation.utils.display_util import get_statistics_html

    body = get_statistics_html(stats)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Conveyor statistics</title>"
        "</head><body>" + body + "</body></html>"
    )


def write_html(stats: statistics_pb2.DatasetFeatureStatisticsList, path: str) -> None:
    """Writes :func:`html` to ``path`` (any Beam filesystem)."""
    from conveyor.beam_utils.files import create_file

    with create_file(path) as f:
        f.write(html(stats).encode("utf-8"))


def _common(feature):
    which = feature.WhichOneof("stats")
    return getattr(feature, which).common_stats if which else statistics_pb2.CommonStatistics()


def summary(stats: statistics_pb2.DatasetFeatureStatisticsList, max_features: int = 50) -> str:
    """The unsliced dataset's examples and one line per feature; one line per slice."""
    lines = []
    for i, ds in enumerate(stats.datasets):
        head = f"{ds.name or 'All Examples'}: {ds.num_examples} examples"
        if ds.weighted_num_examples:
            head += f" (weighted {ds.weighted_num_examples:g})"
        lines.append(head)
        if i > 0:  # slices: one line each; their features are in the proto and HTML
            continue
        for feature in list(ds.features)[:max_features]:
            name = "/".join(feature.path.step) or feature.name
            common = _common(feature)
            total = common.num_non_missing + common.num_missing
            missing = 100.0 * common.num_missing / total if total else 0.0
            kind = FNS.Type.Name(feature.type)
            if feature.HasField("num_stats"):
                n = feature.num_stats
                detail = f"mean={n.mean:.6g} std={n.std_dev:.6g} min={n.min:.6g} median={n.median:.6g} max={n.max:.6g}"
            elif feature.HasField("string_stats"):
                s = feature.string_stats
                top = s.top_values[0].value if s.top_values else ""
                detail = f"unique={s.unique} top={top!r} avg_length={s.avg_length:.3g}"
            elif feature.HasField("bytes_stats"):
                b = feature.bytes_stats
                detail = f"unique={b.unique} avg_bytes={b.avg_num_bytes:.3g} max_bytes={b.max_num_bytes:g}"
            else:
                detail = ""
            lines.append(f"  {name:<24} {kind:<6} missing={missing:5.1f}%  {detail}")
        if len(ds.features) > max_features:
            lines.append(f"  ... {len(ds.features) - max_features} more features")
    return "\n".join(lines)
