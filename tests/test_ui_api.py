"""``conveyor ui``'s JSON API and pages against a store with real runs.

The store: pipeline ``ui`` (Produce -> Sum -> Join, and Join reads Produce's examples too)
run by the LocalDagRunner in child processes (``run-ok``: complete, with logs;
``run-fail``: Sum fails on purpose), and in this process (``run-cached``: every
component cached). The pipeline is registered (``conveyor pipeline create``) so the UI
can start a run (``POST``) and cancel one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from orchestration_components import Join, Produce, Sum
from starlette.testclient import TestClient

from conveyor.dsl import Pipeline, RuntimeParameter
from conveyor.orchestration import LocalDagRunner, registry
from conveyor.orchestration.local_runner import PipelineRunError
from conveyor.orchestration.ui import create_app, graph, views
from conveyor.orchestration.ui.render import render_view

NAME = "ui"


def ui_pipeline(root: str) -> Pipeline:
    """Produce(n, sleep: runtime parameters) -> Sum(fail) -> Join(a=Sum, b=Produce)."""
    p = Produce(
        n=RuntimeParameter("n", int, default=3),
        sleep=RuntimeParameter("sleep", float, default=0.0),
    )
    s = Sum(examples=p.outputs["examples"], fail=RuntimeParameter("fail", bool, default=False))
    j = Join(a=s.outputs["statistics"], b=p.outputs["examples"])
    return Pipeline(NAME, str(root), [p, s, j])


@pytest.fixture(scope="module")
def ui_store(tmp_path_factory):
    """``(root, home)``: the pipeline's root with three runs, and the registry it is in."""
    base = tmp_path_factory.mktemp("ui")
    root, home = base / "root", base / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEYOR_HOME", str(home))
    pipeline = ui_pipeline(root)
    LocalDagRunner(quiet=True).run(pipeline, run_id="run-ok")
    with pytest.raises(PipelineRunError):
        LocalDagRunner(quiet=True).run(
            pipeline, run_id="run-fail", runtime_parameters={"fail": True}
        )
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="run-cached")
    path = base / "ui_pipeline.py"
    path.write_text(f"from test_ui_api import ui_pipeline\npipeline = ui_pipeline({str(root)!r})\n")
    registry.register(NAME, str(path), str(root), "local", update=False)
    yield root, home
    mp.undo()


@pytest.fixture()
def client(ui_store, monkeypatch):
    monkeypatch.setenv("CONVEYOR_HOME", str(ui_store[1]))
    return TestClient(create_app(csrf="the-csrf"))


def _runs(client) -> dict:
    return {r["run_id"]: r for r in client.get(f"/api/pipelines/{NAME}/runs").json()["runs"]}


def test_pipelines_and_runs(client):
    [p] = client.get("/api/pipelines").json()["pipelines"]
    assert p["name"] == NAME and p["engine"] == "local" and p["startable"]
    assert p["last_run"]["run_id"] == "run-cached" and p["last_run"]["state"] == "COMPLETE"
    runs = _runs(client)
    assert [r for r in runs][:3] == ["run-cached", "run-fail", "run-ok"]
    assert runs["run-ok"]["state"] == "COMPLETE" and runs["run-ok"]["components"] == {"COMPLETE": 3}
    assert runs["run-cached"]["components"] == {"CACHED": 3}
    assert runs["run-fail"]["state"] == "FAILED"
    assert runs["run-fail"]["components"]["FAILED"] == 1
    assert runs["run-fail"]["runtime_parameters"] == {"n": 3, "sleep": 0.0, "fail": True}
    assert runs["run-ok"]["duration_seconds"] > 0
    assert client.get("/api/pipelines/nope/runs").status_code == 404
    page = client.get(f"/api/pipelines/{NAME}/runs?limit=1&offset=1").json()
    assert page["has_more"] and [r["run_id"] for r in page["runs"]] == ["run-fail"]
    last = client.get(f"/api/pipelines/{NAME}/runs?limit=5&offset=2").json()
    assert not last["has_more"] and [r["run_id"] for r in last["runs"]] == ["run-ok"]
    assert client.get(f"/api/pipelines/{NAME}/runs?limit=0").status_code == 400


