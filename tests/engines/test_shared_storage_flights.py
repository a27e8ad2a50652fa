"""The flights template with its root on S3 (s3proxy on loopback), every component in turn.

ExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Evaluator, BulkInferrer read and write
``s3://`` through Beam; Transform and Trainer (SavedModels: TensorFlow 2.16 has no S3 without
tensorflow-io) run on local disk, their inputs copied down and outputs published up with the
completion marker; Evaluator, InfraValidator, Pusher and BulkInferrer copy down the model.
The spans are written by the template on a local root (writing them on the store is
``test_shared_storage.py``'s), so ExampleGen reads them from local disk; the Pusher pushes to
a local serving folder.
"""

from __future__ import annotations

import os
import sys


def test_flights_template_with_its_root_on_s3(s3, tmp_path):
    from conveyor.beam_utils import publish
    from conveyor.dsl import Pipeline
    from conveyor.orchestration.launcher import run_component
    from conveyor.orchestration.metadata import sqlite_config
    from conveyor.orchestration.templates.flights import pipeline as template

    sys.path.insert(0, template.HERE)  # its module file, as the loader does for a pipeline file
    local = template.create_pipeline(root=str(tmp_path / "local"), rows=1500, epochs=1, spans=1)
    root = "s3://conveyor/flights"
    pipeline = Pipeline(
        "flights",
        root,
        local.components,
        beam_pipeline_args=s3["flags"],
        metadata_connection_config=sqlite_config(str(tmp_path / "metadata.sqlite")),
    )
    states = {}
    for component in pipeline.components:
        status = run_component(pipeline, component.id, "r1", log=None)
        states[component.id] = status
    assert {k: v["state"] for k, v in states.items()} == {
        "ExampleGen": "COMPLETE",
        "StatisticsGen": "COMPLETE",
        "SchemaGen": "COMPLETE",
        "ExampleValidator": "COMPLETE",
        "span_range_resolver": "COMPLETE",
        "Transform": "COMPLETE",
        "Trainer": "COMPLETE",
        "latest_blessed_model_resolver": "COMPLETE",
        "Evaluator": "COMPLETE",
        "InfraValidator": "COMPLETE",
        # The first model of 1,500 flights and one epoch: pushed only if the Evaluator blessed it.
        "Pusher": states["Pusher"]["state"],
        "BulkInferrer": states["BulkInferrer"]["state"],
    }
    # Both need a blessed model (the Evaluator's verdict on a small model may go either way).
    assert {states["Pusher"]["state"], states["BulkInferrer"]["state"]} <= {"COMPLETE", "SKIPPED"}
    published = [
        uri
        for s in states.values()
        if s["state"] == "COMPLETE"
        for uri in s["outputs"].values()
        if uri.startswith(root + "/")
    ]
    assert len(published) >= 12 and all(publish.is_complete(u) for u in published)
    files = set(publish.list_files(root))
    assert not [f for f in files if "/." in f and not f.endswith(publish.MARKER)]  # no staging
    model = states["Trainer"]["outputs"]["model"]
    assert f"{model}/Format-Serving/saved_model.pb" in files  # staged locally, published up
    graph = states["Transform"]["outputs"]["transform_graph"]
    assert any(f.startswith(f"{graph}/transform_fn/") for f in files)
    blessing = states["Evaluator"]["outputs"]["blessing"]
    assert {f"{blessing}/BLESSED", f"{blessing}/NOT_BLESSED"} & files
    if states["BulkInferrer"]["state"] == "COMPLETE":
        inferred = states["BulkInferrer"]["outputs"]["inference_result"]
        assert [f for f in files if f.startswith(inferred + "/")]
    if states["Pusher"]["state"] == "COMPLETE":
        assert os.listdir(template.serving_folder(str(tmp_path / "local")))
