"""ExampleGen as a pipeline component: input files -> an Examples artifact."""

from __future__ import annotations

import hashlib

from conveyor.dsl import REQUIRED, Component


class ExampleGen(Component):
    """Ingests CSV, TFRecord or Parquet files into split TFRecord Examples, with TFX's inputs.

    Parameters (TFX's names and meaning; the configs are dicts, their JSON or the protos):

    - ``input_base``: a file, a glob or a folder (all its files), on any Beam
      filesystem; with ``input_config``, the folder its patterns are under.
    - ``input_config``: named splits, each a pattern under input_base
      (``{"splits": [{"name": "train", "pattern": "train/*"}, {"name": "eval",
      "pattern": "eval/*"}]}``): pre-split inputs, written as the splits they
      are (one split is hash-split like a single input).
    - ``output_config``: the hash split of a single input (``{"split_config":
      {"splits": [{"name": "train", "hash_buckets": 2}, ...],
      "partition_feature_name": "user_id"}}``); ``splits`` (``{name: weight}``)
      and ``hash_columns`` are its short form. Default: train 2, eval 1.
    - ``range_config``: the spans to read (``{"static_range":
      {"start_span_number": 3, "end_span_number": 5}}`` or ``{"rolling_range":
      {"num_spans": 2, "start_span_number": 3}}``); default: the latest span.
    - ``format``, ``missing_values``, ``schema`` (``{column: INT|FLOAT|BYTES}``).

    Patterns may hold ``{SPAN}``, ``{VERSION}`` and ``{YYYY}``/``{MM}``/``{DD}``
    (a date is the span: its day number since 1970-01-01); ``{SPAN:2}`` is two
    digits. The latest span is read at its latest version
    (:mod:`~conveyor.components.example_gen.spans`). The Examples artifact
    records ``span``, ``version`` (with ``{VERSION}``), ``split_names`` and
    ``input_fingerprint`` (TFX's properties; ``spans``/``versions`` too when
    a range reads several) and the row counts. The cache key covers the
    selected files' paths, sizes and modification times, so unchanged input is
    a cache hit and a new span, version or changed file is read anew.

    Example::

        gen = ExampleGen(
            input_base="data",
            input_config={"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*"},
                                     {"name": "eval", "pattern": "span-{SPAN}/eval/*"}]},
        )
    """

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {
        "input_base": REQUIRED,
        "input_config": None,
        "output_config": None,
        "range_config": None,
        "format": None,
        "splits": None,
        "hash_columns": None,
        "missing_values": None,
        "schema": None,
    }

    def fingerprint(self) -> str:
        """The parameters' fingerprint and every selected input file's path, size and update time.

        Input that cannot be resolved (no file, a bad placeholder) gives a key
        of its error: the execution then fails with it.
        """
        from conveyor.beam_utils.errors import InputError, UsageError
        from conveyor.components.example_gen.inputs import resolve_input

        p = self.parameters
        h = hashlib.sha256(super().fingerprint().encode())
        try:
            resolved = resolve_input(p["input_base"], p["input_config"], p["range_config"])
        except (InputError, UsageError) as e:
            h.update(f"error: {e}\n".encode())
        else:
            for line in resolved.cache_lines():
                h.update(line.encode() + b"\n")
        return h.hexdigest()

    def execute(self, ctx):
        from conveyor.components.example_gen.component import run_example_gen
        from conveyor.components.example_gen.inputs import (
            artifact_properties,
            make_readers,
            resolve_input,
            split_settings,
        )

        p = ctx.parameters
        resolved = resolve_input(p["input_base"], p["input_config"], p["range_config"])
        splits, hash_columns = split_settings(
            p["output_config"], p["splits"], p["hash_columns"], presplit=len(resolved.files) > 1
        )
        # Settings left None take ReadExamples' defaults (the missing values among them).
        settings = {k: p[k] for k in ("format", "schema", "missing_values") if p[k] is not None}
        summary = run_example_gen(
            make_readers(resolved, **settings),
            ctx.outputs["examples"].uri,
            splits=splits,
            hash_columns=hash_columns,
            beam_args=ctx.beam_args,
        )
        return {"examples": artifact_properties(resolved, summary)}
