"""Beam's Python SDK worker pool, safe for several Spark executors sharing it.

Each Spark executor is a JVM of its own that numbers its SDK workers from the
same start, so two executors ask one pool for workers of the same id
("50-1") at the same time. Beam's pool keeps one process per id: the second
start replaces the first in its table, and the first executor's StopWorker
then kills the second executor's worker, whose task waits for it forever
("Still waiting for startup of environment"). This pool keeps every process
started under an id with the control endpoint it was started against, and a
StopWorker stops those of the id whose endpoint has closed (the executor let
them go); the others are another executor's, in use. Killing the only live
worker of the id is not safe either: with two Beam jobs on the shared Spark
application, one job's executor stopping its (dead) worker found the other
job's worker of that id on the other executor, and that job hung.

    python -m conveyor.orchestration.engines.spark_worker_pool --service_port=PORT
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time

from apache_beam.runners.worker import worker_pool_main

__all__ = ["SharedIdWorkerPool", "main"]

_LOGGER = logging.getLogger(__name__)


class SharedIdWorkerPool(worker_pool_main.BeamFnExternalWorkerPoolServicer):
    """A process worker pool that tells apart the workers of one id started by several JVMs.

    A StopWorker request names only the id. Of the live workers of that id, the one to stop
    is the one whose executor has let it go: its control endpoint (the executor's server it
    was started against) stops serving. Each is stopped once its endpoint closes, within
    ``grace`` seconds; one whose endpoint still serves belongs to another executor's
    environment in use (a second Beam job on the shared Spark application, say) and is left
    running: it ends by itself when its executor closes its control channel.
    """

    def __init__(self, *args, grace: float = 30.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_id: dict[str, list[tuple]] = {}
        self._lock = threading.Lock()
        self._grace = grace

    def StartWorker(self, start_worker_request, context):  # noqa: N802 (gRPC's name)
        """Starts a worker as Beam's pool does, remembering it (with its control endpoint)
        beside others of its id."""
        worker_id = start_worker_request.worker_id
        # Under the lock: Beam's pool puts the new process in its table by id, where a second
        # start of the same id at once would replace it before it is read back here.
        with self._lock:
            response = super().StartWorker(start_worker_request, context)
            process = self._worker_processes.get(worker_id)
            if process is not None and not response.error:
                endpoint = start_worker_request.control_endpoint.url
                self._by_id.setdefault(worker_id, []).append((process, endpoint))
        return response

    def StopWorker(self, stop_worker_request, unused_context):  # noqa: N802 (gRPC's name)
        """Stops, in the background, each live worker of this id whose control endpoint
        closes within the grace period; answers at once."""
        from apache_beam.portability.api import beam_fn_api_pb2

        worker_id = stop_worker_request.worker_id
        live = self._prune(worker_id)
        if live:
            threading.Thread(
                target=self._stop_released, args=(worker_id, live), daemon=True
            ).start()
        return beam_fn_api_pb2.StopWorkerResponse()

    def _stop_released(self, worker_id: str, workers: list[tuple]) -> None:
        deadline = time.monotonic() + self._grace
        waiting = list(workers)
        while waiting:
            for worker in list(waiting):
                process, endpoint = worker
                if process.poll() is not None:
                    waiting.remove(worker)
                elif not _serving(endpoint):
                    _LOGGER.info("Stopping worker %s (its control endpoint closed)", worker_id)
                    worker_pool_main.kill_process_gracefully(process)
                    waiting.remove(worker)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for _, endpoint in waiting:
            _LOGGER.info(
                "Worker %s: its control endpoint %s still serves (another executor's "
                "environment); left running",
                worker_id,
                endpoint,
            )
        self._prune(worker_id)

    def _prune(self, worker_id: str) -> list[tuple]:
        """Forgets the ended workers of ``worker_id`` (the id itself when none is left);
        returns the live ones."""
        with self._lock:
            live = [w for w in self._by_id.get(worker_id, []) if w[0].poll() is None]
            if live:
                self._by_id[worker_id] = live
            else:
                self._by_id.pop(worker_id, None)
                self._worker_processes.pop(worker_id, None)
        return live


def _serving(endpoint: str) -> bool:
    """Whether the control endpoint ``host:port`` may still serve: False only when a
    connection to it is refused; an address that does not parse, or a probe that times out,
    counts as serving (the worker is left, not killed on a doubt)."""
    host, _, port = endpoint.rpartition(":")
    try:
        address = (host.strip("[]") or "localhost", int(port))
    except ValueError:
        return True
    try:
        socket.create_connection(address, timeout=2).close()
    except ConnectionRefusedError:
        return False
    except OSError:
        return True
    return True


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
