"""``LocalDagRunner``: runs a pipeline on this machine, independent components in parallel.

Each component runs in its own process (``python -m conveyor.orchestration.launcher``),
so a crash or a kill of one leaves the others and the metadata store intact, and
Beam and TensorFlow start clean for each. Progress goes to stdout, one line per
component start and finish; a component's own output goes to
``<root>/.conveyor/runs/<run_id>/<component>.log``.

What is recorded when things go wrong:

- A component process that dies (``kill -9``, a crash of the interpreter) is
  recorded FAILED with the signal ("killed by signal 9 (SIGKILL)") and its
  temporary outputs are removed; the components after it are not started.
- SIGTERM or SIGINT (Ctrl-C) to the runner stops the running components (SIGTERM
  to each, SIGKILL after ``stop_timeout`` seconds or at a second signal), records
  them and the run CANCELED, removes their temporary outputs and raises
  :class:`RunCanceled`.
- If the runner itself is killed (``kill -9``), its components notice and stop
  by themselves, recorded CANCELED, publishing nothing; the run shows as FAILED
  with the reason "runner gone" (the runner's pid, host and start are recorded on
  the run's context). The next run on this host records any execution whose
  process vanished without a trace FAILED and removes its temporary outputs.

A rerun resumes from the cache: completed components are CACHED, the rest run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from conveyor.dsl import Pipeline
from conveyor.orchestration.launcher import PARENT_PID_ENV, PipelineRootError, check_root
from conveyor.orchestration.loader import captured_by_loader, save_pipeline

__all__ = ["LocalDagRunner", "PipelineRunError", "RunCanceled", "PipelineRootError"]


class PipelineRunError(RuntimeError):
    """A pipeline run failed: names the component and leads with the user's error."""


class RunCanceled(PipelineRunError):
    """A run stopped by SIGTERM or SIGINT: its running components were stopped and recorded CANCELED.

    ``signum`` is the signal; ``run_id`` the run.
    """

    def __init__(self, message: str, signum: int, run_id: str):
        super().__init__(message)
        self.signum = signum
        self.run_id = run_id


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def runs_folder(root: str) -> str:
    """Where a pipeline root's run folders are: ``<root>/.conveyor/runs`` on a local root.

    A run folder holds the pipeline's pickle, the component logs and status files, which
    processes on this machine read and write with plain file calls; under a remote root
    (``s3://``, ``gs://``) it is local instead: ``$CONVEYOR_RUNS_DIR`` (default
    ``~/.cache/conveyor/runs``) ``/<scheme>/<bucket and path>``.
    """
    if "://" not in root:
        return os.path.join(root, ".conveyor", "runs")
    scheme, rest = root.split("://", 1)
    base = os.environ.get("CONVEYOR_RUNS_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "conveyor", "runs"
    )
    parts = [p for p in rest.split("/") if p and p not in (".", "..")]
    return os.path.join(base, scheme, *parts)


def prepare_run(pipeline: Pipeline, run_id: str | None) -> tuple[str, str]:
    """``(run_id, run_dir)``: a new id if none is given, and the run folder made
    (``<root>/.conveyor/runs/<id>/``; under a remote root see :func:`runs_folder`).

    Raises :class:`PipelineRootError` if the root is a file, cannot be created or
    is not writable, or is remote while ML Metadata would be kept under it.
    """
    check_root(pipeline.root)
    if "://" in pipeline.root and pipeline.metadata_connection_config is None:
        raise PipelineRootError(
            pipeline.root,
            "is remote, so ML Metadata cannot be kept under it (SQLite needs a local file): "
            "give the pipeline a metadata_connection_config (a local sqlite_config or "
            "mysql_config) or --metadata-mysql",
        )
    run_id = run_id or new_run_id()
    run_dir = os.path.join(runs_folder(pipeline.root), run_id)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise PipelineRootError(
            pipeline.root, f"is not usable: cannot create {run_dir}: {e.strerror or e}"
        ) from None
    return run_id, run_dir


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_description(returncode: int) -> str:
    """``killed by signal 9 (SIGKILL)`` or ``exit status 1``."""
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal_name(-returncode)})"
    return f"exit status {returncode}"


