"""A read-only view of one dataset of a ``DatasetFeatureStatisticsList``.

Schema inference and validation read the same few figures per feature (counts
present and missing, value counts, min/max, the rank histogram of strings, the
standard histogram of numbers); this module gathers them with TFDV's reading
of the proto (``STRING`` and ``BYTES`` statistics are both ``BYTES`` features;
a feature whose statistics are unset counts as absent; a fraction present is
exactly 1 when nothing is missing).

Only top-level features are read: a path of one step or a ``name``. Nested
(STRUCT) features are outside Conveyor's flat example format.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

FNS = statistics_pb2.FeatureNameStatistics
INVALID_UTF8_LABEL = "__BYTES_VALUE__"

_SCHEMA_TYPE = {
    FNS.INT: schema_pb2.INT,
    FNS.FLOAT: schema_pb2.FLOAT,
    FNS.STRING: schema_pb2.BYTES,
    FNS.BYTES: schema_pb2.BYTES,
    FNS.STRUCT: schema_pb2.STRUCT,
}


def select_dataset(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str | None = None):
    """The dataset to read: the one called ``name``, else the first (the unsliced one).

    ``GenerateStatistics`` (ours and TFDV's) puts the whole dataset first and
    slices after it, so the first dataset is the data as a whole.
    """
    if isinstance(stats, statistics_pb2.DatasetFeatureStatistics):
        return stats
    if not stats.datasets:
        raise ValueError("the statistics hold no dataset")
    if name is None:
        return stats.datasets[0]
    for d in stats.datasets:
        if d.name == name:
            return d
    names = ", ".join(repr(d.name) for d in stats.datasets)
    raise ValueError(f"no dataset named {name!r} in the statistics (there are: {names})")


def feature_name(f: statistics_pb2.FeatureNameStatistics) -> str | None:
    """The feature's name, or None for a nested path."""
    if f.HasField("path"):
        return f.path.step[0] if len(f.path.step) == 1 else None
    return f.name


@dataclasses.dataclass
class FeatureView:
    """The figures of one feature that inference and validation use."""

    name: str
    proto: statistics_pb2.FeatureNameStatistics
    num_examples: float

    @property
    def stats_type(self) -> int:
        """The statistics type (``FeatureNameStatistics.Type``)."""
        return self.proto.type

    @property
    def stats_type_name(self) -> str:
        """The statistics type's name (``INT``, ``STRING``...)."""
        return FNS.Type.Name(self.proto.type)

    @property
    def schema_type(self) -> int:
        """The schema's type for it: ``STRING`` and ``BYTES`` are both ``BYTES``."""
        return _SCHEMA_TYPE.get(self.proto.type, schema_pb2.TYPE_UNKNOWN)

    @cached_property
    def common(self) -> statistics_pb2.CommonStatistics:
        """The ``CommonStatistics`` of whichever statistics are set (empty if none)."""
        which = self.proto.WhichOneof("stats")
        if which in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
            return getattr(self.proto, which).common_stats
        return statistics_pb2.CommonStatistics()

    @property
    def num_present(self) -> float:
        """Examples holding the feature."""
        return float(self.common.num_non_missing)

    @property
    def num_missing(self) -> float:
        """Examples without the feature."""
        return float(self.common.num_missing)

    @property
    def fraction_present(self) -> float | None:
        """The fraction of examples holding it: exactly 1 when none miss it; None without examples."""
        if self.num_missing == 0:
            return 1.0
        if self.num_examples > 0:
            return self.num_present / self.num_examples
        return None

    @property
    def min_num_values(self) -> int:
        """The fewest values an example holding it has."""
        return int(self.common.min_num_values)

    @property
    def max_num_values(self) -> int:
        """The most values an example holding it has."""
        return int(self.common.max_num_values)

    @property
    def total_values(self) -> float:
        """Values over all examples (from the average where the total is not recorded)."""
        c = self.common
        if c.tot_num_values:
            return float(c.tot_num_values)
        return float(c.num_non_missing) * float(c.avg_num_values)

    @cached_property
    def string_counts(self) -> dict[str, float]:
        """``{value: count}`` from the rank histogram (empty for numeric statistics)."""
        out: dict[str, float] = {}
        for b in self.proto.string_stats.rank_histogram.buckets:
            out.setdefault(b.label, float(b.sample_count))
        return out

    @property
    def has_num_stats(self) -> bool:
        """Whether the feature has numeric statistics."""
        return self.proto.HasField("num_stats")

    @property
    def num_stats(self) -> statistics_pb2.NumericStatistics:
        """Its ``NumericStatistics``."""
        return self.proto.num_stats

    def histogram(self, kind: int = statistics_pb2.Histogram.STANDARD):
        """The numeric histogram of that type, or None."""
        if not self.has_num_stats:
            return None
        for h in self.num_stats.histograms:
            if h.type == kind:
                return h
        return None

    @property
    def num_nan(self) -> float:
        """NaN values counted in the numeric histograms (TFDV records them there)."""
        h = self.histogram() or self.histogram(statistics_pb2.Histogram.QUANTILES)
        return float(h.num_nan) if h is not None else 0.0

    @property
    def unique(self) -> int | None:
        """Distinct values of string statistics, else None."""
        if self.proto.HasField("string_stats"):
            return int(self.proto.string_stats.unique)
        return None


class DatasetView:
    """Features of one dataset by name, in the statistics' order."""

    def __init__(self, dataset: statistics_pb2.DatasetFeatureStatistics):
        self.proto = dataset
        self.num_examples = float(dataset.num_examples)
        self.features: dict[str, FeatureView] = {}
        for f in dataset.features:
            name = feature_name(f)
            if name is None or f.WhichOneof("stats") is None:
                continue  # nested, or statistics not set: treated as absent (as TFDV)
            self.features.setdefault(name, FeatureView(name, f, self.num_examples))

    def get(self, name: str) -> FeatureView | None:
        """The feature called ``name``, or None if the statistics lack it."""
        return self.features.get(name)

    def __iter__(self):
        """The features, in the statistics' order."""
        return iter(self.features.values())
