"""ExampleValidator as a pipeline component.

Artifacts follow TFX's layout: statistics are ``<uri>/Split-<name>/FeatureStats.pb``,
a schema is ``<uri>/schema.pbtxt``, anomalies are ``<uri>/Split-<name>/SchemaDiff.pb``.
"""

from __future__ import annotations

import json
import os

from conveyor.dsl import Component, InputSpec, layout
from conveyor.dsl.layout import ANOMALIES_FILE, ANOMALIES_REPORT_FILE, STATS_FILE


class ExampleValidator(Component):
    """Validates each split's statistics against the schema; writes ``Split-<name>/SchemaDiff.pb``.

    With ``drift_baseline_split`` set (e.g. ``"train"``), the other splits are
    also compared with it using the schema's drift comparators. With
    ``fail_on_error``, an ERROR anomaly fails the component (a gate).
    """

    INPUTS = {"statistics": InputSpec("ExampleStatistics"), "schema": InputSpec("Schema")}
    OUTPUTS = {"anomalies": "ExampleAnomalies"}
    PARAMETERS = {"drift_baseline_split": None, "environment": None, "fail_on_error": False}

    def execute(self, ctx):
        from conveyor.components.validation import (
            anomalies_report,
            has_errors,
            read_schema,
            read_statistics,
            validate_statistics,
            write_anomalies,
        )

        schema = read_schema(layout.schema_path(ctx.inputs["schema"].uri))
        paths = layout.split_files(ctx.inputs["statistics"].uri, STATS_FILE)
        p = ctx.parameters
        baseline = read_statistics(paths[p["drift_baseline_split"]]) if p["drift_baseline_split"] else None
        summary = {}
        for split, path in paths.items():
            previous = baseline if split != p["drift_baseline_split"] else None
            anomalies = validate_statistics(read_statistics(path), schema, environment=p["environment"],
                                            previous_statistics=previous)
            out = layout.split_uri(ctx.outputs["anomalies"].uri, split)
            os.makedirs(out, exist_ok=True)
            write_anomalies(anomalies, os.path.join(out, ANOMALIES_FILE))
            report = anomalies_report(anomalies)
            with open(os.path.join(out, ANOMALIES_REPORT_FILE), "w") as f:
                f.write(report)
            summary[split] = {"errors": has_errors(anomalies), "features": sorted(anomalies.anomaly_info)}
        if p["fail_on_error"] and any(s["errors"] for s in summary.values()):
            bad = {k: v["features"] for k, v in summary.items() if v["errors"]}
            raise ValueError(f"ERROR anomalies in {bad}; see {ctx.outputs['anomalies'].uri}/Split-*/report.txt")
        return {"anomalies": {"split_names": json.dumps(sorted(paths)),
                              "blocking": json.dumps(any(s["errors"] for s in summary.values()))}}