class ComponentProcess:
    """One component in its own launcher process and session, stopping with the process that starts it.

    Args:
      pickle_path: the pickled pipeline.
      stdout, stderr: where its output goes (``subprocess.Popen``'s arguments).
    """

    def __init__(
        self,
        pickle_path: str,
        component_id: str,
        run_id: str,
        enable_cache: bool | None,
        stdout=None,
        stderr=None,
    ):
        self.component_id = component_id
        self.run_id = run_id
        cmd = [
            sys.executable,
            "-m",
            "conveyor.orchestration.launcher",
            pickle_path,
            component_id,
            run_id,
        ]
        if enable_cache is False:
            cmd.append("--no-cache")
        env = dict(os.environ)
        env[PARENT_PID_ENV] = str(os.getpid())
        # Its own session: a Ctrl-C in the terminal reaches the runner only, which stops it
        # in order; and the runner can stop whatever it started with one killpg.
        self.proc = subprocess.Popen(
            cmd, stdout=stdout, stderr=stderr, env=env, start_new_session=True
        )
        self.began = time.time()
        self.stopped_at: float | None = None
        self.killed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """SIGTERM to it and what it started: it records itself CANCELED and exits."""
        if self.poll() is None and self.stopped_at is None:
            self.stopped_at = time.time()
            self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        if self.poll() is None:
            self.killed = True
            self._signal_group(signal.SIGKILL)

    def settle(self, md, pipeline_name: str, state: str, reason: str) -> bool:
        """After it ended: records its execution ``state`` if it is still RUNNING (the process died
        before recording an end) and removes its temporary outputs. Returns whether it did."""
        if self.proc.returncode is not None and self.proc.returncode < 0:
            self._signal_group(signal.SIGKILL)  # whatever it started, now without it
        ended = False
        for ex in md.running_executions(pipeline_name, self.run_id):
            if (
                ex.properties["component_id"].string_value == self.component_id
                and "pid" in ex.custom_properties
                and ex.custom_properties["pid"].int_value == self.proc.pid
            ):
                ended = md.end_if_running(ex.id, state, reason) or ended
        return ended


class _StopState:
    def __init__(self):
        self.signum: int | None = None
        self.again = False
        self.noticed = False


