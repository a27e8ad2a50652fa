"""Benchmark: what a Resolver (and a Cond) adds per node, on an ML Metadata store of many past runs.

Issue 18 (continuous training) asks for under 0.5 s per resolver node on a
store holding 1,000 runs of the pipeline. The store is SQLite, built here:

1. a tiny pipeline (``ExampleGen`` -> ``Trainer`` -> ``Evaluator``, trivial
   components writing a file each) runs once through
   ``LocalDagRunner(in_process=True)``;
2. the other past runs are written directly through
   ``conveyor.orchestration.Metadata``'s own methods (``start_run``,
   ``start_execution``, ``finish_execution``, ``finish_run``), as the launcher
   records them: per run an Examples artifact (``span`` = the run's number,
   ``version`` 0), a Model (its input event: the Examples) and a ModelBlessing
   (``blessed`` 1 for three runs in four, ``current_model_id``);
3. with ``--other-runs K``, K runs of another pipeline (``resolver_bench_other``)
   are written alike: artifacts of the same types that a pipeline-scoped query
   must not read (default 0: one pipeline only).

Then, in each of ``--repeats`` fresh runs of the same pipeline (one more,
first, as a warm-up, not counted), these nodes run through
``launcher.run_component`` in process with one open ``Metadata`` (as
``LocalDagRunner(in_process=True)`` runs them), caching off, each timed:

- (a) a plain trivial component (writes one file);
- (b) ``Resolver(LatestArtifactStrategy)`` over ``Channel(type="Model", producer_component_id="Trainer")``;
- (c) ``Resolver(LatestBlessedModelStrategy)`` over Trainer's Models and Evaluator's ModelBlessings;
- (d) ``Resolver(SpanRangeStrategy)``, a rolling range of 7 spans over ExampleGen's Examples;
- (e) the trivial component under ``with Cond(blessing.future()[0].custom_property("blessed") == 1)``
  (true: it runs);
- (f) the same under a false condition (SKIPPED: recorded, not executed).

Each node's figure is the median; the overhead is against (a). For each
resolver the time is split into the candidates query (``Resolver.candidates``:
``Metadata.artifacts`` for each channel), the strategy's choice, and the rest
(deciding the condition and runtime parameters, recording the execution and its
events); and the candidates query is split into its ML Metadata calls, both
for the whole-store scan (``get_artifacts_by_type`` and the producer of every
artifact: what ``Metadata.artifacts`` did before it was pipeline-scoped) and
for the pipeline-scoped query it makes now (``scoped``).

Usage::

    .venv/bin/python benchmarks/orchestration/resolver_overhead.py [--runs 1000] [--repeats 7]
        [--other-runs 0] [--keep DIR] [--json PATH]

Results: a table on stdout, and JSON at ``benchmarks/orchestration/results.json``
(``--json`` to put it elsewhere). ``--keep DIR`` builds the store in DIR and leaves it there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conveyor.dsl import (  # noqa: E402
    Channel,
    Component,
    Cond,
    InputSpec,
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    Pipeline,
    Resolver,
    SpanRangeStrategy,
)
from conveyor.dsl.artifacts import Artifact  # noqa: E402
from conveyor.orchestration import LocalDagRunner, Metadata  # noqa: E402
from conveyor.orchestration.launcher import execution_type, run_component  # noqa: E402
from conveyor.orchestration.metadata import COMPLETE  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE = "resolver_bench"
OTHER_PIPELINE = "resolver_bench_other"
TARGET_SECONDS = 0.5
NUM_SPANS = 7


# -- trivial components -----------------------------------------------------------------


def _touch(folder: str, name: str, text: str = "") -> None:
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)


class SpanGen(Component):
    """An Examples artifact with ``span`` and ``version``, as ExampleGen records them."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"span": 0, "version": 0}

    def execute(self, ctx):
        _touch(ctx.outputs["examples"].uri, "data")
        p = ctx.parameters
        return {
            "examples": {"span": p["span"], "version": p["version"], "split_names": '["train"]'}
        }


class Train(Component):
    """A Model artifact (a file)."""

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"model": "Model"}

    def execute(self, ctx):
        _touch(ctx.outputs["model"].uri, "model")


