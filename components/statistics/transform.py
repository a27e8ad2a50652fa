"""``GenerateStatistics``: RecordBatches -> one ``DatasetFeatureStatisticsList``."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.components.statistics.combiners import CollectDatasetsFn, StatsCombineFn
from conveyor.components.statistics.options import ALL_EXAMPLES, StatsOptions
from conveyor.components.statistics.slicing import slice_batch


class _KeyBySlice(beam.DoFn):
    """Emits ``(ALL_EXAMPLES, batch)`` and ``(slice name, sub-batch)`` per slice."""

    def __init__(self, slice_by):
        self._slice_by = tuple(slice_by)

    def process(self, batch: pa.RecordBatch):
        yield ALL_EXAMPLES, batch
        if self._slice_by:
            yield from slice_batch(batch, self._slice_by)


def _named(name, dataset):
    dataset.name = name
    return dataset


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(statistics_pb2.DatasetFeatureStatisticsList)
class GenerateStatistics(beam.PTransform):
    """Computes TFDV-compatible statistics of a PCollection of ``pyarrow.RecordBatch``.

    The output holds one ``DatasetFeatureStatisticsList`` (per window, when the
    input is windowed): the ``All Examples`` dataset first, then one dataset per
    slice when ``options.slice_by`` is set. One pass over the data: batches are
    keyed by slice and folded by :class:`StatsCombineFn` with ``CombinePerKey``
    (which runners lift into a pre-combine before the shuffle, so the unsliced
    key is not a hot key; ``options.hot_key_fanout`` adds an explicit fan-out).

    Example::

        stats = batches | GenerateStatistics(StatsOptions(slice_by=["island"]))
    """

    def __init__(self, options: StatsOptions | None = None):
        super().__init__()
        self._options = options or StatsOptions()

    def expand(self, batches):
        opts = self._options
        combine = beam.CombinePerKey(StatsCombineFn(opts))
        if opts.hot_key_fanout:
            combine = combine.with_hot_key_fanout(opts.hot_key_fanout)
        datasets = (
            batches
            | "KeyBySlice" >> beam.ParDo(_KeyBySlice(opts.slice_by))
            | "CombineSlices" >> combine
            | "Name" >> beam.MapTuple(_named)
        )
        collect = beam.CombineGlobally(CollectDatasetsFn(opts))
        if not isinstance(batches.windowing.windowfn, GlobalWindows):
            collect = collect.without_defaults()
        return datasets | "Collect" >> collect
