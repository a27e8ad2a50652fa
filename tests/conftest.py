"""Test setup: quiet third-party warnings, tests/ helpers importable, shared fixtures."""

import os
import socket
import subprocess
import sys
import time
import warnings

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS_DIR)
# Worker processes (multi_processing, LOOPBACK) import test helpers by module name too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p
)
warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def job_endpoint(tmp_path_factory):
    """Beam's Python job service on a free local port, for PortableRunner tests.

    Use with ``--runner=PortableRunner --job_endpoint=<this>
    --environment_type=LOOPBACK``.
    """
    yield from _job_service(tmp_path_factory, "apache_beam.runners.portability.local_job_service_main")


@pytest.fixture(scope="session")
def parallel_job_endpoint(tmp_path_factory):
    """Conveyor's job service (Beam's, giving each job ``--sdk_worker_parallelism`` workers)."""
    yield from _job_service(tmp_path_factory, "conveyor.beam_utils.job_service")


def _job_service(tmp_path_factory, module: str):
    port = _free_port()
    log = tmp_path_factory.mktemp("job_service") / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"job service exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"job service did not listen on {port}: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    yield f"localhost:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def portable_args(endpoint: str) -> list[str]:
    """Beam flags for the PortableRunner against the local job service, LOOPBACK workers."""
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={endpoint}",
        "--environment_type=LOOPBACK",
    ]


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory):
    """Beam's worker pool (``worker_pool_main``) on a free local port, for EXTERNAL workers.

    The pool starts each SDK worker as ``python -c ...`` found on the PATH, so
    this interpreter's bin directory goes first on it; ``tests/`` is on the
    PYTHONPATH (set above) so workers import the test helpers. Yields
    ``localhost:PORT``; use with :func:`external_args`.
    """
    import signal

    port = _free_port()
    log = tmp_path_factory.mktemp("worker_pool") / "log.txt"
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH")) if p)
    with open(log, "wb") as out:
        # Its own process group, so the workers it spawned go when it goes.
        proc = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
             f"--service_port={port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"worker pool exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"worker pool did not listen on {port}: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    yield f"localhost:{port}"
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def external_args(endpoint: str, pool: str) -> list[str]:
    """Beam flags for the PortableRunner against a job service, workers from a worker pool.

    ``--sdk_worker_parallelism=2`` asks for two SDK workers per worker node;
    Flink's and Spark's job servers honour it, and so does Conveyor's job
    service (the ``parallel_job_endpoint`` fixture). Beam's Python job service
    (the ``job_endpoint`` fixture) does not: it starts one worker per
    environment from the pool, whatever the flags.
    """
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={pool}",
        "--sdk_worker_parallelism=2",
    ]
