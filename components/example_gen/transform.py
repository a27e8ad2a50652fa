"""``GenerateExamples``: read examples, split them and write each split as TFRecords."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import arrow, files
from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.beam_utils.io import ReadExamples, SplitExamples, WriteExamples
from conveyor.beam_utils.summary import SumCounts, count_rows, count_value, reconcile
from conveyor.dsl import layout

#: The splits and weights of one input unless told otherwise (TFX ExampleGen's 2:1).
DEFAULT_SPLITS = {"train": 2, "eval": 1}
#: The folder of an Examples directory that holds the rejected rows (JSON lines).
REJECTED_DIR = "rejected"


@beam.typehints.with_output_types(dict[str, Any])
class GenerateExamples(beam.PTransform):
    """Reads examples, splits them and writes each split as gzip TFRecords of ``tf.Example``.

    Applied to a pipeline's start, it writes ``<output_dir>/Split-<name>/`` for
    each split, the rejected rows as JSON lines under ``<output_dir>/rejected/``
    and ``<output_dir>/summary.json``. It returns the summary as a one-element
    PCollection. The summary is written only if the counts reconcile
    (read == accepted + rejected); otherwise the pipeline fails.

    With one input (``{None: ReadExamples(...)}``: its key is not used), the rows
    are split by a hash of each row (or of ``hash_columns``) in the proportions of
    ``splits``, and the summary is ``{"input": pattern, "format", "rows_read",
    "rows_accepted", "rows_rejected", "splits": {name: rows}, "features":
    {column: type}}``. With several inputs (``{"train": ..., "eval": ...}``) they
    are splits already: each is written unchanged as the split of its key, their
    feature types must agree, ``splits`` and ``hash_columns`` must be None, and
    the summary's ``input`` and ``format`` are ``{split: ...}``.

    Args:
      examples: ``{split name: ReadExamples}``, see above.
      output_dir: where the Examples directory goes.
      splits: ``{split: weight}`` for one input, default :data:`DEFAULT_SPLITS`.
      hash_columns: columns that decide a row's split; None hashes the whole row.

    Raises:
      UsageError: no input; ``splits`` or ``hash_columns`` given with several
        inputs; a hash column not in the input (when the pipeline is built).
      InputError: several inputs whose feature types differ (when the pipeline is built).

    Example::

        with beam.Pipeline() as p:
            summary = p | GenerateExamples({None: ReadExamples("flights.csv")}, "out/examples")
    """

    def __init__(
        self,
        examples: Mapping[str, ReadExamples],
        output_dir: str,
        splits: Mapping[str, int] | None = None,
        hash_columns: Sequence[str] | None = None,
    ):
        super().__init__()
        if not isinstance(examples, Mapping):
            raise TypeError(
                f"examples is a mapping {{split: ReadExamples}} ({{None: reader}} for one input), "
                f"not a {type(examples).__name__}"
            )
        if not examples:
            raise UsageError("ExampleGen: no input (examples is empty)")
        self.examples = dict(examples)
        self.output_dir = output_dir
        self.hash_columns = list(hash_columns) if hash_columns else None
        self.presplit = len(self.examples) > 1
        if self.presplit:
            names = sorted(map(str, self.examples))
            if splits is not None:
                raise UsageError(
                    f"splits {dict(splits)} and pre-split examples {names}: several inputs are "
                    "written as the splits they are, so give splits=None (or one input to split)"
                )
            if self.hash_columns:
                raise UsageError(
                    f"hash_columns {self.hash_columns} and pre-split examples {names}: several "
                    "inputs are not split again, so give hash_columns=None"
                )
            bad = [k for k in self.examples if not isinstance(k, str) or not k]
            if bad:
                raise UsageError(
                    f"pre-split examples need a split name for every input, not {bad!r}"
                )
            self.splits = None
        else:
            self.splits = dict(splits or DEFAULT_SPLITS)
        self._schema: pa.Schema | None = None

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the examples (inferred on first use; checked the same for every input)."""
        if self._schema is None:
            self._schema = _common_schema(self.examples)
        return self._schema

    def expand(self, pbegin):
        schema = self.arrow_schema
        if self.presplit:
            counts, rejected = self._read_splits(pbegin)
        else:
            counts, rejected = self._split_input(pbegin, schema)
        (
            rejected
            | "RejectedJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
            | "WriteRejected"
            >> beam.io.WriteToText(
                FileSystems.join(self.output_dir, REJECTED_DIR, "rejected"),
                file_name_suffix=".jsonl",
                num_shards=1,
            )
        )
        how = {
            k: count_rows if k.startswith("split:") else count_value
            for k in counts
            if not k.startswith("rejected")
        }
        info = {
            "inputs": {
                name: (read.file_pattern, read.format) for name, read in self.examples.items()
            },
            "presplit": self.presplit,
            "features": arrow.feature_types(schema),
            "split_names": list(self.examples) if self.presplit else list(self.splits),
        }
        return counts | "Summary" >> SumCounts(how, _summary, info, self.output_dir)

    def _split_input(self, pbegin, schema: pa.Schema):
        (read,) = self.examples.values()
        if self.hash_columns:
            unknown = [c for c in self.hash_columns if c not in schema.names]
            if unknown:
                raise UsageError(
                    f"hash column(s) {unknown} are not in the input (columns: {schema.names})"
                )
        result = pbegin | "Read" >> read
        parts = result.examples | "Split" >> SplitExamples(self.splits, self.hash_columns)
        counts = {"read": result.rows_read, "rejected": result.rejected}
        for name, batches in parts.items():
            batches | f"Write[{name}]" >> WriteExamples(self.output_dir, split=name)
            counts["split:" + name] = batches
        return counts, result.rejected

    def _read_splits(self, pbegin):
        counts, rejected = {}, []
        for name, read in self.examples.items():
            result = pbegin | f"Read[{name}]" >> read
            result.examples | f"Write[{name}]" >> WriteExamples(self.output_dir, split=name)
            counts.update(
                {
                    "read:" + name: result.rows_read,
                    "rejected:" + name: result.rejected,
                    "split:" + name: result.examples,
                }
            )
            rejected.append(result.rejected)
        return counts, rejected | "AllRejected" >> beam.Flatten(pipeline=pbegin.pipeline)


