"""Beam's Python job service, running each job on several SDK workers.

Beam's own local job service (``python -m
apache_beam.runners.portability.local_job_service_main``) runs every job on one
SDK worker per environment, whatever ``--sdk_worker_parallelism`` says: it
calls its in-process runner through the job API, where the runner keeps its
default of one worker. This module serves the same job API with the same
runner, and gives each job as many workers as the job's options ask for
(``--sdk_worker_parallelism``, or ``--direct_num_workers``; 0 means one per
CPU), so a pipeline can be tried on the PortableRunner with several EXTERNAL
workers from a worker pool, as a Flink or Spark job server would run it::

    python -m conveyor.beam_utils.job_service --port 8099 &
    PATH=.venv/bin:$PATH python -m apache_beam.runners.worker.worker_pool_main --service_port=50000 &
    conveyor statistics ... -- --runner=PortableRunner --job_endpoint=localhost:8099 \\
        --environment_type=EXTERNAL --environment_config=localhost:50000 --sdk_worker_parallelism=2

Each stage's input is then divided among the workers, as with
``--direct_running_mode=multi_processing``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import sys
import time

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import fn_runner

_LOG = logging.getLogger(__name__)


def workers_for(options: PipelineOptions) -> int:
    """SDK workers a job asks for: ``--sdk_worker_parallelism``, else
    ``--direct_num_workers`` (0: one per CPU), else 1."""
    parallelism = options.view_as(PortableOptions).sdk_worker_parallelism
    if parallelism:
        return int(parallelism)
    direct = options.view_as(DirectOptions).direct_num_workers
    if direct == 0:
        return multiprocessing.cpu_count()
    return int(direct or 1)


class ParallelBeamJob(local_job_service.BeamJob):
    """A job of Beam's local job service that runs on :func:`workers_for` workers."""

    def _invoke_runner(self):
        self.set_state(beam_job_api_pb2.JobState.RUNNING)
        options = self.pipeline_options()
        runner = fn_runner.FnApiRunner(provision_info=self._provision_info)
        # The runner reads its worker count from the options only when a
        # pipeline object is run; through the job API it must be set here.
        runner._num_workers = workers_for(options)
        _LOG.info("job %s: %d SDK worker(s)", self._job_id, runner._num_workers)
        return runner.run_via_runner_api(self._pipeline_proto, options)


def start(port: int = 0, staging_dir: str | None = None):
    """Starts the service in this process; returns ``(servicer, port)`` (stop with ``servicer.stop()``)."""
    servicer = local_job_service.LocalJobServicer(staging_dir, beam_job_type=ParallelBeamJob)
    return servicer, servicer.start_grpc_server(port)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=0, help="port of the job API (default: any free one)"
    )
    parser.add_argument(
        "--staging_dir", help="where staged artifacts go (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servicer, port = start(args.port, args.staging_dir)
    print(f"Listening for Beam jobs on port {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        servicer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
