"""What every engine module shares: the state folder, detached processes, ports,
the Beam args files, the Python SDK worker pool and jars from Maven.

State lives in one folder, ``.engines/`` at the repository root (override with
the environment variable ``CONVEYOR_ENGINES_DIR``)::

    .engines/logs/<process>.log    stdout and stderr of each process started
    .engines/pids/<process>.pid    its pid (the leader of its own process group)
    .engines/<engine>.args         the Beam flags that reach the engine, one a line
    .engines/cache/                jars and distributions (Maven's own go to ~/.m2)
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "EngineError",
    "engines_dir",
    "logs_dir",
    "pids_dir",
    "cache_dir",
    "log_path",
    "log_tail",
    "read_pid",
    "pid_alive",
    "start_process",
    "stop_process",
    "port_open",
    "wait_for_port",
    "free_port",
    "write_args",
    "read_args",
    "args_path",
    "start_worker_pool",
    "fetch_maven",
    "java_executable",
    "JAVA17_OPENS",
]

_REPO_ROOT = Path(__file__).resolve().parents[2]

# The JVM of Java 17 closes these packages; Flink's and Spark's serialisers reach into them.
JAVA17_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang",
        "java.lang.invoke",
        "java.lang.reflect",
        "java.io",
        "java.net",
        "java.nio",
        "java.text",
        "java.time",
        "java.util",
        "java.util.concurrent",
        "java.util.concurrent.atomic",
        "sun.nio.ch",
        "sun.nio.cs",
        "sun.security.action",
        "sun.util.calendar",
    )
] + ["--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED"]


class EngineError(RuntimeError):
    """An engine is missing, did not start, or is not reachable; the message
    names what and how to start it."""


def engines_dir() -> str:
    """The state folder (``$CONVEYOR_ENGINES_DIR`` or ``<repo>/.engines``), created."""
    path = os.environ.get("CONVEYOR_ENGINES_DIR") or str(_REPO_ROOT / ".engines")
    os.makedirs(path, exist_ok=True)
    return path


def _sub(name: str) -> str:
    path = os.path.join(engines_dir(), name)
    os.makedirs(path, exist_ok=True)
    return path


def logs_dir() -> str:
    """``.engines/logs``, created."""
    return _sub("logs")


def pids_dir() -> str:
    """``.engines/pids``, created."""
    return _sub("pids")


def cache_dir() -> str:
    """``.engines/cache``, created."""
    return _sub("cache")


def log_path(name: str) -> str:
    """The log file of process ``name``."""
    return os.path.join(logs_dir(), f"{name}.log")


def log_tail(path: str | None, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _pid_file(name: str) -> str:
    return os.path.join(pids_dir(), f"{name}.pid")


def read_pid(name: str) -> int | None:
    """The pid recorded for process ``name``, or None."""
    try:
        with open(_pid_file(name)) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def start_process(
    name: str, argv: list[str], *, env: dict | None = None, cwd: str | None = None
) -> int:
    """Starts ``argv`` detached, in its own session and process group, with
    stdout and stderr appended to ``logs/<name>.log`` and its pid in
    ``pids/<name>.pid``; returns the pid. A process of that name still running
    is an EngineError (stop it first)."""
    old = read_pid(name)
    if pid_alive(old):
        raise EngineError(f"{name} is already running (pid {old}); stop it first")
    log = open(log_path(name), "ab")
    try:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise EngineError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    finally:
        log.close()
    with open(_pid_file(name), "w") as handle:
        handle.write(str(proc.pid))
    # The child is reaped by whoever waits on it; a detached one left to init when we exit.
    _CHILDREN[proc.pid] = proc
    return proc.pid


_CHILDREN: dict[int, subprocess.Popen] = {}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose only members are zombies counts as gone.
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_process(name: str, timeout: float = 20) -> bool:
    """Stops process ``name`` and its whole group: SIGTERM, then SIGKILL after
    ``timeout`` seconds; removes its pid file. Returns whether anything was running."""
    pid = read_pid(name)
    running = False
    if pid:
        running = _group_alive(pid)
        if running:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                _reap(pid)
                if not _group_alive(pid):
                    break
                time.sleep(0.2)
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                for _ in range(50):
                    _reap(pid)
                    if not _group_alive(pid):
                        break
                    time.sleep(0.1)
        _reap(pid)
    try:
        os.remove(_pid_file(name))
    except FileNotFoundError:
        pass
    return running


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(pid, None)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    what: str,
    log: str | None = None,
    pid: int | None = None,
) -> None:
    """Waits until ``host:port`` accepts connections; raises EngineError naming
    ``what`` and the last lines of ``log`` if it does not in ``timeout``
    seconds or the process ``pid`` died first."""
    deadline = time.monotonic() + timeout
    while True:
        if port_open(host, port, timeout=1.0):
            return
        if pid is not None:
            _reap(pid)
            if not pid_alive(pid):
                raise EngineError(
                    f"{what} exited before listening on {host}:{port}"
                    + (f"; the end of {log}:\n{log_tail(log)}" if log else "")
                )
        if time.monotonic() > deadline:
            raise EngineError(
                f"{what} did not listen on {host}:{port} within {timeout:.0f}s"
                + (f"; the end of {log}:\n{log_tail(log)}" if log else "")
            )
        time.sleep(0.5)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def args_path(engine: str) -> str:
    """``.engines/<engine>.args``."""
    return os.path.join(engines_dir(), f"{engine}.args")


def write_args(engine: str, flags: list[str]) -> str:
    """Writes the Beam flags that reach ``engine``, one a line; returns the path. Owner-only
    (0600): flags may hold credentials (s3proxy's secret key)."""
    path = args_path(engine)
    tmp = path + ".tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("".join(f"{flag}\n" for flag in flags))
    os.replace(tmp, path)
    return path


def read_args(engine: str) -> list[str]:
    """The flags of ``.engines/<engine>.args``; EngineError when the engine was never started."""
    path = args_path(engine)
    if not os.path.exists(path):
        raise EngineError(
            f"{path} does not exist: start the engine with `make engines` "
            f"(or `python -m conveyor.orchestration.engines start {engine}`)"
        )
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip()]