@contextlib.contextmanager
def stop_signals(on_signal=None):
    """Catches SIGTERM and SIGINT while the block runs (in the main thread only): the state's
    ``signum`` is the first one, ``again`` says a second came; ``on_signal(signum)`` is called too."""
    state = _StopState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state.signum is None:
            state.signum = signum
        else:
            state.again = True
        if on_signal is not None:
            on_signal(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


class LocalDagRunner:
    """Runs pipelines locally.

    Args:
      max_workers: components that may run at once (default: CPU count, at most 4).
      in_process: run components in this process, one at a time (for notebooks and
        debugging; no isolation from a crash).
      stop_timeout: seconds a component gets to stop after SIGTERM when the run is
        canceled, before it is killed.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        in_process: bool = False,
        quiet: bool = False,
        stop_timeout: float = 10.0,
    ):
        self.max_workers = max_workers or min(os.cpu_count() or 1, 4)
        self.in_process = in_process
        self.quiet = quiet
        self.stop_timeout = stop_timeout

    def _print(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    def run(
        self,
        pipeline: Pipeline,
        run_id: str | None = None,
        enable_cache: bool | None = None,
        runtime_parameters: dict | None = None,
    ) -> dict:
        """Runs every component; returns ``{"run_id", "components": {id: status}}``.

        While ``load_pipeline`` reads a pipeline file that calls this, it only hands the
        pipeline over and returns None (:func:`~conveyor.orchestration.loader.captured_by_loader`).

        ``runtime_parameters`` (``{name: value}``) gives the pipeline's
        RuntimeParameters their values in this run (the others take their
        defaults); a component whose condition is false is SKIPPED (its status
        says why), and so are those that need its outputs.

        Raises :class:`PipelineRunError` when a component fails (components that
        do not depend on it still finish), :class:`RunCanceled` (a
        ``PipelineRunError``) when SIGTERM or SIGINT stops the run,
        :class:`PipelineRootError` when the pipeline root cannot be used, and
        ``RuntimeParameterError`` (before anything runs) for an unknown runtime
        parameter, a value of the wrong type or one with neither value nor default.
        """
        from conveyor.dsl.runtime import resolve_runtime_parameters
        from conveyor.orchestration.launcher import metadata_for
        from conveyor.orchestration.metadata import CANCELED, COMPLETE, FAILED

        if captured_by_loader(pipeline):
            return None
        values = resolve_runtime_parameters(pipeline, runtime_parameters)
        run_id, run_dir = prepare_run(pipeline, run_id)
        self._print(
            f"[{pipeline.name}] run {run_id}: {len(pipeline.components)} components, root {pipeline.root}"
        )
        md = metadata_for(pipeline)
        md.reap_lost(pipeline.name)
        md.start_run(pipeline.name, run_id, [c.id for c in pipeline.components], root=pipeline.root)
        if values:
            md.record_runtime_parameters(pipeline.name, run_id, values)
        if self.in_process:
            return self._run_in_process(pipeline, run_id, enable_cache, md)
        pickle_path = save_pipeline(pipeline, os.path.join(run_dir, "pipeline.pkl"))
        done: dict[str, dict] = {}
        failed: dict[str, str] = {}
        running: dict[str, tuple[ComponentProcess, object]] = {}
        pending = list(pipeline.components)
        start_all = time.time()
        with stop_signals() as stop:
            try:
                while (pending or running) and stop.signum is None:
                    # failed holds skipped components too, so skipping follows the DAG down.
                    blocked = [c for c in pending if any(u.id in failed for u in c.upstream)]
                    for c in blocked:
                        pending.remove(c)
                        failed[c.id] = "skipped: an upstream component failed"
                        self._print(f"[{pipeline.name}] {c.id}: SKIPPED (upstream failed)")
                    ready = [c for c in pending if all(u.id in done for u in c.upstream)]
                    while ready and len(running) < self.max_workers and stop.signum is None:
                        c = ready.pop(0)
                        pending.remove(c)
                        log = open(os.path.join(run_dir, f"{c.id}.log"), "w")
                        proc = ComponentProcess(
                            pickle_path,
                            c.id,
                            run_id,
                            enable_cache,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                        running[c.id] = (proc, log)
                        self._print(f"[{pipeline.name}] {c.id}: START")
                    finished = [cid for cid, (p, _) in running.items() if p.poll() is not None]
                    if not finished:
                        time.sleep(0.1)
                        continue
                    for cid in finished:
                        proc, log = running.pop(cid)
                        log.close()
                        text = _read(os.path.join(run_dir, f"{cid}.log"))
                        took = time.time() - proc.began
                        status = _status_from_log(text)
                        if proc.poll() == 0 and status:
                            done[cid] = status
                            self._print(f"[{pipeline.name}] {cid}: {finished_line(status, took)}")
                        else:
                            failed[cid] = _error_from_log(text, proc.poll())
                            proc.settle(md, pipeline.name, FAILED, _prefixed(cid, failed[cid]))
                            self._print(
                                f"[{pipeline.name}] {cid}: FAILED after {took:.1f}s: {failed[cid]}"
                            )
            except BaseException as e:
                # The runner itself broke (or was interrupted outside the handler): take the
                # components down with it rather than leave them running unwatched.
                why = f"canceled: the runner failed ({type(e).__name__}: {e})"
                self._stop_all(pipeline, md, running, stop, why, run_dir, done)
                md.finish_run(pipeline.name, run_id, FAILED, why)
                raise
            if stop.signum is not None:
                name = signal_name(stop.signum)
                self._print(
                    f"[{pipeline.name}] run {run_id}: got {name}, stopping {len(running)} running "
                    "component(s)"
                    + (
                        f" (killed after {self.stop_timeout:g}s, or at once on a second signal)"
                        if running
                        else ""
                    )
                )
                canceled = self._stop_all(
                    pipeline, md, running, stop, f"canceled: the run got {name}", run_dir, done
                )
                for c in pending:
                    self._print(f"[{pipeline.name}] {c.id}: NOT STARTED")
                reason = f"canceled by {name}"
                md.finish_run(pipeline.name, run_id, CANCELED, reason)
                self._print(
                    f"[{pipeline.name}] run {run_id}: CANCELED ({name}) after "
                    f"{time.time() - start_all:.1f}s: {len(done)} done, {len(canceled)} canceled, "
                    f"{len(pending)} not started"
                )
                what = (
                    [f"{cid} canceled" for cid in canceled]
                    + [f"{c.id} not started" for c in pending]
                    + [f"{cid} failed" for cid in failed if not failed[cid].startswith("skipped")]
                )
                raise RunCanceled(
                    f"run {run_id} {reason}" + (": " + ", ".join(what) if what else ""),
                    stop.signum,
                    run_id,
                )
        self._print(
            f"[{pipeline.name}] run {run_id}: {len(done)} done ({done_counts(done)}), "
            f"{len(failed)} failed or skipped, {time.time() - start_all:.1f}s"
        )
        result = {"run_id": run_id, "components": done, "failed": failed}
        if failed:
            first = next(cid for cid in failed if not failed[cid].startswith("skipped"))
            message = _prefixed(first, failed[first])
            md.finish_run(pipeline.name, run_id, FAILED, message.splitlines()[0])
            raise PipelineRunError(f"{message}\n(log: {os.path.join(run_dir, first + '.log')})")
        md.finish_run(pipeline.name, run_id, COMPLETE)
        return result

    def _stop_all(
        self,
        pipeline: Pipeline,
        md,
        running: dict,
        stop: _StopState,
        reason: str,
        run_dir: str,
        done: dict,
    ) -> list[str]:
        """Stops the running components (SIGTERM; SIGKILL after ``stop_timeout`` or a second signal)
        and records CANCELED those that could not record it themselves; returns the ids of those
        canceled (one that finished meanwhile goes to ``done``)."""
        from conveyor.orchestration.metadata import CANCELED

        for proc, _ in running.values():
            proc.stop()
        deadline = time.time() + self.stop_timeout
        while any(p.poll() is None for p, _ in running.values()):
            if stop.again or time.time() > deadline:
                for proc, _ in running.values():
                    proc.kill()
            time.sleep(0.05)
        canceled = []
        for cid, (proc, log) in running.items():
            log.close()
            status = _status_from_log(_read(os.path.join(run_dir, f"{cid}.log")))
            if proc.poll() == 0 and status:
                done[cid] = status
                self._print(f"[{pipeline.name}] {cid}: DONE in {time.time() - proc.began:.1f}s")
                continue
            why = reason + (" (killed: it did not stop in time)" if proc.killed else "")
            proc.settle(md, pipeline.name, CANCELED, why)
            canceled.append(cid)
            self._print(
                f"[{pipeline.name}] {cid}: CANCELED after {time.time() - proc.began:.1f}s"
                + (" (killed)" if proc.killed else "")
            )
        running.clear()
        return canceled

    def _run_in_process(
        self, pipeline: Pipeline, run_id: str, enable_cache: bool | None, md
    ) -> dict:
        from conveyor.orchestration.launcher import ComponentCanceled, ComponentError, run_component
        from conveyor.orchestration.metadata import CANCELED, COMPLETE, FAILED

        done = {}
        for c in pipeline.components:
            self._print(f"[{pipeline.name}] {c.id}: START")
            try:
                status = run_component(pipeline, c.id, run_id, enable_cache, md=md)
            except KeyboardInterrupt:  # between Conveyor's steps: nothing of the component recorded
                md.finish_run(pipeline.name, run_id, CANCELED, "canceled by SIGINT")
                raise
            except ComponentCanceled as e:
                self._print(f"[{pipeline.name}] {c.id}: CANCELED: {e}")
                md.finish_run(
                    pipeline.name, run_id, CANCELED, f"canceled by {signal_name(e.signum)}"
                )
                raise RunCanceled(f"run {run_id} canceled: {e}", e.signum, run_id) from e
            except ComponentError as e:
                self._print(f"[{pipeline.name}] {c.id}: FAILED: {e}")
                md.finish_run(pipeline.name, run_id, FAILED, str(e).splitlines()[0])
                raise PipelineRunError(str(e)) from e
            done[c.id] = status
            self._print(f"[{pipeline.name}] {c.id}: {finished_line(status, status['seconds'])}")
        md.finish_run(pipeline.name, run_id, COMPLETE)
        return {"run_id": run_id, "components": done, "failed": {}}


def run_component_in_child(
    pipeline: Pipeline,
    component_id: str,
    run_id: str,
    enable_cache: bool | None = None,
    stop_timeout: float = 10.0,
) -> int:
    """Runs one component in a launcher child process, as ``conveyor component run`` does; returns
    the exit status (0, 1 if it failed, 128 + the signal if SIGTERM or SIGINT stopped it).

    Its output passes through (the status as indented JSON on stdout at the end).
    A child that dies is recorded FAILED ("killed by signal 9 (SIGKILL)"), one
    stopped by a signal to this process CANCELED; neither leaves temporary
    outputs. If this process is killed, the child stops by itself (CANCELED).
    """
    import shutil
    import tempfile

    from conveyor.orchestration.launcher import metadata_for
    from conveyor.orchestration.metadata import CANCELED, FAILED

    pipeline.component(component_id)  # KeyError for an unknown id, before anything starts
    check_root(pipeline.root)
    md = metadata_for(pipeline)
    md.reap_lost(pipeline.name)
    md.note_components(
        pipeline.name, run_id, [c.id for c in pipeline.components], root=pipeline.root
    )
    tmp = tempfile.mkdtemp(prefix="conveyor-component-")
    try:
        pickle_path = save_pipeline(pipeline, os.path.join(tmp, "pipeline.pkl"))
        child = ComponentProcess(
            pickle_path, component_id, run_id, enable_cache, stdout=subprocess.PIPE
        )
        status: list[dict] = []

        def relay():
            for raw in child.proc.stdout:
                line = raw.decode(errors="replace")
                if line.startswith("STATUS "):
                    status.append(json.loads(line[len("STATUS ") :]))
                else:
                    sys.stdout.write(line)
                    sys.stdout.flush()

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        with stop_signals(on_signal=lambda signum: child.stop()) as stop:
            while child.poll() is None:
                if stop.again or (
                    child.stopped_at and time.time() - child.stopped_at > stop_timeout
                ):
                    child.kill()
                time.sleep(0.1)
        reader.join(timeout=5)
        rc = child.poll()
        if rc == 0 and status:
            print(json.dumps(status[-1], indent=2))
            return 0
        if stop.signum is not None:
            why = f"canceled: the process running it got {signal_name(stop.signum)}"
            why += " (killed: it did not stop in time)" if child.killed else ""
            child.settle(md, pipeline.name, CANCELED, why)
            print(f"error: {component_id} canceled ({signal_name(stop.signum)})", file=sys.stderr)
            return 128 + stop.signum
        if rc < 0:
            why = f"{component_id} failed: {exit_description(rc)}"
            child.settle(md, pipeline.name, FAILED, why)
            print(f"error: {why}", file=sys.stderr)
            return 1
        child.settle(md, pipeline.name, FAILED, f"{component_id} failed: {exit_description(rc)}")
        return rc if rc in (1, 2) else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def finished_line(status: dict, seconds: float) -> str:
    """``DONE in 1.2s``, ``DONE in 0.1s (cached)`` or ``SKIPPED (why)``: how a component ended."""
    if status["state"] == "SKIPPED":
        return f"SKIPPED ({status.get('reason', '').removeprefix('skipped: ')})"
    return f"DONE in {seconds:.1f}s" + (" (cached)" if status["state"] == "CACHED" else "")


def done_counts(done: dict) -> str:
    """``2 cached`` or ``2 cached, 1 skipped``: of the components that ended well."""
    states = [s["state"] for s in done.values()]
    skipped = states.count("SKIPPED")
    return f"{states.count('CACHED')} cached" + (f", {skipped} skipped" if skipped else "")


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def _prefixed(cid: str, message: str) -> str:
    return message if message.startswith(f"{cid} ") else f"{cid} failed: {message}"


def _status_from_log(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        if line.startswith("STATUS "):
            return json.loads(line[len("STATUS ") :])
    return None


def _error_from_log(text: str, returncode: int) -> str:
    for line in reversed(text.splitlines()):
        if line.startswith("ERROR "):
            return line[len("ERROR ") :]
    tail = [line for line in text.splitlines() if line.strip()][-3:]
    if returncode < 0:  # what it printed last is seldom why it was killed: the signal leads, alone
        return exit_description(returncode) + (
            "\nits last output: " + " | ".join(tail) if tail else ""
        )
    return exit_description(returncode) + (": " + " | ".join(tail) if tail else "")
