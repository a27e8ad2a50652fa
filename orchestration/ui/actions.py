"""What the UI does besides reading: start a run of a registered pipeline, cancel a run.

A run is started as ``conveyor run create --pipeline-name NAME [--runtime-parameter K=V ...]``
in a process of its own (a new session, so it outlives the request and the server),
its output in ``<root>/.conveyor/ui/<time>-<pid>.log``. A run is canceled by SIGTERM to
its runner's process as ML Metadata recorded it (pid and a start-time token, so a later
process given the same pid is never signalled); the runner then stops its components
and records the run CANCELED.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from conveyor.orchestration.metadata import RUNNING, process_alive

#: A runtime parameter name as the UI accepts it.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class ActionError(ValueError):
    """An action that cannot be done (the API answers 409 or 400 with the message)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def check_parameters(values) -> list[str]:
    """``--runtime-parameter`` arguments from ``{name: value}``; ActionError for a bad name."""
    if values is None:
        return []
    if not isinstance(values, dict):
        raise ActionError("runtime_parameters: must be an object {name: value}", 400)
    args = []
    for name, value in values.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ActionError(f"runtime_parameters: bad name {name!r}", 400)
        if isinstance(value, (dict, list)) or value is None:
            raise ActionError(f"runtime_parameters.{name}: must be a number, string or bool", 400)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--runtime-parameter", f"{name}={text}"]
    return args


def start_run(ref, runtime_parameters: dict | None = None, no_cache: bool = False) -> dict:
    """Starts a run of a registered local or Beam pipeline; returns ``{pid, log, command}``.

    Raises ActionError for a pipeline the UI cannot start (not registered, or run by
    Airflow or Kubeflow) or bad runtime parameters.
    """
    if not ref.startable:
        engine = ref.engine or "not registered"
        raise ActionError(
            f"pipeline {ref.name!r} ({engine}): only registered local or beam pipelines start here"
        )
    cmd = [sys.executable, "-m", "conveyor.orchestration.cli", "run", "create"]
    cmd += ["--pipeline-name", ref.name] + check_parameters(runtime_parameters)
    if no_cache:
        cmd.append("--no-cache")
    log_dir = os.path.join(ref.root, ".conveyor", "ui")
    os.makedirs(log_dir, exist_ok=True)
    log = os.path.join(log_dir, time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _reap_later(proc)
    return {"pid": proc.pid, "log": log, "command": cmd[1:]}


def _reap_later(proc: subprocess.Popen) -> None:
    """Waits for the child on a daemon thread, so it leaves no zombie behind."""
    import threading

    threading.Thread(target=proc.wait, daemon=True).start()


def cancel_run(md, ref, run_id: str) -> dict:
    """Sends SIGTERM to a RUNNING run's runner; ActionError if it is not running here."""
    summary = md.run_summary(ref.name, run_id)
    if summary is None:
        raise ActionError(f"no run {run_id!r} of pipeline {ref.name!r}", 404)
    if summary["state"] != RUNNING:
        raise ActionError(f"run {run_id!r} is {summary['state']}, not RUNNING")
    runner = summary["runner"]
    if not runner:
        raise ActionError(
            f"run {run_id!r} has no runner process recorded (an orchestrator runs it): "
            "cancel it there"
        )
    alive = process_alive(runner)
    if alive is not True:
        where = "is gone" if alive is False else "is on another host"
        raise ActionError(f"run {run_id!r}: its runner (pid {runner.get('pid')}) {where}")
    os.kill(int(runner["pid"]), signal.SIGTERM)
    return {"run_id": run_id, "signal": "SIGTERM", "pid": int(runner["pid"])}
