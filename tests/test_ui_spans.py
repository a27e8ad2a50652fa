"""The runs page and API show the spans each run ingested (its ExampleGen's Examples)."""

from __future__ import annotations

import os
import re

import pytest
from starlette.testclient import TestClient

from conveyor.dsl import Component, InputSpec, Pipeline, RuntimeParameter
from conveyor.orchestration import LocalDagRunner
from conveyor.orchestration.ui import create_app

NAME = "spans"


class SpanGen(Component):
    """Ingests one span: an Examples artifact with its ``span`` property."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"span": 0}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["examples"].uri, "data.txt"), "w") as f:
            f.write(str(ctx.parameters["span"]))
        return {"examples": {"span": ctx.parameters["span"], "split_names": '["train"]'}}


class Rewrite(Component):
    """Examples in, Examples out (as Transform): its output's span is not an input span."""

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"transformed_examples": "Examples"}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["transformed_examples"].uri, "data.txt"), "w") as f:
            f.write("rewritten")
        return {"transformed_examples": {"span": 99}}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans") / "root"
    gen = SpanGen(span=RuntimeParameter("span", int, default=1))
    pipeline = Pipeline(NAME, str(root), [gen, Rewrite(examples=gen.outputs["examples"])])
    runner = LocalDagRunner(in_process=True, quiet=True)
    runner.run(pipeline, run_id="run-1")
    runner.run(pipeline, run_id="run-2", runtime_parameters={"span": 2})
    return TestClient(create_app(roots=[str(root)]))


def test_runs_api_lists_each_runs_ingested_spans(client):
    runs = client.get(f"/api/pipelines/{NAME}/runs").json()["runs"]
    assert [(r["run_id"], r["spans"]) for r in runs] == [("run-2", [2]), ("run-1", [1])]


def test_runs_page_has_a_spans_column(client):
    page = client.get(f"/pipelines/{NAME}").text
    assert "<th>Spans</th>" in page
    cells = dict(re.findall(r'runs/(run-\d)">.*?<td class=spans>([^<]*)</td>', page))
    assert cells == {"run-1": "1", "run-2": "2"}
    assert "99" not in re.findall(r"<td class=spans>([^<]*)</td>", page)
