"""The Spark worker pool stops the worker an executor let go, never another executor's.

Two executors (two JVMs) number their SDK workers alike, so a StopWorker
request's id can name workers of both. The pool tells them apart by the control
endpoint each was started against: the stopped one's executor closes it. The
workers here are real processes (a stand-in for Beam's boot executable that
sleeps), started through the pool's own StartWorker; the control endpoints are
sockets the test opens and closes.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

pytest.importorskip("apache_beam")

from apache_beam.portability.api import beam_fn_api_pb2, endpoints_pb2  # noqa: E402

from conveyor.orchestration.engines.spark_worker_pool import SharedIdWorkerPool  # noqa: E402


@pytest.fixture()
def pool(tmp_path):
    boot = tmp_path / "boot"
    boot.write_text("#!/bin/sh\nexec sleep 600\n")
    os.chmod(boot, 0o755)
    servicer = SharedIdWorkerPool(use_process=True, container_executable=str(boot), grace=3.0)
    started = []
    yield servicer, started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _endpoint():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, f"localhost:{server.getsockname()[1]}"


def _start(pool, worker_id: str, endpoint: str):
    servicer, started = pool
    request = beam_fn_api_pb2.StartWorkerRequest(
        worker_id=worker_id, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url=endpoint)
    )
    assert not servicer.StartWorker(request, None).error
    process = servicer._worker_processes[worker_id]
    started.append(process)
    return process


def _stop(pool, worker_id: str) -> None:
    servicer, _ = pool
    servicer.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id=worker_id), None)


def _ended(process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return True
        time.sleep(0.1)
    return False


def test_of_two_workers_of_one_id_the_one_whose_executor_let_go_is_stopped(pool):
    server_a, endpoint_a = _endpoint()
    server_b, endpoint_b = _endpoint()
    try:
        a = _start(pool, "6-1", endpoint_a)
        b = _start(pool, "6-1", endpoint_b)
        server_a.close()  # executor A closes its control server and stops its worker
        _stop(pool, "6-1")
        assert _ended(a, 10), "the worker whose endpoint closed was not stopped"
        assert not _ended(b, 4), "the other executor's worker was stopped"
    finally:
        server_a.close()
        server_b.close()


def test_the_only_live_worker_of_an_id_is_not_stopped_while_its_executor_uses_it(pool):
    """The hang this pool fixes: executor A's worker of the id is already gone (its job was
    cancelled) when A's StopWorker comes; the one live worker of that id is executor B's,
    running B's job's task. Stopping it (the only live one) hung that job."""
    server_a, endpoint_a = _endpoint()
    server_b, endpoint_b = _endpoint()
    try:
        a = _start(pool, "6-1", endpoint_a)
        b = _start(pool, "6-1", endpoint_b)
        a.kill()
        a.wait()
        server_a.close()
        _stop(pool, "6-1")
        assert not _ended(b, 5), "executor B's worker, in use, was stopped"
        # B's own StopWorker, once B let it go, stops it.
        server_b.close()
        _stop(pool, "6-1")
        assert _ended(b, 10)
    finally:
        server_a.close()
        server_b.close()
