"""Human-readable renderings of a ``DatasetFeatureStatisticsList``.

:func:`write_html` writes Conveyor's own statistics page (``view.statistics_page``:
per-feature tables and inline SVG histograms, its style and script inlined, no
external URL, so it opens offline); :func:`summary` is a short plain-text table for
the terminal.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import statistics_pb2

FNS = statistics_pb2.FeatureNameStatistics


def html(stats: statistics_pb2.DatasetFeatureStatisticsList, split: str = "") -> str:
    """The self-contained statistics page of ``stats`` (of ``split``, "" for no split)."""
    from conveyor.components.statistics.view import statistics_page, statistics_view

    if not isinstance(stats, statistics_pb2.DatasetFeatureStatisticsList):
        raise TypeError(f"stats: a DatasetFeatureStatisticsList, not {type(stats).__name__}")
    title = f"Conveyor statistics: {split}" if split else "Conveyor statistics"
    return statistics_page(statistics_view({split: stats}), title)


def write_html(
    stats: statistics_pb2.DatasetFeatureStatisticsList, path: str, split: str = ""
) -> None:
    """Writes :func:`html` to ``path`` (any Beam filesystem)."""
    from conveyor.beam_utils.files import create_file

    with create_file(path) as f:
        f.write(html(stats, split).encode("utf-8"))


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
