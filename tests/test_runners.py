"""The IO transforms pickle and run outside the in-process runner.

One read-split-write pipeline runs on the PortableRunner against Beam's Python
job service (LOOPBACK workers) and with the multi-processing direct runner; its
output equals the in-memory run's.
"""

import apache_beam as beam
import pyarrow as pa
from conftest import portable_args
from pipeline_helpers import CollectJson, load_json, run_read, sort_table

from conveyor.beam_utils import datasets
from conveyor.beam_utils.io import ReadExamples, SplitExamples, WriteExamples
from conveyor.beam_utils.options import pipeline_options


def _read_split_write(src, out, beam_args):
    read = ReadExamples(src, batch_size=500)
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        result = p | read
        parts = result.examples | SplitExamples({"train": 2, "eval": 1})
        for name, batches in parts.items():
            batches | f"Write{name}" >> WriteExamples(str(out), split=name)
            (
                batches
                | f"Count{name}" >> beam.Map(lambda b, n=name: [n, b.num_rows])
                | f"Collect{name}" >> CollectJson(out / "_counts")
            )
        result.rows_read | "Rows" >> CollectJson(out / "_rows")
    counts = {}
    for name, n in load_json(out / "_counts"):
        counts[name] = counts.get(name, 0) + n
    return counts, sum(load_json(out / "_rows"))


def _read_back(out, split, tmp):
    table, rejected, _ = run_read(ReadExamples(str(out / f"Split-{split}" / "*")), tmp)
    assert rejected == []
    return sort_table(table.select(sorted(table.column_names)), "id")


def _source(tmp_path):
    # Penguins with an id column, so rows can be matched across runs.
    lines = open(datasets.penguins_csv()).read().splitlines()
    body = [lines[0] + ",id"] + [f"{line},{i}" for i, line in enumerate(lines[1:])]
    path = tmp_path / "penguins.csv"
    path.write_text("\n".join(body) + "\n")
    return str(path)


def test_portable_runner_matches_in_memory(tmp_path, job_endpoint):
    src = _source(tmp_path)
    local_counts, local_rows = _read_split_write(src, tmp_path / "local", [])
    portable_counts, portable_rows = _read_split_write(
        src, tmp_path / "portable", portable_args(job_endpoint)
    )
    assert local_rows == portable_rows == 344
    assert local_counts == portable_counts
    for split in ("train", "eval"):
        a = _read_back(tmp_path / "local", split, tmp_path / f"la{split}")
        b = _read_back(tmp_path / "portable", split, tmp_path / f"pb{split}")
        assert a.equals(b)


def test_multi_processing_matches_in_memory(tmp_path):
    src = _source(tmp_path)
    local_counts, _ = _read_split_write(src, tmp_path / "local", [])
    mp_counts, mp_rows = _read_split_write(
        src, tmp_path / "mp", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    assert mp_rows == 344 and mp_counts == local_counts
    a = _read_back(tmp_path / "local", "train", tmp_path / "a")
    b = _read_back(tmp_path / "mp", "train", tmp_path / "b")
    assert a.equals(b) and isinstance(a, pa.Table)
