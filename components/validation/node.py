"""ExampleValidator as a pipeline component.

Artifacts follow TFX's layout: statistics are ``<uri>/Split-<name>/FeatureStats.pb``,
a schema is ``<uri>/schema.pbtxt``, anomalies are ``<uri>/Split-<name>/SchemaDiff.pb``.
"""

from __future__ import annotations

import json

from conveyor.dsl import Component, InputSpec, layout
from conveyor.dsl.layout import ANOMALIES_REPORT_FILE, SPLIT_PREFIX, STATS_FILE


class ExampleValidator(Component):
    """Validates each split's statistics against the schema; writes ``Split-<name>/SchemaDiff.pb``.

    With ``drift_baseline_split`` set (e.g. ``"train"``), the other splits are
    also compared with it using the schema's drift comparators. With
    ``fail_on_error``, an ERROR anomaly fails the component (a gate).

    Example::

        validator = ExampleValidator(statistics=stats_gen.outputs["statistics"],
                                     schema=schema_gen.outputs["schema"])
    """

    INPUTS = {"statistics": InputSpec("ExampleStatistics"), "schema": InputSpec("Schema")}
    OUTPUTS = {"anomalies": "ExampleAnomalies"}
    PARAMETERS = {"drift_baseline_split": None, "environment": None, "fail_on_error": False}

    def execute(self, ctx):
        """Runs :func:`run_validation` over every split; fails on ERROR anomalies with ``fail_on_error``."""
        from conveyor.beam_utils.proto_io import read_schema
        from conveyor.components.validation.component import run_validation
        from conveyor.components.validation.validate import ValidationOptions

        p = ctx.parameters
        schema = read_schema(layout.schema_path(ctx.inputs["schema"].uri))
        paths = layout.split_files(ctx.inputs["statistics"].uri, STATS_FILE)
        out = ctx.outputs["anomalies"].uri
        result = run_validation(
            paths,
            schema,
            out,
            ValidationOptions(environment=p["environment"]),
            baseline_split=p["drift_baseline_split"] or None,
        )
        splits = result["splits"]
        if p["fail_on_error"] and result["errors"]:
            bad = {k: v["features"] for k, v in splits.items() if v["errors"]}
            raise ValueError(
                f"ERROR anomalies in {bad}; see {out}/{SPLIT_PREFIX}*/{ANOMALIES_REPORT_FILE}"
            )
        return {
            "anomalies": {
                "split_names": json.dumps(sorted(paths)),
                "blocking": json.dumps(result["errors"]),
            }
        }
