"""Schema generation: a first tensorflow-metadata ``Schema`` inferred from statistics.

* :func:`infer_schema` (with :class:`InferOptions`): statistics -> a ``Schema``
  a person curates, by TFDV's rules (the same schema as ``tfdv.infer_schema``
  from the same statistics);
* :class:`InferSchema`: the same as a Beam PTransform, over a PCollection of
  statistics (with ``GenerateStatistics`` in one pipeline, or per window);
* :func:`run_schema_gen`: a ``FeatureStats.pb`` (or a StatisticsGen artifact's
  ``{split: path}``) in, ``schema.pbtxt`` out: the step of the ``SchemaGen``
  node and of ``conveyor schema``. ``ImportSchemaGen`` brings a curated schema
  file into a pipeline.

Example::

    from conveyor.beam_utils.proto_io import read_statistics
    from conveyor.components.schema_gen import InferOptions, infer_schema, run_schema_gen

    schema = infer_schema(read_statistics("stats/Split-train/FeatureStats.pb"),
                          InferOptions(max_string_domain_size=20))
    run_schema_gen("stats/Split-train/FeatureStats.pb", "out/schema")  # out/schema/schema.pbtxt

Names are imported on first use, so the CLI can load its modules without Beam.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "InferOptions": "schema_inference",
    "infer_schema": "schema_inference",
    "InferSchema": "transform",
    "run_schema_gen": "component",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
