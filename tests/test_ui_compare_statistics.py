"""Comparing two runs shows their statistics split by split, with the drift between them."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from conveyor.dsl import Component, Pipeline, RuntimeParameter, layout
from conveyor.orchestration import LocalDagRunner
from conveyor.orchestration.ui import create_app

NAME = "statscmp"


class Stats(Component):
    """Statistics of one float feature ``fare`` (mean ``mean``, std 1) in split train."""

    OUTPUTS = {"statistics": "ExampleStatistics"}
    PARAMETERS = {"mean": 0.0}

    def execute(self, ctx):
        from tensorflow_metadata.proto.v0 import statistics_pb2

        stats = statistics_pb2.DatasetFeatureStatisticsList()
        d = stats.datasets.add(num_examples=20)
        f = d.features.add(type=statistics_pb2.FeatureNameStatistics.FLOAT)
        f.path.step.append("fare")
        f.num_stats.common_stats.num_non_missing = 20
        f.num_stats.mean, f.num_stats.std_dev = ctx.parameters["mean"], 1.0
        out = layout.split_uri(ctx.outputs["statistics"].uri, "train")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, layout.STATS_FILE), "wb") as fh:
            fh.write(stats.SerializeToString())
        return {"statistics": {"split_names": '["train"]'}}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("statscmp") / "root"
    stats = Stats(mean=RuntimeParameter("mean", float, default=1.0))
    pipeline = Pipeline(NAME, str(root), [stats])
    runner = LocalDagRunner(in_process=True, quiet=True)
    runner.run(pipeline, run_id="run-a")
    runner.run(pipeline, run_id="run-b", runtime_parameters={"mean": 3.5})
    return TestClient(create_app(roots=[str(root)]))


def test_compare_api_has_the_drift_between_the_runs_statistics(client):
    body = client.get(f"/api/pipelines/{NAME}/compare?runs=run-a,run-b").json()
    [entry] = body["statistics"]
    assert entry["output"] == "Stats.statistics" and entry["split"] == "train"
    assert len(set(entry["artifacts"])) == 2
    view = entry["view"]
    assert list(view["splits"]) == ["train @ run-a", "train @ run-b"]
    assert [f["mean"] for s in view["splits"].values() for f in s["features"]] == [1.0, 3.5]
    assert view["drift"]["features"] == [
        {"feature": "fare", "measure": "mean_shift_in_std", "value": 2.5}
    ]


def test_compare_page_shows_both_tables_and_the_drift(client):
    page = client.get(f"/pipelines/{NAME}/compare?runs=run-a&runs=run-b").text
    assert "<h2>Split train @ run-a · 20 examples</h2>" in page
    assert "<h2>Split train @ run-b · 20 examples</h2>" in page
    assert "<h2>Drift between train @ run-a and train @ run-b</h2>" in page
    assert 'data-v="2.5">2.5</td>' in page
    assert page.count("/artifacts/") >= 2  # both statistics artifacts linked