def _common_schema(examples: Mapping[str, ReadExamples]) -> pa.Schema:
    """The one schema of every input; raises InputError naming the inputs whose types differ."""
    reads = list(examples.items())
    first_name, first = reads[0]
    schema = first.arrow_schema
    types = arrow.feature_types(schema)
    for name, read in reads[1:]:
        other = arrow.feature_types(read.arrow_schema)
        if other != types:
            differ = sorted(set(types.items()) ^ set(other.items()))
            columns = sorted({column for column, _ in differ})
            raise InputError(
                f"{read.file_pattern} (split {name!r}): feature types differ from "
                f"{first.file_pattern} (split {first_name!r}) in {columns}: "
                f"{ {c: other.get(c) for c in columns} } vs { {c: types.get(c) for c in columns} }; "
                "give every input the same schema"
            )
    return schema


def _summary(totals: dict[str, int], info: dict, output_dir: str) -> dict:
    """Checks the counts reconcile, writes ``summary.json`` and returns the summary."""
    names = info["split_names"]
    splits = {name: totals["split:" + name] for name in names}
    if info["presplit"]:
        inputs = info["inputs"]
        for name in names:
            reconcile(
                totals["read:" + name], splits[name], totals["rejected:" + name], inputs[name][0]
            )
        summary = {
            "input": {name: pattern for name, (pattern, _) in inputs.items()},
            "format": {name: format for name, (_, format) in inputs.items()},
            "rows_read": sum(totals["read:" + name] for name in names),
            "rows_accepted": sum(splits.values()),
            "rows_rejected": sum(totals["rejected:" + name] for name in names),
        }
    else:
        ((pattern, format),) = info["inputs"].values()
        summary = {
            "input": pattern,
            "format": format,
            "rows_read": totals["read"],
            "rows_accepted": sum(splits.values()),
            "rows_rejected": totals["rejected"],
        }
        reconcile(summary["rows_read"], summary["rows_accepted"], summary["rows_rejected"], pattern)
    summary["splits"] = splits
    summary["features"] = info["features"]
    files.write_text(
        FileSystems.join(output_dir, layout.SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
    )
    return summary
