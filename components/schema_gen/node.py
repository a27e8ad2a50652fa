"""SchemaGen and ImportSchemaGen as pipeline components.

Artifacts follow TFX's layout: statistics are ``<uri>/Split-<name>/FeatureStats.pb``,
a schema is ``<uri>/schema.pbtxt``.
"""

from __future__ import annotations

import shutil

from conveyor.dsl import REQUIRED, Component, InputSpec, layout
from conveyor.dsl.layout import STATS_FILE


class SchemaGen(Component):
    """Infers a schema from the statistics of one split (``train`` by default).

    Example::

        schema_gen = SchemaGen(statistics=stats_gen.outputs["statistics"])
    """

    INPUTS = {"statistics": InputSpec("ExampleStatistics")}
    OUTPUTS = {"schema": "Schema"}
    PARAMETERS = {"split": "train", "infer_feature_shape": True, "max_string_domain_size": None}

    def execute(self, ctx):
        """Runs :func:`run_schema_gen` on the statistics' ``split``."""
        from conveyor.components.schema_gen.component import run_schema_gen
        from conveyor.components.schema_gen.schema_inference import InferOptions

        p = ctx.parameters
        paths = layout.split_files(ctx.inputs["statistics"].uri, STATS_FILE)
        kwargs = {"infer_feature_shape": p["infer_feature_shape"]}
        if p["max_string_domain_size"] is not None:
            kwargs["max_string_domain_size"] = p["max_string_domain_size"]
        summary = run_schema_gen(
            paths, ctx.outputs["schema"].uri, InferOptions(**kwargs), split=p["split"]
        )
        return {"schema": {"features": summary["features"]}}


class ImportSchemaGen(Component):
    """Brings a curated ``schema.pbtxt`` into the pipeline (its contents are in the cache key).

    Example::

        schema_gen = ImportSchemaGen(schema_file="schema/schema.pbtxt")
    """

    OUTPUTS = {"schema": "Schema"}
    PARAMETERS = {"schema_file": REQUIRED}
    FILE_PARAMETERS = ("schema_file",)

    def execute(self, ctx):
        """Checks that the file parses, then copies it into the Schema artifact."""
        from conveyor.beam_utils.proto_io import read_schema

        path = ctx.parameters["schema_file"]
        read_schema(path)  # fails here, naming the file, if it does not parse
        shutil.copyfile(path, layout.schema_path(ctx.outputs["schema"].uri))
