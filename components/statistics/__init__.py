"""Statistics component: TFDV-compatible dataset statistics on Beam, without TFDV.

``GenerateStatistics(options)`` turns a PCollection of ``pyarrow.RecordBatch``
(Conveyor's canonical format) into one tensorflow-metadata
``DatasetFeatureStatisticsList``; ``conveyor statistics`` runs it from the
command line and writes ``FeatureStats.pb`` and ``statistics.html`` (Conveyor's own
page, :func:`statistics_page`: self-contained, it opens offline).

Exact figures: example counts and weighted counts, num_non_missing/num_missing,
min/max/avg/tot num_values, min, max, mean and std_dev (float64, mergeable
moments), num_zeros, NaN and infinity counts, avg_length, byte sizes,
invalid_utf8_count, and ``unique`` and ``top_values``/``rank_histogram`` while a
feature has at most ``max_exact_distinct`` distinct values (50,000 by default).

Approximate figures: median, the quantiles histograms (and
``num_values_histogram``) and the standard histogram's bucket counts come from a
quantile sketch with rank error at most ``H / k`` of the total weight
(``H = ceil(log2(n / k))`` levels, ``k = 2048``: under 1% below two billion
values, exact below ``k`` values); the standard histogram's boundaries are exact.
Past ``max_exact_distinct`` distinct strings, counts are Misra-Gries lower bounds
(error at most ``N / (max_exact_distinct + 1)``) and ``unique`` a HyperLogLog
estimate (about 0.8% standard error).

Example::

    import apache_beam as beam
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.statistics import GenerateStatistics, StatsOptions

    with beam.Pipeline() as p:
        stats = ((p | ReadExamples("flights.csv")).examples
                 | GenerateStatistics(StatsOptions(slice_by=["carrier"])))

Names are imported on first use, so the CLI can load ``statistics.cli`` without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "ALL_EXAMPLES": "options",
    "StatsOptions": "options",
    "CollectDatasetsFn": "combiners",
    "StatsCombineFn": "combiners",
    "GenerateStatistics": "transform",
    "slice_batch": "slicing",
    "StatisticsGen": "node",
    "run_statistics": "component",
    "statistics_view": "view",
    "drift": "view",
    "statistics_html": "view",
    "statistics_page": "view",
    "feature_row": "view",
    "histogram_svg": "view",
    "table_cell": "view",
    "format_number": "view",
    "SORT_JS": "view",
    "TABLE_CSS": "view",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
