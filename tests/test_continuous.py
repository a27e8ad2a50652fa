"""The continuous-training loop end to end, three runs, real nodes (no TensorFlow training).

Each run: ``CsvExamples`` (an Examples artifact from a small CSV; cached after
run 1), ``TrainTiny`` (a Model holding a tiny SavedModel in ``Format-Serving``
whose quality is the ``noise`` RuntimeParameter), a ``Resolver`` with
``LatestBlessedModelStrategy`` giving the real ``Evaluator`` its
``baseline_model``, and the real ``Pusher`` under ``Cond(blessed == 1)``
pushing to a folder. The runs go through ``LocalDagRunner(in_process=True)``
with ``runtime_parameters``:

1. ``noise=0.3``: no baseline yet, blessed on the AUC value threshold alone
   (``validation.json`` lists the skipped change threshold), pushed;
2. ``noise=0.0`` (better): run 1's model is the baseline (the blessing's
   ``baseline_model_id``), blessed, pushed;
3. ``noise=1.0`` (worse: it predicts from the noise feature): not blessed, the
   Pusher SKIPPED (ML Metadata and ``conveyor run status`` say so).

The push folder then holds two versions, each a SavedModel TensorFlow loads.
"""

from __future__ import annotations

import json
import os

import numpy as np
from conftest import run_conveyor_in_process as run_cli
from orchestration_components import CsvExamples

from conveyor.components import Evaluator, Pusher
from conveyor.dsl import (
    Channel,
    Component,
    Cond,
    InputSpec,
    LatestBlessedModelStrategy,
    Pipeline,
    Resolver,
    RuntimeParameter,
    layout,
)
from conveyor.orchestration import LocalDagRunner, Metadata

NAME = "continuous"

#: The AUC must reach 0.7 (a value threshold) and not drop below the baseline's (a change
#: threshold, checked only when there is a baseline model).
EVAL_CONFIG = """
model_specs { name: "candidate" label_key: "label" }
model_specs { name: "baseline" label_key: "label" is_baseline: true }
slicing_specs {}
metrics_specs {
  metrics { class_name: "ExampleCount" }
  metrics { class_name: "AUC"
    threshold {
      value_threshold { lower_bound { value: 0.7 } }
      change_threshold { direction: HIGHER_IS_BETTER absolute { value: -1e-10 } }
    }
  }
}
"""


