"""Counting what a pipeline read, kept and rejected, and totalling it into one summary.

Every component ends its pipeline the same way: it counts rows on several
PCollections (rows read, batches accepted per split, rows rejected), totals the
counts and writes a summary once they are all in. :class:`SumCounts` is that
chain, written once: ``{key: PCollection}`` in, one ``{key: total}`` dict out
(every key present, 0 where its PCollection was empty), optionally handed to a
function that checks and writes the summary.

Example::

    import apache_beam as beam
    from conveyor.beam_utils.summary import SumCounts, count_rows, count_value, reconcile

    read = p | ReadExamples("flights.csv")
    totals = {
        "read": read.rows_read,            # ints: rows the reader saw
        "accepted": read.examples,         # RecordBatches: their rows
        "rejected": read.rejected,         # one element per rejected row
    } | SumCounts({"read": count_value, "accepted": count_rows})
    totals | beam.Map(lambda t: reconcile(t["read"], t["accepted"], t["rejected"], "flights.csv"))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import apache_beam as beam

__all__ = ["SumCounts", "count_one", "count_rows", "count_value", "reconcile"]


def count_one(element: Any) -> int:
    """Each element counts once (a rejected row, a file)."""
    return 1


def count_rows(batch: Any) -> int:
    """A ``pyarrow.RecordBatch`` (or Table) counts its rows."""
    return batch.num_rows


def count_value(n: int) -> int:
    """The element is the count itself (a reader's rows-read figure)."""
    return int(n)


def reconcile(read: int, accepted: int, rejected: int, what: str) -> None:
    """Raises RuntimeError if ``read != accepted + rejected``: a row was lost or made up."""
    if read != accepted + rejected:
        raise RuntimeError(
            f"{what}: row counts do not reconcile: read {read} != "
            f"accepted {accepted} + rejected {rejected}"
        )


class SumCounts(beam.PTransform):
    """``{key: PCollection}`` -> one ``{key: total}`` dict, then optionally ``then(totals, *args)``.

    Args:
      how: ``{key: function(element) -> int}``: how an element of that key's
        PCollection counts; keys not named count each element once
        (:func:`count_one`). :func:`count_rows` and :func:`count_value` are the
        other usual ways.
      then: a function called once with the totals (and ``then_args``), on a
        worker, when every count is in: it checks and writes the summary, and
        its result is the output. Without it the output is the totals.
      then_args: further arguments of ``then``.

    The output has exactly one element, also when every input is empty.
    """

    def __init__(
        self,
        how: Mapping[str, Callable[[Any], int]] | None = None,
        then: Callable[..., Any] | None = None,
        *then_args: Any,
    ):
        super().__init__()
        self._how = dict(how or {})
        self._then = then
        self._then_args = then_args

    def expand(self, pcolls: Mapping[str, beam.PCollection]):
        keys = list(pcolls)
        unknown = sorted(set(self._how) - set(keys))
        if unknown:
            raise ValueError(f"SumCounts: no PCollection for {unknown} (keys: {keys})")
        keyed = [
            pcoll | f"Count[{key}]" >> beam.Map(_keyed, key, self._how.get(key, count_one))
            for key, pcoll in pcolls.items()
        ]
        pipeline = next(iter(pcolls.values())).pipeline if pcolls else None
        if pipeline is None:
            raise ValueError("SumCounts needs at least one PCollection")
        totals = (
            keyed
            | "Flatten" >> beam.Flatten(pipeline=pipeline)
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "AllKeys"
            >> beam.Map(lambda found: {k: int(found.get(k, 0)) for k in keys}).with_output_types(
                dict[str, int]
            )
        )
        if self._then is None:
            return totals
        return totals | "Then" >> beam.Map(self._then, *self._then_args)


def _keyed(element: Any, key: str, how: Callable[[Any], int]) -> tuple[str, int]:
    return key, how(element)
