"""Running small pipelines in tests and collecting what they produce.

Outputs are written to files under a temporary directory (not kept in process
memory) so the same helpers work on the in-memory, multi-processing and
portable runners.
"""

from __future__ import annotations

import json
import os
import pathlib
import uuid

import apache_beam as beam
import pyarrow as pa

from conveyor.beam_utils.options import pipeline_options


def _write_batch(batch: pa.RecordBatch, folder: str) -> None:
    path = os.path.join(folder, f"{uuid.uuid4().hex}.arrow")
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as w:
        w.write_batch(batch)


def _write_json(item, folder: str) -> None:
    with open(os.path.join(folder, f"{uuid.uuid4().hex}.json"), "w") as f:
        json.dump(item, f)


class CollectBatches(beam.PTransform):
    """Writes each RecordBatch to ``folder`` as an Arrow IPC file."""

    def __init__(self, folder):
        super().__init__()
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)

    def expand(self, pcoll):
        return pcoll | beam.Map(_write_batch, self.folder)


class CollectJson(beam.PTransform):
    """Writes each element to ``folder`` as a JSON file."""

    def __init__(self, folder):
        super().__init__()
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)

    def expand(self, pcoll):
        return pcoll | beam.Map(_write_json, self.folder)


def load_batches(folder) -> list[pa.RecordBatch]:
    out = []
    for path in sorted(pathlib.Path(folder).glob("*.arrow")):
        with pa.OSFile(str(path), "rb") as src:
            out.extend(pa.ipc.open_file(src).read_all().to_batches())
    return out


def load_table(folder, schema: pa.Schema | None = None) -> pa.Table:
    batches = load_batches(folder)
    if not batches:
        assert schema is not None, "no batches and no schema"
        return schema.empty_table()
    return pa.Table.from_batches(batches)


def load_json(folder) -> list:
    return [json.loads(p.read_text()) for p in sorted(pathlib.Path(folder).glob("*.json"))]


def run_read(read, workdir, beam_args=None):
    """Runs a ReadExamples; returns (table, rejected dicts, rows read)."""
    workdir = pathlib.Path(workdir)
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        result = p | read
        result.examples | "Batches" >> CollectBatches(workdir / "batches")
        result.rejected | "Rejected" >> CollectJson(workdir / "rejected")
        result.rows_read | "RowsRead" >> CollectJson(workdir / "rows_read")
    table = load_table(workdir / "batches", read.arrow_schema)
    return table, load_json(workdir / "rejected"), sum(load_json(workdir / "rows_read"))


def sort_table(table: pa.Table, key: str) -> pa.Table:
    """Rows ordered by a scalar list column's value (for comparing tables)."""
    import pyarrow.compute as pc

    flat = pc.list_element(table.column(key), 0) if hasattr(pc, "list_element") else None
    if flat is None:
        flat = pa.array([v[0] if v else None for v in table.column(key).to_pylist()])
    order = pc.sort_indices(flat)
    return table.take(order)