def save_tiny_model(path: str, noise: float) -> None:
    """A SavedModel predicting ``p = sigmoid(8 ((1 - noise) x + noise z - 0.5))`` from inputs x, z."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.noise = tf.Variable(noise, dtype=tf.float32, trainable=False)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 1], tf.float32, name="x"),
                tf.TensorSpec([None, 1], tf.float32, name="z"),
            ]
        )
        def serve(self, x, z):
            score = (1.0 - self.noise) * x + self.noise * z
            return {"p": tf.sigmoid(8.0 * (score - 0.5))}

    model = Tiny()
    tf.saved_model.save(model, path, signatures={"serving_default": model.serve})


class TrainTiny(Component):
    """A Model in TFX Trainer's layout (``<uri>/Format-Serving``), trained on nothing: ``noise``
    says how much of its prediction comes from ``z`` (noise) rather than ``x`` (the signal)."""

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"model": "Model"}
    PARAMETERS = {"noise": 0.0}

    def execute(self, ctx):
        noise = float(ctx.parameters["noise"])
        save_tiny_model(os.path.join(ctx.outputs["model"].uri, layout.SERVING_DIR), noise)
        return {"model": {"noise": noise}}


def write_csv(path) -> str:
    """400 rows: ``label`` is ``x`` (plus noise) above 0.5; ``z`` is unrelated to it."""
    rng = np.random.default_rng(18)
    x, z = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    label = (x + rng.normal(0, 0.15, 400) > 0.5).astype(int)
    lines = ["x,z,label"] + [f"{a:.4f},{b:.4f},{c}" for a, b, c in zip(x, z, label)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def continuous_pipeline(root: str, csv: str, serving: str) -> Pipeline:
    gen = CsvExamples(csv=csv, splits={"eval": 1})
    trainer = TrainTiny(
        examples=gen.outputs["examples"],
        noise=RuntimeParameter("noise", float, default=0.0, description="how bad the model is"),
    )
    baseline = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type="Model", producer_component_id="TrainTiny"),
        model_blessing=Channel(type="ModelBlessing"),
    ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
        examples=gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=EVAL_CONFIG,
    )
    with Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination={"filesystem": {"base_directory": serving}},
        )
    return Pipeline(NAME, root, [gen, trainer, baseline, evaluator, pusher])


def test_three_runs_of_the_continuous_training_loop(tmp_path, monkeypatch, capsys):
    import tensorflow as tf
    from ml_metadata.proto import metadata_store_pb2

    root, serving = str(tmp_path / "root"), str(tmp_path / "serving")
    csv = write_csv(tmp_path / "data.csv")
    pipeline = continuous_pipeline(root, csv, serving)
    md = Metadata(pipeline.metadata_path)

    def run(run_id, noise):
        result = LocalDagRunner(in_process=True, quiet=True).run(
            pipeline, run_id=run_id, runtime_parameters={"noise": noise}
        )
        states = {cid: s["state"] for cid, s in result["components"].items()}
        outputs = {cid: md.latest_outputs(NAME, run_id, cid) or {} for cid in result["components"]}
        evaluation = outputs["Evaluator"]["evaluation"].uri
        with open(os.path.join(evaluation, "validation.json")) as f:
            validation = json.load(f)
        return states, outputs, validation

    # Run 1: nothing blessed yet: no baseline, the change threshold skipped, blessed, pushed.
    states, out1, v = run("run-1", 0.3)
    assert states == {
        "CsvExamples": "COMPLETE",
        "TrainTiny": "COMPLETE",
        "latest_blessed_model_resolver": "COMPLETE",
        "Evaluator": "COMPLETE",
        "Pusher": "COMPLETE",
    }
    assert out1["latest_blessed_model_resolver"] == {}  # resolved nothing
    model1 = out1["TrainTiny"]["model"]
    blessing = out1["Evaluator"]["blessing"].properties
    assert blessing["blessed"] == 1 and blessing["current_model_id"] == model1.id
    assert "baseline_model_id" not in blessing
    assert v["blessed"] and v["failures"] == []
    assert v["skipped_change_thresholds"] == [
        {
            "metric": "auc",
            "threshold": {
                "change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -1e-10}
            },
            "reason": "no baseline model",
        }
    ]
    pushed1 = out1["Pusher"]["pushed_model"].properties
    assert pushed1["pushed"] == 1

    # Run 2 (better): run 1's model is the baseline; the change threshold is checked; pushed.
    states, out2, v = run("run-2", 0.0)
    assert states["CsvExamples"] == "CACHED"
    assert all(states[c] == "COMPLETE" for c in states if c != "CsvExamples"), states
    model2 = out2["TrainTiny"]["model"]
    assert model2.id != model1.id and model2.properties["noise"] == 0.0
    assert out2["latest_blessed_model_resolver"]["model"].id == model1.id
    blessing = out2["Evaluator"]["blessing"].properties
    assert blessing["blessed"] == 1
    assert blessing["baseline_model_id"] == model1.id
    assert blessing["current_model_id"] == model2.id
    assert v["blessed"] and v["skipped_change_thresholds"] == [] and v["failures"] == []
    pushed2 = out2["Pusher"]["pushed_model"].properties
    assert pushed2["pushed"] == 1 and pushed2["pushed_version"] != pushed1["pushed_version"]

    # Run 3 (worse): run 2's model is the baseline; not blessed; the Pusher is skipped.
    states, out3, v = run("run-3", 1.0)
    assert states["Pusher"] == "SKIPPED" and states["Evaluator"] == "COMPLETE"
    assert out3["latest_blessed_model_resolver"]["model"].id == model2.id
    blessing = out3["Evaluator"]["blessing"].properties
    assert blessing["blessed"] == 0 and blessing["baseline_model_id"] == model2.id
    assert not v["blessed"] and {f["metric"] for f in v["failures"]} == {"auc"}
    [auc] = v["failures"]  # below 0.7, and below the baseline's AUC
    assert auc["value"] < 0.7 and auc["value"] < auc["baseline_value"]
    assert out3["Pusher"] == {}
    [row] = [r for r in md.run_status(NAME, "run-3") if r["component_id"] == "Pusher"]
    assert row["state"] == "SKIPPED" and row["reason"].startswith("skipped: condition false")
    [execution] = [
        e
        for e in md.executions_of_run(NAME, "run-3")
        if e.properties["component_id"].string_value == "Pusher"
    ]
    assert execution.last_known_state == metadata_store_pb2.Execution.CANCELED  # no SKIPPED
    assert md.runtime_parameters(NAME, "run-3") == {"noise": 1.0}

    # conveyor run status shows it, for the pipeline registered from a file.
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    path = tmp_path / "continuous_pipeline.py"
    path.write_text(
        "from test_continuous import continuous_pipeline\n"
        f"pipeline = continuous_pipeline({root!r}, {csv!r}, {serving!r})\n"
    )
    assert run_cli("pipeline", "create", "--pipeline-path", path) == 0
    capsys.readouterr()
    assert run_cli("run", "status", "--pipeline-name", NAME, "--run-id", "run-3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"run run-3 of {NAME}: COMPLETE"
    assert "  runtime parameters: noise=1.0" in lines
    rows = {line.split()[0]: line.split()[1] for line in lines[1:] if "parameters:" not in line}
    assert rows == {
        "CsvExamples": "CACHED",
        "TrainTiny": "COMPLETE",
        "latest_blessed_model_resolver": "COMPLETE",
        "Evaluator": "COMPLETE",
        "Pusher": "SKIPPED",
    }
    [pusher_line] = [line for line in lines if line.split()[0] == "Pusher"]
    assert "skipped: condition false" in pusher_line

    # Two versions pushed (runs 1 and 2), in order, each a SavedModel that serves.
    versions = sorted((n for n in os.listdir(serving) if not n.startswith(".")), key=int)
    assert versions == [pushed1["pushed_version"], pushed2["pushed_version"]]
    assert pushed2["pushed_destination"] == os.path.join(serving, versions[1])
    x, z = tf.constant([[1.0]]), tf.constant([[0.0]])
    for version, noise in zip(versions, (0.3, 0.0)):
        loaded = tf.saved_model.load(os.path.join(serving, version))
        p = loaded.signatures["serving_default"](x=x, z=z)["p"].numpy()[0, 0]
        assert abs(p - 1 / (1 + np.exp(-8 * ((1 - noise) - 0.5)))) < 1e-5, (version, p)