def test_run_components_edges_and_log(client):
    run = client.get("/api/runs/run-ok").json()
    assert run["pipeline"] == NAME and run["state"] == "COMPLETE"
    comps = {c["component_id"]: c for c in run["components"]}
    assert list(comps) == ["Produce", "Sum", "Join"]
    assert comps["Produce"]["parameters"]["n"] == 3
    assert comps["Sum"]["start_time"] <= comps["Sum"]["end_time"]
    [examples] = comps["Produce"]["outputs"]["examples"]
    assert examples["type"] == "Examples" and os.path.isdir(examples["uri"])
    assert comps["Sum"]["inputs"]["examples"][0]["id"] == examples["id"]
    edges = {(e["from"], e["to"], e["key"]) for e in run["edges"]}
    assert edges == {("Produce", "Sum", "examples"), ("Sum", "Join", "a"), ("Produce", "Join", "b")}
    log = client.get("/api/runs/run-ok/components/Sum/log").json()
    assert log["state"] == "COMPLETE" and log["log"]
    assert client.get("/api/runs/run-ok/components/Nope/log").status_code == 404
    assert client.get("/api/runs/no-such-run").status_code == 404


def test_failed_run_shows_its_error_first(client):
    run = client.get("/api/runs/run-fail").json()
    comps = {c["component_id"]: c for c in run["components"]}
    assert comps["Sum"]["state"] == "FAILED"
    assert "broke on purpose" in comps["Sum"]["error"]
    assert comps["Join"]["state"] in ("NOT_STARTED", "SKIPPED", "CANCELED")
    html = client.get(f"/pipelines/{NAME}/runs/run-fail/nodes/Sum").text
    assert html.index('<pre class="error">') < html.index("<h2>Inputs</h2>")
    assert "broke on purpose" in html
    page = client.get(f"/pipelines/{NAME}/runs/run-fail").text
    assert 'data-id="Sum" data-state="FAILED"' in page and graph.STATE_COLORS["FAILED"] in page


def test_cached_rerun_reuses_artifacts(client):
    ok = {c["component_id"]: c for c in client.get("/api/runs/run-ok").json()["components"]}
    cached = {c["component_id"]: c for c in client.get("/api/runs/run-cached").json()["components"]}
    assert all(c["cached"] and c["state"] == "CACHED" for c in cached.values())
    assert (
        cached["Sum"]["outputs"]["statistics"][0]["id"]
        == ok["Sum"]["outputs"]["statistics"][0]["id"]
    )


def test_artifact_and_lineage(client):
    run = client.get("/api/runs/run-ok").json()
    comps = {c["component_id"]: c for c in run["components"]}
    model = comps["Join"]["outputs"]["model"][0]["id"]
    examples = comps["Produce"]["outputs"]["examples"][0]["id"]
    a = client.get(f"/api/artifacts/{examples}").json()
    assert a["type"] == "Examples" and a["producer"]["component_id"] == "Produce"
    assert a["files"] == [{"path": "data.json", "bytes": len("[0, 1, 2]")}]
    page = client.get(f"/pipelines/{NAME}/artifacts/{examples}").text
    link = f"/files/{NAME}/Produce/examples/{a['producer']['execution_id']}/data.json"
    assert f'href="{link}"' in page and client.get(link).json() == [0, 1, 2]
    assert {c["component_id"] for c in a["consumers"]} >= {"Sum", "Join"}
    g = client.get(f"/api/artifacts/{model}/lineage").json()
    kinds = {n["id"]: n for n in g["nodes"]}
    upstream = {n["component_id"] for n in kinds.values() if n["kind"] == "execution"}
    assert upstream >= {"Produce", "Sum", "Join"}
    assert {
        "from": f"a{examples}",
        "to": f"e{comps['Sum']['execution_id']}",
        "key": "examples",
    } in g["edges"]
    down = client.get(f"/api/artifacts/{examples}/lineage").json()
    assert any(n.get("component_id") == "Join" for n in down["nodes"])  # what used it
    assert client.get("/api/artifacts/999999").status_code == 404
    assert client.get("/api/artifacts/abc").status_code == 400
    page = client.get(f"/pipelines/{NAME}/artifacts/{model}/lineage").text
    assert page.count('class="node"') == len(g["nodes"])