class Evaluate(Component):
    """A ModelBlessing of its model: ``blessed`` 1/0 and ``current_model_id``, as Evaluator sets."""

    INPUTS = {"model": InputSpec("Model")}
    OUTPUTS = {"blessing": "ModelBlessing"}
    PARAMETERS = {"blessed": True}

    def execute(self, ctx):
        blessed = bool(ctx.parameters["blessed"])
        _touch(ctx.outputs["blessing"].uri, "BLESSED" if blessed else "NOT_BLESSED")
        model = ctx.inputs["model"]
        return {"blessing": _blessing_props(blessed, model)}


def _blessing_props(blessed: bool, model: Artifact) -> dict:
    return {"blessed": int(blessed), "current_model": model.uri, "current_model_id": int(model.id)}


class Gate(Component):
    """A blessing for a condition to read (not of a model: a ModelEvaluation, so the resolvers'
    ModelBlessing channels do not see it)."""

    OUTPUTS = {"blessing": "ModelEvaluation"}

    def execute(self, ctx):
        _touch(ctx.outputs["blessing"].uri, "BLESSED")
        return {"blessing": {"blessed": 1}}


class Trivial(Component):
    """The plain node: writes one small file."""

    OUTPUTS = {"out": "ExampleStatistics"}

    def execute(self, ctx):
        _touch(ctx.outputs["out"].uri, "out.txt", ctx.run_id)


# -- the store ---------------------------------------------------------------------------


def past_pipeline(root: str) -> Pipeline:
    gen = SpanGen(span=0).with_id("ExampleGen")
    train = Train(examples=gen.outputs["examples"]).with_id("Trainer")
    evaluate = Evaluate(model=train.outputs["model"]).with_id("Evaluator")
    return Pipeline(PIPELINE, root, [gen, train, evaluate], enable_cache=False)


def build_store(root: str, runs: int, other_runs: int = 0) -> dict:
    """Run 0 through the runner, runs 1..runs-1 written through Metadata's methods, then
    ``other_runs`` runs of another pipeline (``OTHER_PIPELINE``) alike; the timings."""
    began = time.perf_counter()
    pipeline = past_pipeline(root)
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="past-00000")
    first_run = time.perf_counter() - began
    md = Metadata(pipeline.metadata_path)
    types = {c.id: execution_type(c) for c in pipeline.components}
    ids = [c.id for c in pipeline.components]
    written = time.perf_counter()

    def record(name, run_id, cid, inputs, key, type_name, props):
        ex = md.start_execution(types[cid], name, run_id, cid, inputs, "", {})
        art = Artifact(type_name, f"{root}/{cid}/{key}/{ex}", properties=dict(props))
        md.finish_execution(ex, COMPLETE, {key: art})
        return art

    def write_runs(name: str, first: int, count: int) -> None:
        for i in range(first, first + count):
            run_id = f"past-{i:05d}"
            md.start_run(name, run_id, ids)

            span = {"span": i, "version": 0, "split_names": '["train"]'}
            examples = record(name, run_id, "ExampleGen", {}, "examples", "Examples", span)
            model = record(name, run_id, "Trainer", {"examples": examples}, "model", "Model", {})
            blessing = _blessing_props(i % 4 != 3, model)
            record(
                name, run_id, "Evaluator", {"model": model}, "blessing", "ModelBlessing", blessing
            )
            md.finish_run(name, run_id, COMPLETE)
            if (i - first + 1) % 250 == 0:
                print(
                    f"  {name}: {i - first + 1} runs written, {time.perf_counter() - began:.1f}s",
                    flush=True,
                )

    write_runs(PIPELINE, 1, runs - 1)
    write_seconds = (time.perf_counter() - written) / max(runs - 1, 1)
    # Another pipeline's runs in the same store (what a pipeline-scoped query should not read).
    write_runs(OTHER_PIPELINE, 1, other_runs)
    store = md.store
    return {
        "past_runs": runs,
        "other_pipeline_runs": other_runs,
        "build_seconds": round(time.perf_counter() - began, 2),
        "first_run_seconds": round(first_run, 3),
        "write_seconds_per_run": round(write_seconds, 4),
        "executions": len(store.get_executions()),
        "artifacts": len(store.get_artifacts()),
        "events": len(store.get_events_by_execution_ids([e.id for e in store.get_executions()])),
        "sqlite_mb": round(os.path.getsize(pipeline.metadata_path) / 2**20, 2),
    }


# -- the timed nodes ---------------------------------------------------------------------

