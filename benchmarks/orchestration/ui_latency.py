"""Benchmark: ``conveyor ui`` page and API latency on a store of many runs.

Issue 20 asks for under 200 ms (median and p95 reported) for the runs page and a run
page on a store holding 1,000 runs of an 8-component pipeline. The store is SQLite,
written here through ``conveyor.orchestration.Metadata``'s own methods, as the
launcher records runs (``start_run``, ``start_execution`` with the input events,
``finish_execution`` with the outputs, ``finish_run``): per run 8 components
(ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator, Transform -> Trainer
-> Evaluator -> Pusher), one output artifact each, one run in ten FAILED at the
Trainer (the rest of the run NOT_STARTED), the newest run left RUNNING (its runner is
this process: it reads as live while the store is measured right after it is built).

Each route is requested ``--repeats`` times (after one warm-up) through Starlette's
TestClient: the whole ASGI app in process (routing, guards, ML Metadata reads,
rendering), without the socket.

Usage::

    .venv/bin/python benchmarks/orchestration/ui_latency.py [--runs 1000] [--repeats 20]
        [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from conveyor.dsl.artifacts import Artifact
from conveyor.orchestration.metadata import COMPLETE, FAILED, Metadata

PIPELINE = "ui_bench"
#: component -> (its output type, the components whose outputs it reads)
COMPONENTS = {
    "ExampleGen": ("Examples", []),
    "StatisticsGen": ("ExampleStatistics", ["ExampleGen"]),
    "SchemaGen": ("Schema", ["StatisticsGen"]),
    "ExampleValidator": ("ExampleAnomalies", ["StatisticsGen", "SchemaGen"]),
    "Transform": ("TransformGraph", ["ExampleGen", "SchemaGen"]),
    "Trainer": ("Model", ["Transform", "SchemaGen"]),
    "Evaluator": ("ModelEvaluation", ["Trainer", "ExampleGen"]),
    "Pusher": ("PushedModel", ["Trainer"]),
}


def build(root: str, runs: int) -> float:
    """Writes ``runs`` runs into ``<root>/metadata.sqlite``; returns the seconds it took."""
    start = time.time()
    md = Metadata(os.path.join(root, "metadata.sqlite"))
    ids = list(COMPONENTS)
    for i in range(runs):
        run_id = f"run-{i:05d}"
        md.start_run(PIPELINE, run_id, ids)
        outputs: dict[str, Artifact] = {}
        failed = i % 10 == 9
        for cid, (type_name, reads) in COMPONENTS.items():
            if i == runs - 1 and cid == "Trainer":
                ex = md.start_execution(f"conveyor.{cid}", PIPELINE, run_id, cid, {}, "", {})
                break  # the newest run: Trainer running, the rest not started
            inputs = {r.lower(): outputs[r] for r in reads}
            ex = md.start_execution(f"conveyor.{cid}", PIPELINE, run_id, cid, inputs, "", {"i": i})
            if failed and cid == "Trainer":
                md.finish_execution(ex, FAILED, error="ValueError: the benchmark's failure")
                break
            art = Artifact(type_name, f"{root}/{cid}/out/{ex}")
            outputs[cid] = md.finish_execution(ex, COMPLETE, {"out": art})["out"]
        if i < runs - 1:
            md.finish_run(PIPELINE, run_id, FAILED if failed else COMPLETE)
    return time.time() - start


def measure(root: str, repeats: int) -> dict:
    """``{route: {"median_ms", "p95_ms"}}`` of each route requested ``repeats`` times."""
    from starlette.testclient import TestClient

    from conveyor.orchestration.ui import create_app

    client = TestClient(create_app(roots=[root]))
    runs = client.get(f"/api/pipelines/{PIPELINE}/runs?limit=2").json()["runs"]
    run_id = runs[1]["run_id"]
    model = client.get(f"/api/runs/{run_id}").json()["components"][5]["outputs"]["out"][0]["id"]
    routes = {
        "pipelines page": "/",
        "runs page (50 runs)": f"/pipelines/{PIPELINE}",
        "runs API (100 runs)": f"/api/pipelines/{PIPELINE}/runs",
        "run page": f"/pipelines/{PIPELINE}/runs/{run_id}",
        "run API": f"/api/runs/{run_id}",
        "node page": f"/pipelines/{PIPELINE}/runs/{run_id}/nodes/Trainer",
        "artifact API": f"/api/artifacts/{model}",
        "lineage API": f"/api/artifacts/{model}/lineage",
    }
    out = {}
    for name, path in routes.items():
        assert client.get(path).status_code == 200, path  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            client.get(path)
            times.append(1000 * (time.perf_counter() - t))
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[name] = {"median_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1)}
    return out


def main() -> None:
    """Builds the store (unless ``--keep`` holds one) and prints and saves the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep", metavar="DIR", help="build the store in DIR and leave it there")
    parser.add_argument(
        "--json", default=os.path.join(os.path.dirname(__file__), "ui_latency.json")
    )
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="ui_bench_")
    os.makedirs(root, exist_ok=True)
    built = None
    if not os.path.exists(os.path.join(root, "metadata.sqlite")):
        built = build(root, args.runs)
        print(f"store: {args.runs} runs x {len(COMPONENTS)} components in {built:.1f} s")
    results = measure(root, args.repeats)
    for name, r in results.items():
        print(f"{name:<22} median {r['median_ms']:>7.1f} ms   p95 {r['p95_ms']:>7.1f} ms")
    with open(args.json, "w") as f:
        json.dump(
            {"runs": args.runs, "components": len(COMPONENTS), "results": results}, f, indent=2
        )
        f.write("\n")


if __name__ == "__main__":
    main()
