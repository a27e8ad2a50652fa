"""Small real components for orchestration tests: they write and read files."""

import json
import os
import time

from conveyor.orchestration.dsl import Component, InputSpec


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
