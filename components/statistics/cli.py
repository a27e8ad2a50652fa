"""``conveyor statistics``: TFDV-compatible statistics of examples files.

Reads CSV, TFRecord or Parquet (``--input``) or an Examples directory of splits
(``--examples``), runs :class:`GenerateStatistics` on Beam and writes
``FeatureStats.pb`` (a binary ``DatasetFeatureStatisticsList``, as TFX's
StatisticsGen writes it) and ``statistics.html`` to ``--output`` (per split:
``OUTPUT/Split-<name>/``), then prints a summary.
"""

from __future__ import annotations

import argparse
import posixpath

from conveyor.components.statistics.component import HTML_FILE
from conveyor.dsl import layout
from conveyor.dsl.layout import STATS_FILE

HELP = f"Compute dataset statistics (TFDV-compatible {STATS_FILE} + HTML report)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The input flags (``conveyor.beam_utils.cli_args``), ``--output`` and the statistics options."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    add_input_arguments(parser)
    parser.add_argument(
        "--output", required=True, help="directory for FeatureStats.pb and statistics.html"
    )
    parser.add_argument(
        "--slice-by",
        action="extend",
        nargs="+",
        default=[],
        metavar="COL",
        help="also compute statistics per value of COL; several columns slice by their cross product",
    )
    parser.add_argument(
        "--weight", metavar="COL", help="numeric feature holding each example's weight"
    )
    parser.add_argument(
        "--bytes-feature",
        action="append",
        default=[],
        metavar="COL",
        help="report COL as BYTES (byte sizes) rather than STRING",
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs ``conveyor statistics``: reads the input, writes the statistics, prints a summary."""
    from conveyor.beam_utils.cli_args import read_transforms
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import staged_output
    from conveyor.components.statistics import report
    from conveyor.components.statistics.component import read_summary, run_statistics
    from conveyor.components.statistics.options import StatsOptions

    try:
        options = StatsOptions(
            weight_feature=args.weight, slice_by=args.slice_by, bytes_features=args.bytes_feature
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    with staged_output(args.output, inputs=[args.input, args.examples]) as output:
        reads = read_transforms(args)
        stats = run_statistics(reads, output, options, beam_args)
        counts = read_summary(output)
    for split, result in stats.items():
        out = layout.split_uri(args.output, split) if split else args.output
        if split:
            print(f"== {layout.SPLIT_PREFIX}{split} ==")
        print(report.summary(result))
        c = counts[split or "input"]
        print(
            f"rows read {c['read']:,}, accepted {c['accepted']:,}, rejected by the reader {c['rejected']:,}"
        )
        print(f"wrote {posixpath.join(out, STATS_FILE)} and {posixpath.join(out, HTML_FILE)}")
    return 0
