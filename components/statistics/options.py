"""Options of the statistics computation (the defaults are TFDV's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from conveyor.components.statistics import sketches

#: The name of the dataset of all examples (unsliced), TFDV's name; slices are named by value.
ALL_EXAMPLES = "All Examples"


@dataclasses.dataclass(frozen=True)
class StatsOptions:
    """What :class:`GenerateStatistics` computes.

    Attributes:
      weight_feature: a numeric feature holding one weight per example; adds the
        ``weighted_*`` statistics and ``weighted_num_examples``.
      slice_by: features whose values define extra datasets, named as TFDV's
        feature-value slicer names them (``island_Biscoe``; with several features
        ``island_Biscoe_sex_male``). Rows missing a slice feature join no slice.
      bytes_features: BYTES features to report as ``BYTES`` (byte-size stats)
        instead of ``STRING`` (TFDV's default for bytes columns).
      num_top_values: entries of ``top_values``.
      num_rank_histogram_buckets: entries of ``rank_histogram``.
      num_histogram_buckets: buckets of the standard (equal-width) histogram.
      num_quantiles_histogram_buckets: buckets of the quantiles histogram.
      num_values_histogram_buckets: buckets of ``num_values_histogram``.
      frequency_threshold / weighted_frequency_threshold: smallest (weighted)
        count a value needs to be listed among the top values.
      quantile_k: items per level of the quantile sketch (error ``<= H / k``).
      max_exact_distinct: distinct strings counted exactly per feature before
        switching to Misra-Gries + HyperLogLog.
      hot_key_fanout: if set, the combine is fanned out over this many
        intermediate keys (``with_hot_key_fanout``) for runners without
        combiner lifting.
    """

    weight_feature: str | None = None
    slice_by: Sequence[str] = ()
    bytes_features: Sequence[str] = ()
    num_top_values: int = 20
    num_rank_histogram_buckets: int = 1000
    num_histogram_buckets: int = 10
    num_quantiles_histogram_buckets: int = 10
    num_values_histogram_buckets: int = 10
    frequency_threshold: float = 1
    weighted_frequency_threshold: float = 1.0
    quantile_k: int = sketches.DEFAULT_K
    max_exact_distinct: int = 50_000
    hot_key_fanout: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "slice_by", tuple(self.slice_by or ()))
        object.__setattr__(self, "bytes_features", tuple(self.bytes_features or ()))
        if self.weight_feature is not None and self.weight_feature in self.slice_by:
            raise ValueError("the weight feature cannot also be a slice feature")
