"""Small real components for orchestration tests: they write and read files."""

import json
import os
import shutil
import time

from conveyor.dsl import REQUIRED, Component, InputSpec


class Produce(Component):
    """Writes ``n`` numbers and the time it ran; optional sleep first."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"n": 3, "sleep": 0.0, "module_file": None, "marker_dir": None}
    FILE_PARAMETERS = ("module_file",)

    def execute(self, ctx):
        began = time.time()
        if ctx.parameters["sleep"]:
            time.sleep(ctx.parameters["sleep"])
        with open(os.path.join(ctx.outputs["examples"].uri, "data.json"), "w") as f:
            json.dump(list(range(ctx.parameters["n"])), f)
        if ctx.parameters["marker_dir"]:
            os.makedirs(ctx.parameters["marker_dir"], exist_ok=True)
            with open(os.path.join(ctx.parameters["marker_dir"], self.id), "w") as f:
                json.dump([began, time.time()], f)
        return {"examples": {"split_names": '["train"]'}}


class Sum(Component):
    """Sums what Produce wrote."""

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"statistics": "ExampleStatistics"}
    PARAMETERS = {"fail": False}

    def execute(self, ctx):
        if ctx.parameters["fail"]:
            raise ValueError("the user's component broke on purpose")
        with open(os.path.join(ctx.inputs["examples"].uri, "data.json")) as f:
            total = sum(json.load(f))
        with open(os.path.join(ctx.outputs["statistics"].uri, "sum.json"), "w") as f:
            json.dump(total, f)


class Join(Component):
    """Needs two inputs."""

    INPUTS = {"a": InputSpec("ExampleStatistics"), "b": InputSpec("Examples", optional=True)}
    OUTPUTS = {"model": "Model"}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["model"].uri, "ok"), "w") as f:
            f.write("ok")


class CsvExamples(Component):
    """An Examples artifact from a CSV file, through ``run_example_gen`` (no ExampleGen node)."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"csv": REQUIRED, "splits": None, "schema": None}

    def execute(self, ctx):
        from conveyor.beam_utils.io import ReadExamples
        from conveyor.components.example_gen.component import run_example_gen

        summary = run_example_gen(
            {None: ReadExamples(ctx.parameters["csv"], schema=ctx.parameters["schema"])},
            ctx.outputs["examples"].uri,
            splits=ctx.parameters["splits"],
            beam_args=ctx.beam_args,
        )
        return {"examples": {"split_names": json.dumps(list(summary["splits"]))}}


class CopyModel(Component):
    """A Model artifact in TFX Trainer's layout: a SavedModel copied to ``<uri>/Format-Serving``."""

    OUTPUTS = {"model": "Model"}
    PARAMETERS = {"saved_model": REQUIRED}
    FILE_PARAMETERS = ("saved_model",)

    def execute(self, ctx):
        shutil.copytree(
            ctx.parameters["saved_model"], os.path.join(ctx.outputs["model"].uri, "Format-Serving")
        )


class Bless(Component):
    """A ModelBlessing artifact in TFX Evaluator's layout: an empty BLESSED or NOT_BLESSED file."""

    OUTPUTS = {"blessing": "ModelBlessing"}
    PARAMETERS = {"blessed": True}

    def execute(self, ctx):
        name = "BLESSED" if ctx.parameters["blessed"] else "NOT_BLESSED"
        open(os.path.join(ctx.outputs["blessing"].uri, name), "w").close()
        return {"blessing": {"blessed": int(bool(ctx.parameters["blessed"]))}}
