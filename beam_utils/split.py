"""Splitting examples into named splits (train, eval, ...) by a deterministic hash of each row.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.read import ReadExamples
    from conveyor.beam_utils.split import SplitExamples, parse_splits

    with beam.Pipeline() as p:
        read = p | ReadExamples("flights-*.csv")
        splits = read.examples | SplitExamples(parse_splits("train:2,eval:1"))
        splits["eval"] | beam.Map(lambda batch: print(batch.num_rows))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils import arrow


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(pa.RecordBatch)
class SplitExamples(beam.PTransform):
    """Splits RecordBatches into named splits by a deterministic hash of each row.

    Args:
      ratios: ``{split name: weight}``, e.g. ``{"train": 2, "eval": 1}``.
      hash_columns: columns whose values decide a row's split (rows that agree
        on them land together); None hashes the whole row.

    Returns:
      ``{split name: PCollection of RecordBatch}``.
    """

    def __init__(self, ratios: Mapping[str, int], hash_columns: Sequence[str] | None = None):
        super().__init__()
        if not ratios or any(int(w) <= 0 for w in ratios.values()):
            raise ValueError(f"split weights must be positive integers: {dict(ratios)}")
        self.ratios = {str(k): int(v) for k, v in ratios.items()}
        self.hash_columns = list(hash_columns) if hash_columns else None

    def expand(self, batches):
        names = list(self.ratios)
        outputs = batches | "Split" >> beam.ParDo(
            HashSplitFn(self.ratios, self.hash_columns)
        ).with_outputs(*names)
        return {name: outputs[name] for name in names}


class HashSplitFn(beam.DoFn):
    """RecordBatch -> its rows of each split, on the output tagged with the split's name.

    A row goes to the split whose share of ``1000 * sum(weights)`` buckets holds
    its hash (:func:`~conveyor.beam_utils.hashing.row_hashes`), so a row lands in
    the same split in every run and on every runner.
    """

    def __init__(self, ratios: Mapping[str, int], hash_columns):
        self._ratios = dict(ratios)
        self._hash_columns = hash_columns

    def process(self, batch: pa.RecordBatch):
        import numpy as np

        from conveyor.beam_utils.hashing import row_hashes

        weights = np.array(list(self._ratios.values()), dtype=np.uint64)
        bounds = np.cumsum(weights)
        # 1000 buckets per unit of weight keeps the split fine-grained.
        buckets = row_hashes(batch, self._hash_columns) % (bounds[-1] * np.uint64(1000))
        which = np.searchsorted(bounds * np.uint64(1000), buckets, side="right")
        for i, name in enumerate(self._ratios):
            mask = which == i
            if mask.any():
                yield beam.pvalue.TaggedOutput(name, arrow.take_rows(batch, mask))


def parse_splits(text: str) -> dict[str, int]:
    """``"train:2,eval:1"`` -> ``{"train": 2, "eval": 1}``."""
    out = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if not name or not weight.strip().isdigit() or int(weight) <= 0:
            raise ValueError(
                f"bad split {part!r} in {text!r}: expected NAME:WEIGHT, e.g. train:2,eval:1"
            )
        if name in out:
            raise ValueError(f"split {name!r} named twice in {text!r}")
        out[name] = int(weight)
    return out
