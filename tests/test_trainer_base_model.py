"""Trainer's ``base_model`` input (TFX's warm start): ``fn_args.base_model`` is the serving folder
of the model a Resolver found, None when it found none (a pipeline's first run).

The run_fn here trains nothing: it saves a SavedModel whose ``generation`` variable is one more
than its base model's (0 without one), so a model shows how many warm starts it came from, and
records the ``fn_args.base_model`` it got.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_conveyor_in_process as run_cli
from orchestration_components import CsvExamples
from test_continuous import write_csv

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import read_examples_dir
from conveyor.components import Trainer
from conveyor.components.trainer import run_trainer
from conveyor.dsl import Channel, LatestArtifactStrategy, Pipeline, Resolver, layout
from conveyor.orchestration import LocalDagRunner, Metadata

NAME = "warm_start"

RUN_FN = """
import json
import os

import tensorflow as tf


def run_fn(fn_args):
    start = 0.0
    if fn_args.base_model:
        start = float(tf.saved_model.load(fn_args.base_model).generation.numpy())

    class Generation(tf.Module):
        def __init__(self):
            super().__init__()
            self.generation = tf.Variable(start + 1.0, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            return {"generation": tf.fill(tf.shape(examples), self.generation)}

    model = Generation()
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures={"serving_default": model.serve})
    with open(os.path.join(fn_args.model_run_dir, "fn_args.json"), "w") as f:
        json.dump({"base_model": fn_args.base_model}, f)
    return {"generation": start + 1.0}
"""


def generation(model_dir: str) -> float:
    """The ``generation`` of a SavedModel this module's run_fn saved."""
    import tensorflow as tf

    return float(tf.saved_model.load(model_dir).generation.numpy())


@pytest.fixture(scope="module")
def module_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("module") / "warm_start_module.py"
    path.write_text(RUN_FN)
    return str(path)


def warm_start_pipeline(root: str, csv: str, module_file: str) -> Pipeline:
    """ExampleGen-like examples, the latest model of the Trainer (a Resolver), the Trainer."""
    gen = CsvExamples(csv=csv, splits={"train": 2, "eval": 1})
    latest = Resolver(
        strategy_class=LatestArtifactStrategy,
        model=Channel(type="Model", producer_component_id="Trainer"),
    ).with_id("latest_model_resolver")
    trainer = Trainer(
        module_file=module_file,
        examples=gen.outputs["examples"],
        base_model=latest.outputs["model"],
    )
    return Pipeline(NAME, root, [gen, latest, trainer])


def test_a_resolved_base_model_reaches_fn_args_from_the_second_run(tmp_path, module_file):
    pipeline = warm_start_pipeline(
        str(tmp_path / "root"), write_csv(tmp_path / "data.csv"), module_file
    )
    md = Metadata(pipeline.metadata_path)

    def run(run_id):
        result = LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id=run_id)
        states = {cid: s["state"] for cid, s in result["components"].items()}
        outputs = {cid: md.latest_outputs(NAME, run_id, cid) or {} for cid in states}
        with open(os.path.join(outputs["Trainer"]["model_run"].uri, "fn_args.json")) as f:
            got = json.load(f)["base_model"]
        return states, outputs, got

    # Run 1: the resolver finds no model: the input is left out, fn_args.base_model is None.
    states, out1, base = run("run-1")
    assert states == {c: "COMPLETE" for c in ("CsvExamples", "latest_model_resolver", "Trainer")}
    assert out1["latest_model_resolver"] == {} and base is None
    model1 = out1["Trainer"]["model"]
    assert generation(layout.serving_model_dir(model1.uri)) == 1.0
    with open(os.path.join(out1["Trainer"]["model_run"].uri, "trainer_summary.json")) as f:
        assert "base_model" not in json.load(f)

    # Run 2: run 1's model is the base: its Format-Serving folder. Same examples, same module,
    # so only the base model in the cache key makes the Trainer run again rather than be CACHED.
    states, out2, base = run("run-2")
    assert states == {
        "CsvExamples": "CACHED",
        "latest_model_resolver": "COMPLETE",
        "Trainer": "COMPLETE",
    }
    assert out2["latest_model_resolver"]["model"].id == model1.id
    assert base == os.path.join(model1.uri, layout.SERVING_DIR)
    model2 = out2["Trainer"]["model"]
    assert model2.id != model1.id
    assert generation(layout.serving_model_dir(model2.uri)) == 2.0
    with open(os.path.join(out2["Trainer"]["model_run"].uri, "trainer_summary.json")) as f:
        summary = json.load(f)
    assert summary["base_model"] == base and summary["run_fn_result"] == {"generation": 2.0}

    # Run 3 warm-starts from run 2's model, not run 1's.
    states, out3, base = run("run-3")
    assert states["Trainer"] == "COMPLETE"
    assert base == os.path.join(model2.uri, layout.SERVING_DIR)
    assert generation(base) == 2.0
    assert generation(layout.serving_model_dir(out3["Trainer"]["model"].uri)) == 3.0

    # conveyor train --base-model takes a Model folder (its Format-Serving) and says so.
    examples = out1["CsvExamples"]["examples"].uri
    output = tmp_path / "train"
    argv = ["train", "--examples", examples, "--module-file", module_file]
    assert run_cli(*argv, "--output", output, "--base-model", model2.uri) == 0
    assert generation(str(output / "model" / layout.SERVING_DIR)) == 3.0
    with open(output / "model_run" / "fn_args.json") as f:
        assert json.load(f)["base_model"] == os.path.join(model2.uri, layout.SERVING_DIR)


def test_a_base_model_without_a_saved_model_is_an_input_error(tmp_path, module_file):
    csv = write_csv(tmp_path / "data.csv")
    gen = CsvExamples(csv=csv, splits={"train": 2, "eval": 1})
    pipeline = Pipeline("examples_only", str(tmp_path / "root"), [gen])
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="r")
    md = Metadata(pipeline.metadata_path)
    examples = md.latest_outputs("examples_only", "r", "CsvExamples")["examples"]

    reads = {s: read_examples_dir(examples.uri, s) for s in ("train", "eval")}
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(InputError, match=r"base_model .*empty_model: no SavedModel there"):
        run_trainer(reads, str(tmp_path / "model"), module_file, base_model=str(empty))
    assert not (tmp_path / "model").exists()  # checked before run_fn ran
