"""ExampleGen as a pipeline component: input files -> an Examples artifact."""

from __future__ import annotations

import glob
import hashlib
import json
import os

from conveyor.dsl import REQUIRED, Component


class ExampleGen(Component):
    """Ingests CSV, TFRecord or Parquet files into hash-split TFRecord Examples.

    Parameters mirror ``conveyor examples``: ``input_base`` (a file or glob),
    ``format``, ``splits`` (``{name: weight}``), ``hash_columns``,
    ``missing_values`` and ``schema`` (``{column: INT|FLOAT|BYTES}``). The cache
    key includes each input file's size and modification time, so changed data
    is read again.

    Example::

        gen = ExampleGen(input_base="data/flights.csv", splits={"train": 2, "eval": 1})
    """

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {
        "input_base": REQUIRED,
        "format": None,
        "splits": None,
        "hash_columns": None,
        "missing_values": None,
        "schema": None,
    }

    def fingerprint(self) -> str:
        h = hashlib.sha256(super().fingerprint().encode())
        pattern = self.parameters["input_base"]
        if "://" not in pattern:
            for path in sorted(glob.glob(pattern)):
                st = os.stat(path)
                h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def execute(self, ctx):
        from conveyor.components.example_gen.component import run_example_gen

        p = ctx.parameters
        summary = run_example_gen(
            p["input_base"],
            ctx.outputs["examples"].uri,
            format=p["format"],
            splits=p["splits"],
            hash_columns=p["hash_columns"],
            schema=p["schema"],
            missing_values=p["missing_values"],
            beam_args=ctx.beam_args,
        )
        return {"examples": {
            "split_names": json.dumps(list(summary["splits"])),
            "rows_read": summary["rows_read"],
            "rows_rejected": summary["rows_rejected"],
        }}
