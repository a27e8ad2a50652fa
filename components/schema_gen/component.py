"""``run_schema_gen``: statistics in, a schema out (the step of SchemaGen and ``conveyor schema``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from conveyor.dsl import layout


def run_schema_gen(
    statistics: str | Mapping[str, str],
    output_dir: str | None,
    options=None,
    *,
    split: str = "train",
    schema_file: str | None = None,
    beam_args: Sequence[str] | None = None,
) -> dict:
    """Infers a schema from statistics and writes it; returns the summary.

    Args:
      statistics: the statistics to infer from: the path of a ``FeatureStats.pb``
        (text format if the name ends in ``.pbtxt``), or ``{split: path}`` (a
        StatisticsGen artifact, ``layout.split_files(uri, layout.STATS_FILE)``),
        of which ``split`` is read.
      output_dir: the Schema artifact's directory; the schema is written to
        ``layout.schema_path(output_dir)`` (``schema.pbtxt``, TFX's layout).
      options: :class:`InferOptions` (TFDV's defaults when omitted).
      split: the split of a ``{split: path}`` mapping to infer from (TFX's
        SchemaGen reads ``train``).
      schema_file: write the schema to this file instead of into
        ``output_dir`` (text format; binary if the name ends in ``.pb``).
      beam_args: Beam flags, taken as by every ``run_*``. Statistics are one
        small proto, so no pipeline is built and they are not used.

    Returns:
      ``{"schema": Schema, "schema_file": the path written, "split": the split
      read (None for a path), "features", "always_present", "with_domain":
      counts of the schema's features}``. A Schema artifact holds its
      ``schema.pbtxt`` alone (as TFX's), so the summary is not written.

    Raises:
      InputError: the statistics cannot be read (naming the file).
      ValueError: the mapping has no ``split``, or the statistics no dataset
        named ``options.dataset``.
    """
    from conveyor.beam_utils.proto_io import read_statistics, write_schema
    from conveyor.components.schema_gen.schema_inference import InferOptions, infer_schema

    del beam_args  # no pipeline: see the docstring
    if schema_file is None and output_dir is None:
        raise ValueError("run_schema_gen: give output_dir or schema_file")
    path, read_split = statistics, None
    if isinstance(statistics, Mapping):
        if split not in statistics:
            raise ValueError(
                f"SchemaGen: no statistics for split {split!r} (splits: {sorted(statistics)})"
            )
        path, read_split = statistics[split], split
    schema = infer_schema(read_statistics(path), options or InferOptions())
    target = schema_file if schema_file is not None else layout.schema_path(output_dir)
    write_schema(schema, target)
    return {
        "schema": schema,
        "schema_file": target,
        "split": read_split,
        "features": len(schema.feature),
        "always_present": sum(1 for f in schema.feature if f.presence.min_fraction >= 1),
        "with_domain": sum(1 for f in schema.feature if f.WhichOneof("domain_info")),
    }