CASES = [
    ("a", "Trivial", "plain trivial component"),
    ("b", "latest_model", "Resolver LatestArtifactStrategy"),
    ("c", "latest_blessed_model", "Resolver LatestBlessedModelStrategy"),
    ("d", "last_spans", f"Resolver SpanRangeStrategy (rolling {NUM_SPANS})"),
    ("e", "Trivial_under_Cond", "trivial component under Cond (true)"),
    ("f", "Trivial_under_false_Cond", "trivial component under Cond (false: SKIPPED)"),
]


def probe_pipeline(root: str) -> Pipeline:
    trivial = Trivial()
    latest = Resolver(
        strategy_class=LatestArtifactStrategy,
        model=Channel(type="Model", producer_component_id="Trainer"),
    ).with_id("latest_model")
    blessed = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type="Model", producer_component_id="Trainer"),
        model_blessing=Channel(type="ModelBlessing", producer_component_id="Evaluator"),
    ).with_id("latest_blessed_model")
    spans = Resolver(
        strategy_class=SpanRangeStrategy,
        config={"range_config": {"rolling_range": {"num_spans": NUM_SPANS}}},
        examples=Channel(type="Examples", producer_component_id="ExampleGen"),
    ).with_id("last_spans")
    gate = Gate()
    with Cond(gate.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        under = Trivial(id="Trivial_under_Cond")
    with Cond(gate.outputs["blessing"].future()[0].custom_property("blessed") == 0):
        under_false = Trivial(id="Trivial_under_false_Cond")
    return Pipeline(
        PIPELINE,
        root,
        [trivial, latest, blessed, spans, gate, under, under_false],
        enable_cache=False,
    )


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def time_nodes(root: str, repeats: int, runs: int) -> dict:
    pipeline = probe_pipeline(root)
    md = Metadata(pipeline.metadata_path)
    view = md.for_pipeline(PIPELINE)
    resolvers = {c.id: c for c in pipeline.components if isinstance(c, Resolver)}
    node_times: dict[str, list[float]] = {cid: [] for _, cid, _ in CASES}
    parts: dict[str, dict[str, list[float]]] = {
        cid: {"candidates": [], "strategy": []} for cid in resolvers
    }
    resolved: dict[str, dict] = {}
    for r in range(repeats + 1):  # the first is a warm-up
        run_id = f"probe-{r:03d}"
        md.start_run(PIPELINE, run_id, [c.id for c in pipeline.components])
        run_component(pipeline, "Gate", run_id, enable_cache=False, md=md)
        for _, cid, _ in CASES:
            t0 = time.perf_counter()
            status = run_component(pipeline, cid, run_id, enable_cache=False, md=md)
            took = time.perf_counter() - t0
            if r:
                node_times[cid].append(took)
            resolved[cid] = status
        for cid, resolver in resolvers.items():
            t0 = time.perf_counter()
            candidates = resolver.candidates(view)
            t1 = time.perf_counter()
            resolver.strategy_class(**resolver.config).resolve_artifacts(view, candidates)
            t2 = time.perf_counter()
            if r:
                parts[cid]["candidates"].append(t1 - t0)
                parts[cid]["strategy"].append(t2 - t1)
        md.finish_run(PIPELINE, run_id, COMPLETE)
    # What each resolver chose (the last run): a sanity check that it found something.
    expected_span_count = min(NUM_SPANS, runs)
    assert resolved["latest_model"]["state"] == COMPLETE
    assert len(resolved["last_spans"]["artifacts"]["examples"]) == expected_span_count
    assert resolved["latest_blessed_model"]["artifacts"]["model"], "no blessed model found"
    assert resolved["Trivial_under_Cond"]["state"] == COMPLETE
    assert resolved["Trivial_under_false_Cond"]["state"] == "SKIPPED"
    base = _median(node_times["Trivial"])
    rows = []
    for case, cid, what in CASES:
        med = _median(node_times[cid])
        row = {
            "case": case,
            "node": cid,
            "what": what,
            "median_seconds": round(med, 4),
            "overhead_seconds": round(med - base, 4),
            "runs_seconds": [round(x, 4) for x in node_times[cid]],
            "state": resolved[cid]["state"],
        }
        if cid in parts:
            cand = _median(parts[cid]["candidates"])
            strat = _median(parts[cid]["strategy"])
            row["split_seconds"] = {
                "candidates_query": round(cand, 4),
                "strategy": round(strat, 4),
                "rest": round(med - cand - strat, 4),
            }
            row["resolved"] = {k: len(v) for k, v in resolved[cid]["artifacts"].items()}
        rows.append(row)
    return {"nodes": rows, "queries": query_split(md, repeats)}


#: The producer each resolver's channel of a type names.
PRODUCERS = {"Examples": "ExampleGen", "Model": "Trainer", "ModelBlessing": "Evaluator"}


def scoped_split(md: Metadata, type_name: str, producer: str, repeats: int) -> dict:
    """Where the pipeline-scoped ``Metadata.for_pipeline(p).artifacts(type, producer)`` spends its
    time: the node context's artifacts, their events, the producing executions of those several
    executions output (the only ones read), making Artifacts; and the whole call."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from conveyor.orchestration.metadata import _artifact_of, _first_output_events

    view = md.for_pipeline(PIPELINE)
    times: dict[str, list[float]] = {
        k: [] for k in ("context_artifacts", "events", "shared_producers", "to_artifacts", "total")
    }
    counts = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        arts = [
            a
            for a in view._context_artifacts(type_name, producer)
            if a.state == pb.Artifact.LIVE and md._types.get(type_name) == a.type_id
        ]
        t1 = time.perf_counter()
        first = _first_output_events(
            md._call(md.store.get_events_by_artifact_ids, [a.id for a in arts])
        )
        t2 = time.perf_counter()
        shared = sorted({x for x, _, several in first.values() if several})
        if shared:
            md._call(md.store.get_executions_by_id, shared)
        t3 = time.perf_counter()
        names = md._type_names()
        [_artifact_of(a, names) for a in arts]
        t4 = time.perf_counter()
        got = view.artifacts(type_name, producer)
        t5 = time.perf_counter()
        for key, took in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            times[key].append(took)
        counts = {"artifacts": len(arts), "executions_read": len(shared), "kept": len(got)}
    return {**counts, **{k: round(_median(v), 4) for k, v in times.items()}}


def query_split(md: Metadata, repeats: int) -> dict:
    """Where ``Metadata.artifacts(type, producer)`` spends its time, per type. The whole-store
    scan (what it did before it read the pipeline's contexts, and still does for a store not seen
    from a pipeline): fetching every artifact of the type, then the events and executions of all
    of them (to learn each one's pipeline and producer), then making Artifacts of those kept;
    and, under ``scoped``, the pipeline-scoped query's parts (:func:`scoped_split`)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from conveyor.orchestration.metadata import _artifact_of

    out = {}
    for type_name in ("Examples", "Model", "ModelBlessing"):
        fetch, first, convert = [], [], []
        n = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            arts = [
                a
                for a in md._call(md.store.get_artifacts_by_type, type_name)
                if a.state == pb.Artifact.LIVE
            ]
            t1 = time.perf_counter()
            md._first_outputs([a.id for a in arts])
            t2 = time.perf_counter()
            names = md._type_names()
            [_artifact_of(a, names) for a in arts]
            t3 = time.perf_counter()
            fetch.append(t1 - t0)
            first.append(t2 - t1)
            convert.append(t3 - t2)
            n = len(arts)
        out[type_name] = {
            "artifacts": n,
            "get_artifacts_by_type": round(_median(fetch), 4),
            "events_and_executions_of_all": round(_median(first), 4),
            "to_artifacts": round(_median(convert), 4),
        }
        if hasattr(md, "_context_artifacts"):  # the pipeline-scoped query (absent before it)
            out[type_name]["scoped"] = scoped_split(md, type_name, PRODUCERS[type_name], repeats)
    # Not per resolver, for comparison: a cache lookup that misses (scans every execution of the
    # component's type: Trainer's, one per past run) and what a runner does once per run.
    for what, fn in (
        ("find_cached_miss_Trainer", lambda: md.find_cached("no-such-key", "conveyor.Train")),
        ("reap_lost_per_run", lambda: md.reap_lost(PIPELINE)),
    ):
        took = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            took.append(time.perf_counter() - t0)
        out[what] = round(_median(took), 4)
    t0 = time.perf_counter()
    listed = md.runs(PIPELINE)  # what `conveyor run list` reads: every run's summary
    out["runs_list_once"] = {"runs": len(listed), "seconds": round(time.perf_counter() - t0, 3)}
    return out


def print_table(result: dict) -> None:
    store = result["store"]
    print(
        f"\nML Metadata store: {store['past_runs']} past runs"
        f" (and {store.get('other_pipeline_runs', 0)} of another pipeline), "
        f"{store['executions']} executions, "
        f"{store['artifacts']} artifacts, {store['sqlite_mb']} MB SQLite; built in "
        f"{store['build_seconds']}s ({store['write_seconds_per_run'] * 1000:.1f} ms per run written)"
    )
    print(f"median of {result['repeats']} runs per node (run_component in process, one Metadata)\n")
    print(f"{'':4}{'node':<66}{'s/node':>9}{'vs (a)':>10}")
    for row in result["nodes"]:
        label = f"{row['what']}  [{row['node']}]"
        print(
            f"({row['case']}) {label:<66}{row['median_seconds']:>9.4f}"
            f"{row['overhead_seconds']:>+10.4f}"
        )
    print("\nresolver time split (s): candidates query / strategy / rest (record, decide)")
    for row in result["nodes"]:
        if "split_seconds" in row:
            s = row["split_seconds"]
            print(
                f"  {row['node']:<22} {s['candidates_query']:.4f} / {s['strategy']:.4f} / "
                f"{s['rest']:.4f}   resolved {row['resolved']}"
            )
    print("\nMetadata.artifacts(type, producer) per type (s), the whole-store scan:")
    for type_name in ("Examples", "Model", "ModelBlessing"):
        q = result["queries"][type_name]
        print(
            f"  {type_name:<14} {q['artifacts']:>5} artifacts: get_artifacts_by_type "
            f"{q['get_artifacts_by_type']:.4f}, events+executions of all "
            f"{q['events_and_executions_of_all']:.4f}, to Artifact {q['to_artifacts']:.4f}"
        )
    for type_name in ("Examples", "Model", "ModelBlessing"):
        q = result["queries"][type_name].get("scoped")
        if q:
            print(
                f"  {type_name:<14} scoped to {PIPELINE}.{PRODUCERS[type_name]}: "
                f"{q['artifacts']} artifacts: context {q['context_artifacts']:.4f}, events "
                f"{q['events']:.4f}, {q['executions_read']} producers read "
                f"{q['shared_producers']:.4f}, to Artifact {q['to_artifacts']:.4f}; "
                f"the call {q['total']:.4f}"
            )
    q = result["queries"]
    print(
        f"  for comparison: a cache miss of Trainer (scans its {store['past_runs']} executions) "
        f"{q['find_cached_miss_Trainer']:.4f}; reap_lost at each run's start "
        f"{q['reap_lost_per_run']:.4f}; Metadata.runs (conveyor run list) over "
        f"{q['runs_list_once']['runs']} runs {q['runs_list_once']['seconds']:.2f}s"
    )
    worst = max(r["median_seconds"] for r in result["nodes"] if "split_seconds" in r)
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(
        f"\nslowest resolver node {worst:.3f}s: {verdict} the target of < {TARGET_SECONDS}s "
        f"per resolver node on {store['past_runs']} runs"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="past runs in the store")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per node (median)")
    parser.add_argument(
        "--other-runs",
        type=int,
        default=0,
        help=f"runs of another pipeline ({OTHER_PIPELINE}) in the same store (default 0)",
    )
    parser.add_argument("--keep", metavar="DIR", help="build the store here and keep it")
    parser.add_argument(
        "--json",
        metavar="PATH",
        default=os.path.join(HERE, "results.json"),
        help="where the JSON result goes (default: next to this script)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        parser.error("--runs and --repeats must be at least 1")
    if args.other_runs < 0:
        parser.error(f"--other-runs must be 0 or more, not {args.other_runs}")
    root = args.keep or tempfile.mkdtemp(prefix="conveyor-resolver-bench-")
    if args.keep and os.path.exists(os.path.join(root, "metadata.sqlite")):
        parser.error(f"--keep {root}: it holds a store already; give an empty folder")
    try:
        print(f"building a store of {args.runs} past runs in {root}", flush=True)
        store = build_store(root, args.runs, args.other_runs)
        timed = time_nodes(root, args.repeats, args.runs)
        resolver_rows = [r for r in timed["nodes"] if "split_seconds" in r]
        result = {
            "benchmark": "resolver_overhead",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "command": " ".join(
                [".venv/bin/python benchmarks/orchestration/resolver_overhead.py"]
                + list(sys.argv[1:] if argv is None else argv)
            ),
            "store": store,
            "repeats": args.repeats,
            "target_seconds_per_resolver_node": TARGET_SECONDS,
            "meets_target": all(r["median_seconds"] < TARGET_SECONDS for r in resolver_rows),
            **timed,
        }
        print_table(result)
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(f"wrote {args.json}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
