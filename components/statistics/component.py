"""Running GenerateStatistics over one input or every split of an Examples directory."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence

from conveyor.dsl import layout
from conveyor.dsl.layout import STATS_FILE

HTML_FILE = "statistics.html"
SUMMARY_FILE = "statistics_summary.json"


def read_stats(path: str):
    """Reads a binary ``DatasetFeatureStatisticsList`` (e.g. ``FeatureStats.pb``)."""
    from apache_beam.io.filesystems import FileSystems
    from tensorflow_metadata.proto.v0 import statistics_pb2

    with FileSystems.open(path) as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def _write_proto(stats, path: str) -> None:
    from conveyor.beam_utils.files import create_file

    with create_file(path) as f:
        f.write(stats.SerializeToString())


def run_statistics(
    reads: Mapping,
    output_dir: str,
    options=None,
    beam_args: Sequence[str] | None = None,
    html: bool = True,
) -> dict:
    """Computes statistics for each ``{split or None: ReadExamples}`` in one Beam pipeline.

    Writes ``FeatureStats.pb`` (and ``statistics.html``) to ``output_dir``, or to
    ``output_dir/Split-<name>/`` for named splits, plus
    ``statistics_summary.json`` with the rows read, accepted and rejected per
    split (rows the reader rejected are counted, never silently dropped).
    Returns ``{split or "": DatasetFeatureStatisticsList}``.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from conveyor.beam_utils.options import pipeline_options
    from conveyor.components.statistics import report
    from conveyor.components.statistics.options import StatsOptions
    from conveyor.components.statistics.transform import GenerateStatistics

    options = options or StatsOptions()
    outs = {}
    for split in reads:
        out = layout.split_uri(output_dir, split) if split is not None else output_dir
        if not FileSystems.exists(out):
            FileSystems.mkdirs(out)
        outs[split] = out
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        counts = []
        for split, read in reads.items():
            step = split or "input"
            result = p | f"Read[{step}]" >> read
            (
                result.examples
                | f"Stats[{step}]" >> GenerateStatistics(options)
                | f"Write[{step}]"
                >> beam.Map(_write_proto, posixpath.join(outs[split], STATS_FILE))
            )
            counts += [
                result.rows_read
                | f"KeyRead[{step}]" >> beam.Map(lambda n, s=step: (f"{s}:read", n)),
                result.rejected
                | f"KeyRejected[{step}]" >> beam.Map(lambda _, s=step: (f"{s}:rejected", 1)),
                result.examples
                | f"KeyRows[{step}]" >> beam.Map(lambda b, s=step: (f"{s}:accepted", b.num_rows)),
            ]
        (
            counts
            | "AllCounts" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "Summary"
            >> beam.Map(
                _write_summary,
                [s or "input" for s in reads],
                posixpath.join(output_dir, SUMMARY_FILE),
            )
        )
    stats = {}
    for split, out in outs.items():
        stats[split or ""] = read_stats(posixpath.join(out, STATS_FILE))
        if html:
            report.write_html(stats[split or ""], posixpath.join(out, HTML_FILE))
    return stats


def _write_summary(counts: dict, splits: list[str], path: str) -> dict:
    from conveyor.beam_utils import files

    summary = {}
    for s in splits:
        row = {k: int(counts.get(f"{s}:{k}", 0)) for k in ("read", "accepted", "rejected")}
        if row["read"] != row["accepted"] + row["rejected"]:
            raise RuntimeError(f"statistics of {s}: row counts do not reconcile: {row}")
        summary[s] = row
    files.write_text(path, json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(output_dir: str) -> dict:
    """The rows read/accepted/rejected per split that :func:`run_statistics` wrote."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(posixpath.join(output_dir, SUMMARY_FILE)) as f:
        return json.loads(f.read().decode())