def test_pages_render(client):
    for path in ("/", f"/pipelines/{NAME}", f"/pipelines/{NAME}/runs/run-ok", "/static/ui.js"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    page = client.get(f"/pipelines/{NAME}/runs/run-ok").text
    assert page.count('class="node"') == 3 and page.count('class="edge"') == 3
    assert '<meta name="csrf-token" content="the-csrf">' in page
    assert "style=" not in page and "<script>" not in page  # nothing inline: the CSP allows none
    csp = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert 'http-equiv="refresh"' not in page  # not live
    assert client.get(f"/pipelines/{NAME}/runs/nope").status_code == 404


def test_compare_runs(client):
    c = client.get(f"/api/pipelines/{NAME}/compare?runs=run-ok,run-fail").json()
    assert [r["run_id"] for r in c["runs"]] == ["run-ok", "run-fail"]
    rows = {(r["section"], r["name"]): r for r in c["rows"]}
    fail = rows[("runtime_parameter", "fail")]
    assert fail["values"] == [False, True] and fail["differs"]
    assert rows[("parameter", "Produce.n")] == dict(
        rows[("parameter", "Produce.n")], values=[3, 3], differs=False
    )
    page = client.get(f"/pipelines/{NAME}/compare?runs=run-ok&runs=run-fail").text
    assert page.count("<tr class=bad>") == sum(r["differs"] for r in c["rows"]) >= 1
    assert client.get(f"/api/pipelines/{NAME}/compare?runs=run-ok").status_code == 400
    assert client.get(f"/api/pipelines/{NAME}/compare?runs=run-ok,nope").status_code == 404
    assert 'form="compare"' in client.get(f"/pipelines/{NAME}").text


def test_openapi_lists_every_route(client):
    spec = client.get("/api/openapi.json").json()
    app = client.app
    api_routes = {r.path for r in app.routes if r.path.startswith("/api/")}
    assert api_routes == set(spec["paths"])
    for required in (
        "/api/pipelines",
        "/api/pipelines/{name}/runs",
        "/api/runs/{run_id}",
        "/api/artifacts/{id}",
        "/api/artifacts/{id}/lineage",
        "/api/runs/{run_id}/cancel",
    ):
        assert required in spec["paths"]
    assert "post" in spec["paths"]["/api/pipelines/{name}/runs"]


def _wait(client, predicate, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        runs = _runs(client)
        found = [r for r in runs.values() if predicate(r)]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no such run within {timeout}s: {list(_runs(client).values())[:2]}")


def test_start_a_run_and_cancel_one(client):
    before = set(_runs(client))
    r = client.post(
        f"/api/pipelines/{NAME}/runs",
        json={"runtime_parameters": {"n": 5}},
        headers={"X-CSRF-Token": "the-csrf"},
    )
    assert r.status_code == 202, r.text
    started = _wait(client, lambda r: r["run_id"] not in before and r["state"] != "RUNNING")
    assert started["state"] == "COMPLETE", started
    assert started["runtime_parameters"]["n"] == 5
    # A slow one, canceled while Produce sleeps.
    before = set(_runs(client))
    r = client.post(
        f"/api/pipelines/{NAME}/runs",
        json={"runtime_parameters": {"sleep": 60, "n": 7}},
        headers={"X-CSRF-Token": "the-csrf"},
    )
    assert r.status_code == 202
    live = _wait(client, lambda r: r["run_id"] not in before and r["state"] == "RUNNING")
    assert 'http-equiv="refresh"' in client.get(f"/pipelines/{NAME}").text  # refreshes itself
    # Sum and Join have not run: their edges come from the earlier runs, the DAG is whole
    edges = {
        (e["from"], e["to"]) for e in client.get(f"/api/runs/{live['run_id']}").json()["edges"]
    }
    assert edges == {("Produce", "Sum"), ("Sum", "Join"), ("Produce", "Join")}
    node = client.get(f"/pipelines/{NAME}/runs/{live['run_id']}/nodes/Produce").text
    assert "data-log-url=" in node  # its log, followed while it runs
    c = client.post(f"/api/runs/{live['run_id']}/cancel", headers={"X-CSRF-Token": "the-csrf"})
    assert c.status_code == 202, c.text
    done = _wait(client, lambda r: r["run_id"] == live["run_id"] and r["state"] != "RUNNING", 60)
    assert done["state"] == "CANCELED"
    again = client.post(f"/api/runs/{live['run_id']}/cancel", headers={"X-CSRF-Token": "the-csrf"})
    assert again.status_code == 409 and "CANCELED" in again.json()["error"]


def test_bad_runtime_parameters(client):
    h = {"X-CSRF-Token": "the-csrf"}
    r = client.post(
        f"/api/pipelines/{NAME}/runs", json={"runtime_parameters": {"a b": 1}}, headers=h
    )
    assert r.status_code == 400 and "bad name" in r.json()["error"]
    r = client.post(f"/api/pipelines/{NAME}/runs", json={"runtime_parameters": [1]}, headers=h)
    assert r.status_code == 400 and "runtime_parameters" in r.json()["error"]


def test_statistics_schema_anomalies_views(tmp_path):
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    d = stats.datasets.add(num_examples=10)
    f = d.features.add(type=statistics_pb2.FeatureNameStatistics.INT)
    f.path.step.append("x")
    f.num_stats.common_stats.num_non_missing = 8
    f.num_stats.common_stats.num_missing = 2
    f.num_stats.mean, f.num_stats.num_zeros, f.num_stats.max = 1.5, 3, 4.0
    f.num_stats.histograms.add(type=statistics_pb2.Histogram.STANDARD).buckets.add(
        low_value=0, high_value=4, sample_count=8
    )
    g = d.features.add(type=statistics_pb2.FeatureNameStatistics.STRING)
    g.path.step.append("city")
    g.string_stats.common_stats.num_non_missing = 10
    g.string_stats.unique = 2
    g.string_stats.top_values.add(value="Oslo", frequency=7)
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-train" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    view = views.view_of("ExampleStatistics", str(tmp_path))
    x, city = view["splits"]["train"]["features"]
    assert x["feature"] == "x" and x["missing_pct"] == 20.0 and x["zeros"] == 3
    assert x["histogram"] == [[0.0, 4.0, 8.0]]
    assert city["unique"] == 2 and city["top_values"] == [["Oslo", 7.0]]
    html = render_view(view, NAME, None)
    assert "<h2>Split train · 10 examples</h2>" in html and "Oslo (7)" in html
    assert html.count('<svg class="hist"') == 1 and html.count("<tr><td>") == 2
    assert view["drift"] is None  # one split
    # a second split: x's mean moved by 2 stds, Oslo's share from 7/7 to 1/4
    f.num_stats.mean, f.num_stats.std_dev = 3.5, 1.0
    g.string_stats.top_values.add(value="Rome", frequency=3)
    g.string_stats.top_values[0].frequency = 1
    (tmp_path / "Split-eval").mkdir()
    (tmp_path / "Split-eval" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    d = views.view_of("ExampleStatistics", str(tmp_path))["drift"]
    assert d["between"] == ["eval", "train"]
    assert {r["feature"]: (r["measure"], r["value"]) for r in d["features"]} == {
        "x": ("mean_shift_in_std", 2.0),
        "city": ("l_infinity", 0.75),
    }
    shutil.rmtree(tmp_path / "Split-eval")

    schema = schema_pb2.Schema()
    schema.feature.add(name="x", type=schema_pb2.INT).presence.min_fraction = 1.0
    (tmp_path / "schema.pbtxt").write_text(str(schema))
    [row] = views.view_of("Schema", str(tmp_path))["features"]
    assert row == dict(row, feature="x", type="INT", presence="required")

    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["city"].short_description = "Unexpected string values"
    anomalies.anomaly_info["city"].severity = anomalies_pb2.AnomalyInfo.ERROR
    (tmp_path / "Split-train" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())
    [bad] = views.view_of("ExampleAnomalies", str(tmp_path))["splits"]["train"]["anomalies"]
    assert bad["feature"] == "city" and bad["severity"] == "ERROR"
    html = render_view(views.view_of("ExampleAnomalies", str(tmp_path)), NAME, None)
    assert '<tr class="bad"><td>city</td><td>ERROR</td><td>Unexpected string values' in html

    (tmp_path / "metrics.json").write_text(
        json.dumps(
            [{"slice": {}, "metrics": {"auc": 0.9}}, {"slice": {"c": "a"}, "metrics": {"auc": 0.6}}]
        )
    )
    (tmp_path / "validation.json").write_text(
        json.dumps({"blessed": False, "failures": [{"metric": "auc"}]})
    )
    ev = views.view_of("ModelEvaluation", str(tmp_path))
    assert [s["slice"] for s in ev["slices"]] == ["Overall", "c=a"]
    assert ev["validation"]["blessed"] is False
    html = render_view(ev, NAME, None)
    assert "<h2>Validation: NOT BLESSED</h2>" in html and 'data-v="0.6">0.6</td>' in html
    assert '<table class="sortable slices">' in html and '<tr class="bad"><td>auc</td>' in html
    (tmp_path / "summary.json").write_text("{half")  # half-written: no view, no crash
    assert views.view_of("Examples", str(tmp_path))["summary"] is None


def test_examples_view_samples_rows(tmp_path):
    from conveyor.beam_utils.tfrecord_io import write_records

    x_is_5 = b"\n\x0c\n\n\n\x01x\x12\x05\x1a\x03\n\x01\x05"  # a tf.Example {x: [5]}
    (tmp_path / "Split-train").mkdir()
    write_records(str(tmp_path / "Split-train" / "data_tfrecord-00000-of-00001.gz"), [x_is_5] * 12)
    (tmp_path / "summary.json").write_text(
        json.dumps({"splits": {"train": 12}, "features": {"x": "INT"}})
    )
    view = views.view_of("Examples", str(tmp_path))
    assert view["sample"] == {"train": [{"x": 5}] * views.SAMPLE_ROWS}
    html = render_view(view, NAME, None)
    assert "<h2>First rows of train</h2>" in html and html.count('data-v="5">5</td>') == 10


def test_importing_and_creating_the_app_pulls_no_tensorflow_or_beam(ui_store):
    code = (
        "import sys\n"
        "from conveyor.orchestration.ui import cli, create_app\n"
        "from starlette.testclient import TestClient\n"
        f"c = TestClient(create_app(roots=[{str(ui_store[0])!r}]))\n"
        "assert c.get('/api/runs/run-ok').status_code == 200\n"
        "assert c.get('/pipelines/ui/runs/run-ok').status_code == 200\n"
        "for a in range(1, 4):  # artifact views (examples, statistics) read without TF either\n"
        "    assert c.get(f'/pipelines/ui/artifacts/{a}').status_code == 200\n"
        "import conveyor.beam_utils.example_parsing, conveyor.beam_utils.tfrecord_io  # rows\n"
        "import tensorflow_metadata.proto.v0.statistics_pb2  # the statistics view\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'apache_beam')]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_real_server(ui_store, tmp_path):
    """``conveyor ui --home H --port 0`` listens on 127.0.0.1, answers, and stops on SIGTERM (shutting
    down cleanly, then exiting 128 + SIGTERM as every conveyor command a signal stops)."""
    import http.client

    env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_HOME"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.orchestration.cli", "ui", "--port", "0"]
        + ["--home", str(ui_store[1])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("conveyor ui: http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1].strip().strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/pipelines")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["pipelines"][0]["name"] == NAME
        conn.request(
            "GET", "/files/ui/../../home/pipelines/ui.json"
        )  # not normalized by the client
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM


def test_reads_while_a_runner_writes(tmp_path, monkeypatch):
    """Runs written in another thread (the store's lock file, as another process takes it) while
    the API reads: every answer is 200, no "database is locked", no run shown half-written."""
    import threading

    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    root = tmp_path / "root"
    pipeline = ui_pipeline(root)
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="w-0")
    errors = []

    def write():
        try:
            for i in range(1, 6):
                LocalDagRunner(in_process=True, quiet=True).run(
                    pipeline, run_id=f"w-{i}", enable_cache=False
                )
        except Exception as e:  # reported below
            errors.append(e)

    writer = threading.Thread(target=write)
    client = TestClient(create_app(roots=[str(root)]))
    writer.start()
    seen = set()
    while writer.is_alive():
        r = client.get(f"/api/pipelines/{NAME}/runs")
        assert r.status_code == 200, r.text
        for run in r.json()["runs"]:
            seen.add(run["run_id"])
            assert run["state"] in ("RUNNING", "COMPLETE"), run
            d = client.get(f"/api/runs/{run['run_id']}?pipeline={NAME}")
            assert d.status_code == 200 and d.json()["state"] in ("RUNNING", "COMPLETE")
    writer.join()
    assert not errors
    assert {f"w-{i}" for i in range(6)} == {r["run_id"] for r in _runs(client).values()}
    assert len(seen) >= 2


def test_bad_request_bodies(client):
    h = {"X-CSRF-Token": "the-csrf"}
    r = client.post(f"/api/pipelines/{NAME}/runs", content=b"n=3", headers=h)
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = client.post(f"/api/pipelines/{NAME}/runs", json=[1], headers=h)
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
