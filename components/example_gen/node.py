"""ExampleGen as a pipeline component: input files -> an Examples artifact."""

from __future__ import annotations

import hashlib
import json

from conveyor.dsl import REQUIRED, Component


class ExampleGen(Component):
    """Ingests CSV, TFRecord or Parquet files into hash-split TFRecord Examples.

    Parameters mirror ``conveyor examples``: ``input_base`` (a file or glob, on
    any Beam filesystem), ``format``, ``splits`` (``{name: weight}``),
    ``hash_columns``, ``missing_values`` and ``schema``
    (``{column: INT|FLOAT|BYTES}``). The cache key includes each input file's
    path, size and modification time (as the filesystem reports them, ``gs://``
    and the like included), so changed data is read again.

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
        """The parameters' fingerprint and every input file's path, size and modification time."""
        h = hashlib.sha256(super().fingerprint().encode())
        for path, size, updated in _input_files(self.parameters["input_base"]):
            h.update(f"{path}:{size}:{updated!r}\n".encode())
        return h.hexdigest()

    def execute(self, ctx):
        from conveyor.beam_utils.io import ReadExamples
        from conveyor.components.example_gen.component import run_example_gen

        p = ctx.parameters
        # Settings left None take ReadExamples' defaults (the missing values among them).
        settings = {k: p[k] for k in ("format", "schema", "missing_values") if p[k] is not None}
        summary = run_example_gen(
            {None: ReadExamples(p["input_base"], **settings)},
            ctx.outputs["examples"].uri,
            splits=p["splits"],
            hash_columns=p["hash_columns"],
            beam_args=ctx.beam_args,
        )
        return {
            "examples": {
                "split_names": json.dumps(list(summary["splits"])),
                "rows_read": summary["rows_read"],
                "rows_rejected": summary["rows_rejected"],
            }
        }


def _input_files(pattern: str) -> list[tuple[str, int, float]]:
    """``(path, size in bytes, last updated in seconds)`` of each file matching ``pattern``.

    Through Beam's FileSystems, so any scheme it knows (local, ``gs://``, ``s3://``...)
    is looked at. A pattern that matches nothing gives no files: the run then fails
    naming it.
    """
    from apache_beam.io.filesystems import FileSystems

    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # some filesystems raise for a pattern that matches nothing
        return []
    return sorted((m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in found)
