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
    port = _free_port()
    log = tmp_path_factory.mktemp("job_service") / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
             "--port", str(port)],
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
