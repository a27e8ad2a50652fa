"""Running GenerateStatistics over one input or every split of an Examples directory."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.dsl import layout
from conveyor.dsl.layout import STATS_FILE

if TYPE_CHECKING:
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.statistics.options import StatsOptions

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
    examples: Mapping[str | None, ReadExamples],
    output_dir: str,
    options: StatsOptions | None = None,
    beam_args: Sequence[str] | None = None,
    html: bool = True,
) -> dict:
    """Computes statistics for each ``{split or None: ReadExamples}`` in one Beam pipeline.

    Writes ``FeatureStats.pb`` (and ``statistics.html``) to ``output_dir``, or to
    ``output_dir/Split-<name>/`` for named splits (a key of None is an input
    with no split: its files go to ``output_dir`` itself), plus
    ``statistics_summary.json`` with the rows read, accepted and rejected per
    split (``"input"`` for the None key; rows the reader rejected are counted,
    never silently dropped, and read = accepted + rejected is checked).
    Returns ``{split or "": DatasetFeatureStatisticsList}``.

    Example::

        stats = run_statistics({"train": read_examples_dir("out/examples", "train")}, "out/stats")
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from conveyor.beam_utils.options import pipeline_options
    from conveyor.beam_utils.summary import SumCounts, count_rows, count_value
    from conveyor.components.statistics import report
    from conveyor.components.statistics.options import StatsOptions
    from conveyor.components.statistics.transform import GenerateStatistics

    options = options or StatsOptions()
    outs = {}
    for split in examples:
        out = layout.split_uri(output_dir, split) if split is not None else output_dir
        if not FileSystems.exists(out):
            FileSystems.mkdirs(out)
        outs[split] = out
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        counts, how = {}, {}
        for split, read in examples.items():
            step = _step(split)
            result = p | f"Read[{step}]" >> read
            (
                result.examples
                | f"Stats[{step}]" >> GenerateStatistics(options)
                | f"Write[{step}]"
                >> beam.Map(_write_proto, posixpath.join(outs[split], STATS_FILE))
            )
            counts.update(
                {
                    f"{step}:read": result.rows_read,
                    f"{step}:rejected": result.rejected,
                    f"{step}:accepted": result.examples,
                }
            )
            how.update({f"{step}:read": count_value, f"{step}:accepted": count_rows})
        _ = counts | "Summary" >> SumCounts(
            how,
            _write_summary,
            [_step(s) for s in examples],
            posixpath.join(output_dir, SUMMARY_FILE),
        )
    stats = {}
    for split, out in outs.items():
        stats[split or ""] = read_stats(posixpath.join(out, STATS_FILE))
        if html:
            report.write_html(stats[split or ""], posixpath.join(out, HTML_FILE), split or "")
    return stats


def _step(split: str | None) -> str:
    """A split's name in step labels and in the summary: ``"input"`` for no split."""
    return split or "input"


def _write_summary(totals: dict[str, int], splits: list[str], path: str) -> dict:
    """Checks read = accepted + rejected per split and writes ``statistics_summary.json``."""
    from conveyor.beam_utils import files
    from conveyor.beam_utils.summary import reconcile

    summary = {}
    for s in splits:
        row = {k: totals[f"{s}:{k}"] for k in ("read", "accepted", "rejected")}
        reconcile(row["read"], row["accepted"], row["rejected"], f"statistics of {s}")
        summary[s] = row
    files.write_text(path, json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(output_dir: str) -> dict:
    """The rows read/accepted/rejected per split that :func:`run_statistics` wrote."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(posixpath.join(output_dir, SUMMARY_FILE)) as f:
        return json.loads(f.read().decode())
