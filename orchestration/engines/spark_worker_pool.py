"""Beam's Python SDK worker pool, safe for several Spark executors sharing it.

Each Spark executor is a JVM of its own that numbers its SDK workers from the
same start, so two executors ask one pool for workers of the same id
("50-1") at the same time. Beam's pool keeps one process per id: the second
start replaces the first in its table, and the first executor's StopWorker
then kills the second executor's worker, whose task waits for it forever
("Still waiting for startup of environment"). This pool keeps every process
started under an id and stops one only when the id is not ambiguous; a worker
left running ends by itself when its executor closes its control channel
(which the executor does before StopWorker), and all go when the pool goes.

    python -m conveyor.orchestration.engines.spark_worker_pool --service_port=PORT
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from apache_beam.runners.worker import worker_pool_main

__all__ = ["SharedIdWorkerPool", "main"]

_LOGGER = logging.getLogger(__name__)


class SharedIdWorkerPool(worker_pool_main.BeamFnExternalWorkerPoolServicer):
    """A process worker pool that tells apart the workers of one id started by several JVMs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_id: dict[str, list] = {}
        self._lock = threading.Lock()

    def StartWorker(self, start_worker_request, context):  # noqa: N802 (gRPC's name)
        """Starts a worker as Beam's pool does, remembering it beside others of its id."""
        response = super().StartWorker(start_worker_request, context)
        process = self._worker_processes.get(start_worker_request.worker_id)
        if process is not None:
            with self._lock:
                self._by_id.setdefault(start_worker_request.worker_id, []).append(process)
        return response

    def StopWorker(self, stop_worker_request, unused_context):  # noqa: N802 (gRPC's name)
        """Stops the worker of this id when it is the only live one; otherwise leaves them."""
        from apache_beam.portability.api import beam_fn_api_pb2

        worker_id = stop_worker_request.worker_id
        with self._lock:
            live = [p for p in self._by_id.get(worker_id, []) if p.poll() is None]
            self._by_id[worker_id] = live
            if len(live) == 1:
                self._by_id.pop(worker_id)
                self._worker_processes.pop(worker_id, None)
        if len(live) == 1:
            _LOGGER.info("Stopping worker %s", worker_id)
            worker_pool_main.kill_process_gracefully(live[0])
        elif live:
            _LOGGER.info("Worker id %s is shared by %d workers: none stopped", worker_id, len(live))
        return beam_fn_api_pb2.StopWorkerResponse()


def main(argv: list[str] | None = None) -> None:
    """Serves the pool on ``--service_port`` until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--service_port", type=int, required=True)
    args, _ = parser.parse_known_args(argv)
    address, server = SharedIdWorkerPool.start(use_process=True, port=args.service_port)
    logging.getLogger().setLevel(logging.INFO)
    _LOGGER.info("Started the worker pool at %s", address)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1:])