def _worker_boot_script() -> str:
    """An executable that starts one SDK worker with the job's pipeline options
    (:mod:`conveyor.orchestration.engines.sdk_worker_boot`, on this interpreter): the pool
    runs it per worker instead of a bare ``SdkHarness``, which would never get the job's
    S3 or GCS options."""
    path = os.path.join(engines_dir(), "sdk-worker-boot")
    text = (
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -m conveyor.orchestration.engines.sdk_worker_boot "$@"\n'
    )
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.chmod(path + ".tmp", 0o755)
    os.replace(path + ".tmp", path)
    return path


def start_worker_pool(name: str, port: int) -> int:
    """Starts Beam's Python SDK worker pool on 127.0.0.1:``port`` with this
    interpreter (so its workers import Conveyor and the TFX libraries), its
    folder first on PATH; waits until it listens and returns the pid."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # Workers started by the pool inherit this; the project's root importable even when
    # the package is not installed in the interpreter.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_REPO_ROOT.parent), env.get("PYTHONPATH", "")) if p
    )
    argv = [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}",
        f"--container_executable={_worker_boot_script()}",
    ]
    pid = start_process(name, argv, env=env)
    wait_for_port("127.0.0.1", port, 60, f"the Python SDK worker pool {name}", log_path(name), pid)
    return pid


def java_executable() -> str:
    """The ``java`` to run (``$JAVA_HOME/bin/java``, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if not found:
        raise EngineError(
            "java is not installed: install a Java 17 JDK (apt-get install openjdk-17-jdk-headless)"
        )
    return found


def fetch_maven(coords: str, dest_dir: str) -> list[str]:
    """Fetches jars from Maven Central into ``dest_dir`` (cached there and in
    ``~/.m2``) and returns their paths. ``coords`` is either
    ``group:artifact:version[:packaging[:classifier]]`` (that one jar, no
    dependencies) or the path of a small pom (all its runtime dependencies)."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise EngineError("mvn is not installed: install Maven (apt-get install maven)")
    os.makedirs(dest_dir, exist_ok=True)
    if os.path.isfile(coords):
        stamp = os.path.join(dest_dir, ".fetched")
        if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(coords):
            return sorted(glob.glob(os.path.join(dest_dir, "*.jar")))
        argv = [
            mvn,
            "-B",
            "-q",
            "-f",
            coords,
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={os.path.abspath(dest_dir)}",
        ]
    else:
        parts = coords.split(":")
        if len(parts) < 3:
            raise EngineError(f"not Maven coordinates (group:artifact:version): {coords!r}")
        jar = os.path.join(
            dest_dir, f"{parts[1]}-{parts[2]}" + (f"-{parts[4]}" if len(parts) > 4 else "") + ".jar"
        )
        if os.path.exists(jar):
            return [jar]
        stamp = None
        argv = [
            mvn,
            "-B",
            "-q",
            "dependency:copy",
            f"-Dartifact={coords}",
            f"-DoutputDirectory={os.path.abspath(dest_dir)}",
        ]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=dest_dir)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise EngineError(f"mvn could not fetch {coords} ({' '.join(argv[1:])}):\n{tail}")
    if stamp:
        Path(stamp).touch()
        return sorted(glob.glob(os.path.join(dest_dir, "*.jar")))
    return [jar]
