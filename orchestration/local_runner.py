"""``LocalDagRunner``: runs a pipeline on this machine, independent components in parallel.

Each component runs in its own process (``python -m conveyor.orchestration.launcher``),
so a crash or a kill of one leaves the others and the metadata store intact, and
Beam and TensorFlow start clean for each. Progress goes to stdout, one line per
component start and finish; a component's own output goes to
``<root>/.conveyor/runs/<run_id>/<component>.log``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from conveyor.orchestration.dsl import Pipeline
from conveyor.orchestration.loader import save_pipeline


class PipelineRunError(RuntimeError):
    """A pipeline run failed: names the component and leads with the user's error."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def prepare_run(pipeline: Pipeline, run_id: str | None) -> tuple[str, str]:
    """``(run_id, run_dir)``: a new id if none is given, and ``<root>/.conveyor/runs/<id>/`` made."""
    run_id = run_id or new_run_id()
    run_dir = os.path.join(pipeline.root, ".conveyor", "runs", run_id)
    os.makedirs(run_dir, exist_ok=True)
    return run_id, run_dir


class LocalDagRunner:
    """Runs pipelines locally.

    Args:
      max_workers: components that may run at once (default: CPU count, at most 4).
      in_process: run components in this process, one at a time (for notebooks and
        debugging; no isolation from a crash).
    """

    def __init__(self, max_workers: int | None = None, in_process: bool = False, quiet: bool = False):
        self.max_workers = max_workers or min(os.cpu_count() or 1, 4)
        self.in_process = in_process
        self.quiet = quiet

    def _print(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    def run(self, pipeline: Pipeline, run_id: str | None = None, enable_cache: bool | None = None) -> dict:
        """Runs every component; returns ``{"run_id", "components": {id: status}}``.

        Raises :class:`PipelineRunError` when a component fails (components that
        do not depend on it still finish).
        """
        run_id, run_dir = prepare_run(pipeline, run_id)
        self._print(f"[{pipeline.name}] run {run_id}: {len(pipeline.components)} components, root {pipeline.root}")
        if self.in_process:
            return self._run_in_process(pipeline, run_id, enable_cache)
        pickle_path = save_pipeline(pipeline, os.path.join(run_dir, "pipeline.pkl"))
        done: dict[str, dict] = {}
        failed: dict[str, str] = {}
        running: dict[str, tuple[subprocess.Popen, float, object]] = {}
        pending = list(pipeline.components)
        start_all = time.time()
        while pending or running:
            # failed holds skipped components too, so skipping follows the DAG down.
            blocked = [c for c in pending if any(u.id in failed for u in c.upstream)]
            for c in blocked:
                pending.remove(c)
                failed[c.id] = "skipped: an upstream component failed"
                self._print(f"[{pipeline.name}] {c.id}: SKIPPED (upstream failed)")
            ready = [c for c in pending if all(u.id in done for u in c.upstream)]
            while ready and len(running) < self.max_workers:
                c = ready.pop(0)
                pending.remove(c)
                log = open(os.path.join(run_dir, f"{c.id}.log"), "w")
                cmd = [sys.executable, "-m", "conveyor.orchestration.launcher", pickle_path, c.id, run_id]
                if enable_cache is False:
                    cmd.append("--no-cache")
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
                running[c.id] = (proc, time.time(), log)
                self._print(f"[{pipeline.name}] {c.id}: START")
            finished = [cid for cid, (p, _, _) in running.items() if p.poll() is not None]
            if not finished:
                time.sleep(0.2)
                continue
            for cid in finished:
                proc, began, log = running.pop(cid)
                log.close()
                text = open(os.path.join(run_dir, f"{cid}.log")).read()
                took = time.time() - began
                status = _status_from_log(text)
                if proc.returncode == 0 and status:
                    done[cid] = status
                    cached = " (cached)" if status["state"] == "CACHED" else ""
                    self._print(f"[{pipeline.name}] {cid}: DONE in {took:.1f}s{cached}")
                else:
                    failed[cid] = _error_from_log(text, proc.returncode)
                    self._print(f"[{pipeline.name}] {cid}: FAILED after {took:.1f}s: {failed[cid]}")
        cached = sum(1 for s in done.values() if s["state"] == "CACHED")
        self._print(f"[{pipeline.name}] run {run_id}: {len(done)} done ({cached} cached), "
                    f"{len(failed)} failed or skipped, {time.time() - start_all:.1f}s")
        result = {"run_id": run_id, "components": done, "failed": failed}
        if failed:
            first = next(cid for cid in failed if not failed[cid].startswith("skipped"))
            message = failed[first]
            if not message.startswith(f"{first} failed"):
                message = f"{first} failed: {message}"
            raise PipelineRunError(f"{message}\n(log: {os.path.join(run_dir, first + '.log')})")
        return result

    def _run_in_process(self, pipeline: Pipeline, run_id: str, enable_cache: bool | None) -> dict:
        from conveyor.orchestration.launcher import ComponentError, metadata_for, run_component

        md = metadata_for(pipeline)
        done = {}
        for c in pipeline.components:
            self._print(f"[{pipeline.name}] {c.id}: START")
            try:
                status = run_component(pipeline, c.id, run_id, enable_cache, md=md)
            except ComponentError as e:
                self._print(f"[{pipeline.name}] {c.id}: FAILED: {e}")
                raise PipelineRunError(str(e)) from e
            done[c.id] = status
            cached = " (cached)" if status["state"] == "CACHED" else ""
            self._print(f"[{pipeline.name}] {c.id}: DONE in {status['seconds']:.1f}s{cached}")
        return {"run_id": run_id, "components": done, "failed": {}}


def _status_from_log(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        if line.startswith("STATUS "):
            return json.loads(line[len("STATUS "):])
    return None


def _error_from_log(text: str, returncode: int) -> str:
    for line in reversed(text.splitlines()):
        if line.startswith("ERROR "):
            return line[len("ERROR "):]
    tail = [line for line in text.splitlines() if line.strip()][-3:]
    return f"exit status {returncode}: " + " | ".join(tail)
