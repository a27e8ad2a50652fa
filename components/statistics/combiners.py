"""Beam CombineFns of the statistics component.

:class:`StatsCombineFn` folds RecordBatches into a
:class:`~conveyor.components.statistics.accumulators.DatasetStats` (vectorised
work per batch, mergeable partials) and extracts a ``DatasetFeatureStatistics``.
:class:`CollectDatasetsFn` gathers the per-slice results into one
``DatasetFeatureStatisticsList``. Both hold only their options, so they pickle
and run on any runner, and they work per window as well as globally.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.components.statistics import proto
from conveyor.components.statistics.accumulators import DatasetStats
from conveyor.components.statistics.options import ALL_EXAMPLES, StatsOptions


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(statistics_pb2.DatasetFeatureStatistics)
class StatsCombineFn(beam.CombineFn):
    """RecordBatches -> ``DatasetFeatureStatistics`` (unnamed: the key names it).

    Used with ``CombinePerKey`` over ``(slice name, batch)`` pairs, as
    :class:`~conveyor.components.statistics.transform.GenerateStatistics` does,
    or directly through its methods (the monitor folds a window's batches with it).

    Example::

        stats = batches | beam.CombineGlobally(StatsCombineFn(StatsOptions()))
    """

    def __init__(self, options: StatsOptions | None = None):
        self._options = options or StatsOptions()

    def create_accumulator(self) -> DatasetStats:
        return DatasetStats(self._options)

    def add_input(self, acc: DatasetStats, batch: pa.RecordBatch) -> DatasetStats:
        acc.update(batch)
        return acc

    def merge_accumulators(self, accumulators) -> DatasetStats:
        it = iter(accumulators)
        first = next(it, None)
        if first is None:
            return self.create_accumulator()
        for acc in it:
            first.merge(acc)
        return first

    def extract_output(self, acc: DatasetStats) -> statistics_pb2.DatasetFeatureStatistics:
        return proto.dataset_proto("", acc)


@beam.typehints.with_input_types(statistics_pb2.DatasetFeatureStatistics)
@beam.typehints.with_output_types(statistics_pb2.DatasetFeatureStatisticsList)
class CollectDatasetsFn(beam.CombineFn):
    """Named ``DatasetFeatureStatistics`` -> one ``DatasetFeatureStatisticsList``.

    The unsliced dataset (``All Examples``) comes first, slices follow by name.
    Without slicing that dataset is unnamed, as in TFDV's output. With no input
    at all it holds one dataset of zero examples.
    """

    def __init__(self, options: StatsOptions | None = None):
        self._options = options or StatsOptions()

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, dataset: statistics_pb2.DatasetFeatureStatistics) -> dict:
        acc[dataset.name] = dataset.SerializeToString()
        return acc

    def merge_accumulators(self, accumulators) -> dict:
        out: dict = {}
        for acc in accumulators:
            out.update(acc)
        return out

    def extract_output(self, acc: dict) -> statistics_pb2.DatasetFeatureStatisticsList:
        result = statistics_pb2.DatasetFeatureStatisticsList()
        if ALL_EXAMPLES in acc:
            result.datasets.add().ParseFromString(acc[ALL_EXAMPLES])
        else:
            result.datasets.append(proto.empty_dataset_proto(ALL_EXAMPLES, self._options))
        for name in sorted(n for n in acc if n != ALL_EXAMPLES):
            result.datasets.add().ParseFromString(acc[name])
        if not self._options.slice_by:
            # As TFDV does, an unsliced result's single dataset carries no name.
            result.datasets[0].name = ""
        return result
