"""The ExampleGen step: its PTransform (GenerateExamples) and the function that runs it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import arrow, files
from conveyor.beam_utils.io import (
    DEFAULT_BATCH_SIZE,
    ReadExamples,
    SplitExamples,
    WriteExamples,
)

DEFAULT_SPLITS = {"train": 2, "eval": 1}
REJECTED_DIR = "rejected"


class GenerateExamples(beam.PTransform):
    """Reads examples, splits them by hash and writes each split as TFRecords.

    Applied to a pipeline's start, it writes ``<output_dir>/Split-<name>/`` for
    each split, the rejected rows as JSON lines under ``<output_dir>/rejected/``
    and ``<output_dir>/summary.json``:
    ``{"rows_read", "rows_accepted", "rows_rejected", "splits": {name: rows},
    "features": {column: type}, "input", "format"}``. It returns the summary as a
    one-element PCollection. The summary is written only if the counts reconcile
    (read == accepted + rejected); otherwise the pipeline fails.

    Args:
      read: the :class:`ReadExamples` that reads the input.
      output_dir: where the Examples directory goes.
      splits: ``{split: weight}``, default ``{"train": 2, "eval": 1}``.
      hash_columns: columns that decide a row's split; None hashes the whole row.
    """

    def __init__(
        self,
        read: ReadExamples,
        output_dir: str,
        splits: Mapping[str, int] | None = None,
        hash_columns: Sequence[str] | None = None,
    ):
        super().__init__()
        self.read = read
        self.output_dir = output_dir
        self.splits = dict(splits or DEFAULT_SPLITS)
        self.hash_columns = hash_columns

    def expand(self, pbegin):
        read = pbegin | "Read" >> self.read
        schema = self.read.arrow_schema
        if self.hash_columns:
            unknown = [c for c in self.hash_columns if c not in schema.names]
            if unknown:
                raise ValueError(f"hash column(s) {unknown} are not in the input (columns: {schema.names})")
        parts = read.examples | "Split" >> SplitExamples(self.splits, self.hash_columns)
        counts = [
            read.rows_read | "KeyRead" >> beam.Map(lambda n: ("read", n)),
            read.rejected | "KeyRejected" >> beam.Map(lambda _: ("rejected", 1)),
        ]
        for name, batches in parts.items():
            batches | f"Write[{name}]" >> WriteExamples(self.output_dir, split=name)
            counts.append(
                batches | f"Key[{name}]" >> beam.Map(lambda b, k=name: ("split:" + k, b.num_rows))
            )
        (
            read.rejected
            | "RejectedJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
            | "WriteRejected" >> beam.io.WriteToText(
                FileSystems.join(self.output_dir, REJECTED_DIR, "rejected"),
                file_name_suffix=".jsonl",
                num_shards=1,
            )
        )
        info = {
            "input": self.read.file_pattern,
            "format": self.read.format,
            "features": arrow.feature_types(schema),
            "split_names": list(self.splits),
        }
        return (
            counts
            | "AllCounts" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "Summary" >> beam.Map(_summary, info, self.output_dir)
        )


def _summary(counts: dict, info: dict, output_dir: str) -> dict:
    splits = {name: int(counts.get("split:" + name, 0)) for name in info["split_names"]}
    summary = {
        "input": info["input"],
        "format": info["format"],
        "rows_read": int(counts.get("read", 0)),
        "rows_accepted": sum(splits.values()),
        "rows_rejected": int(counts.get("rejected", 0)),
        "splits": splits,
        "features": info["features"],
    }
    if summary["rows_read"] != summary["rows_accepted"] + summary["rows_rejected"]:
        raise RuntimeError(f"row counts do not reconcile: {summary}")
    files.write_text(FileSystems.join(output_dir, files.SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def run_example_gen(
    input_pattern: str,
    output_dir: str,
    format: str | None = None,
    splits: Mapping[str, int] | None = None,
    hash_columns: Sequence[str] | None = None,
    schema=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    missing_values: Sequence[str] | None = None,
    beam_args: Sequence[str] | None = None,
    delimiter: str = ",",
) -> dict:
    """Runs ExampleGen as a Beam pipeline and returns its summary (see :class:`GenerateExamples`)."""
    from conveyor.beam_utils.csv_io import DEFAULT_MISSING_VALUES
    from conveyor.beam_utils.options import pipeline_options

    read = ReadExamples(
        input_pattern,
        format=format,
        schema=schema,
        batch_size=batch_size,
        missing_values=DEFAULT_MISSING_VALUES if missing_values is None else missing_values,
        delimiter=delimiter,
    )
    read.arrow_schema  # infer now: a bad input fails before the pipeline starts
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        _ = p | GenerateExamples(read, output_dir, splits, hash_columns)
    summary = files.read_summary(output_dir)
    if summary is None:
        raise RuntimeError(f"ExampleGen finished without writing {output_dir}/{files.SUMMARY_FILE}")
    return summary
