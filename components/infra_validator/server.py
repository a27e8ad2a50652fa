"""The serving process: a fresh, clean Python process that loads and queries the model.

:func:`sandbox` says how it is started, :func:`validate_once` runs one try of
it within a deadline. The process is this environment's interpreter started as
``python -I -S probe.py REQUEST.json`` in an empty temporary folder (its
working directory, HOME and TMPDIR), with an environment of a few variables
(``PATH``, the locale, ``LD_LIBRARY_PATH``, ``TF_*``, ``CUDA_*``...):

* ``-I``: no ``PYTHON*`` variable (the pipeline's ``PYTHONPATH``), no user
  site-packages, neither the script's folder nor the working directory on
  ``sys.path``;
* ``-S``: no ``site`` module, so no ``.pth`` file runs (editable installs of
  the training code, the pipeline's own finders); the interpreter's
  site-packages folders are added to ``sys.path`` as plain folders, so
  TensorFlow still imports.

So the model is loaded as a server would load it: without the training
code, the modules it imported or the custom ops it registered in the
pipeline's process.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field

#: The environment variables the serving process keeps (and those starting with _KEEP_PREFIXES).
_KEEP = ("PATH", "LANG", "LANGUAGE", "LD_LIBRARY_PATH", "TZ", "OMP_NUM_THREADS", "SYSTEMROOT")
_KEEP_PREFIXES = ("LC_", "TF_", "CUDA_", "NVIDIA_")
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
#: How long after the deadline a serving process this one did not kill ends itself.
_GRACE_SECONDS = 30
#: How much of the serving process's stderr a failure quotes.
_TAIL_LINES = 12


def site_dirs() -> list[str]:
    """This interpreter's site-packages folders (not the user's), as plain sys.path entries."""
    found = []
    paths = sysconfig.get_paths()
    candidates = [paths.get("purelib"), paths.get("platlib")]
    try:
        candidates += site.getsitepackages()
    except AttributeError:  # an old virtualenv's site module
        pass
    for d in candidates:
        if d and os.path.isdir(d) and d not in found:
            found.append(d)
    return found


def clean_environment(workdir: str) -> dict[str, str]:
    """The serving process's environment: a few variables of this one, HOME and TMPDIR in ``workdir``."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP or k.startswith(_KEEP_PREFIXES)}
    env["HOME"] = env["TMPDIR"] = workdir
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def sandbox(workdir: str, script: str, *args: str) -> tuple[list[str], dict[str, str], str]:
    """``(argv, env, cwd)`` to run ``script`` (a file in ``workdir``) in the clean process."""
    return [sys.executable, "-I", "-S", script, *args], clean_environment(workdir), workdir


@dataclass
class Try:
    """What one try gave: its outcome and the serving process's reports.

    ``outcome``: ``passed``; ``failed`` (the model: it did not load, lacks a
    signature or a query raised; trying again gives the same); ``timeout`` or
    ``crashed`` (the process: another try may pass).
    """

    outcome: str
    reason: str
    seconds: float
    events: list[dict] = field(default_factory=list)
    log: str = ""

    def event(self, name: str) -> dict | None:
        return next((e for e in self.events if e.get("event") == name), None)

    def to_json(self) -> dict:
        loaded = self.event("loaded")
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "loading_seconds": round(loaded["seconds"], 3) if loaded else None,
        }


def validate_once(
    model_dir: str,
    tags,
    signature_names,
    requests_file: str | None,
    deadline_seconds: float,
) -> Try:
    """Starts the serving process, waits for its reports until done or the deadline; kills it."""
    workdir = tempfile.mkdtemp(prefix="conveyor-infra-")
    try:
        script = os.path.join(workdir, "probe.py")
        shutil.copyfile(PROBE, script)
        request = os.path.join(workdir, "request.json")
        with open(request, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "model_dir": model_dir,
                    "tags": list(tags),
                    "signature_names": list(signature_names),
                    "requests": requests_file,
                    "site_dirs": site_dirs(),
                    # Killed at the deadline; this is in case this process is killed first.
                    "exit_after_seconds": deadline_seconds + _GRACE_SECONDS,
                },
                f,
            )
        argv, env, cwd = sandbox(workdir, script, request)
        log_path = os.path.join(workdir, "server.log")
        with open(log_path, "wb") as log:
            result = _run(argv, env, cwd, log, deadline_seconds)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            result.log = f.read()
        if result.outcome == "crashed":
            result.reason += _tail(result.log)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(argv, env, cwd, log, deadline_seconds: float) -> Try:
    begin = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,  # its own group: killed with whatever it started
    )
    reports: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            try:
                reports.put(json.loads(line))
            except ValueError:
                pass
        reports.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    events: list[dict] = []
    timed_out = reported = False
    try:
        while True:
            left = begin + deadline_seconds - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            try:
                event = reports.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                break
            events.append(event)
            if event["event"] in ("done", "failed"):
                reported = True
                break
    finally:
        # Timed out or interrupted: killed now; done: given a moment to exit on its own.
        if not reported:
            _kill(proc)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
    seconds = time.monotonic() - begin
    return _verdict(events, timed_out, proc.returncode, deadline_seconds, seconds)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    return (": " + " | ".join(lines[-_TAIL_LINES:])) if lines else ""


def _verdict(events, timed_out, returncode, deadline_seconds, seconds) -> Try:
    last = events[-1] if events else {}
    loaded = next((e for e in events if e["event"] == "loaded"), None)
    kind = last.get("event")
    if kind == "done":
        return Try("passed", "", seconds, events)
    if kind == "failed":
        stage = last["stage"]
        if stage == "start":
            reason = f"TensorFlow does not import in the clean serving process: {last['error']}"
        elif stage == "load":
            reason = f"the model failed to load: {last['error']}"
        elif stage == "signature":
            reason = (
                f"the model has no signature {last['signature']!r} "
                f"(it has: {', '.join(last['signatures']) or 'none'})"
            )
        else:
            reason = (
                f"signature {last['signature']!r} failed on example {last['example']}: "
                f"{last['error']}"
            )
        return Try("failed", reason, seconds, events)
    limit = f"{deadline_seconds:g} s (validation_spec.max_loading_time_seconds)"
    if timed_out:
        if loaded is None:
            reason = f"timed out: the model did not load within {limit}"
        else:
            reason = (
                f"timed out: the model loaded in {loaded['seconds']:.1f} s but the queries "
                f"did not finish within {limit}"
            )
        return Try("timeout", reason, seconds, events)
    stage = "after loading" if loaded else "before the model loaded"
    return Try(
        "crashed",
        f"the serving process exited with status {returncode} {stage}",
        seconds,
        events,
    )
