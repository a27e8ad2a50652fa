"""SumCounts: the shared count -> total -> summary chain."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from conveyor.beam_utils.summary import SumCounts, count_rows, count_value, reconcile


def test_totals_every_key_with_its_own_way_of_counting():
    batch = pa.record_batch([pa.array([1, 2, 3])], names=["x"])
    with beam.Pipeline() as p:
        totals = {
            "read": p | "R" >> beam.Create([4, 3]),
            "accepted": p | "A" >> beam.Create([batch, batch]),
            "rejected": p | "J" >> beam.Create(["bad row"]),
            "empty": p | "E" >> beam.Create([]),
        } | SumCounts({"read": count_value, "accepted": count_rows})
        assert_that(totals, equal_to([{"read": 7, "accepted": 6, "rejected": 1, "empty": 0}]))


def test_then_gets_the_totals_and_its_arguments_once_when_all_is_empty():
    with beam.Pipeline() as p:
        out = {"a": p | beam.Create([])} | SumCounts(None, lambda t, tag: (tag, t), "x")
        assert_that(out, equal_to([("x", {"a": 0})]))


def test_a_way_of_counting_for_a_missing_key_is_an_error():
    with pytest.raises(ValueError, match=r"no PCollection for \['nope'\]"):
        with beam.Pipeline() as p:
            _ = {"a": p | beam.Create([1])} | SumCounts({"nope": count_value})


def test_reconcile_names_what_does_not_add_up():
    reconcile(5, 3, 2, "f.csv")
    with pytest.raises(
        RuntimeError,
        match=r"f.csv: row counts do not reconcile: read 5 != accepted 3 \+ rejected 1",
    ):
        reconcile(5, 3, 1, "f.csv")
