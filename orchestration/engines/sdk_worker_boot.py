"""Starts one Python SDK worker for the engines' worker pool, with the job's pipeline options.

Beam's worker pool (``apache_beam.runners.worker.worker_pool_main``) starts each
worker as ``SdkHarness(control_url).run()``, which never sees the job's pipeline
options: FileSystems then has no S3 (or GCS) settings, and every ``s3://`` read
in that worker fails with "Must provide one of client or options". Given as the
pool's ``--container_executable``, this does what Beam's container boot does
instead: it asks the job's provision service for the worker's pipeline options
and endpoints, then runs ``sdk_worker_main`` (which applies them) in place of
this process. The pool's interpreter already holds Conveyor and the TFX
libraries, so no staged artifact is installed.

Usage (by the pool, per worker)::

    python -m conveyor.orchestration.engines.sdk_worker_boot --id=ID \\
        --provision_endpoint=HOST:PORT [--control_endpoint=...] [--logging_endpoint=...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

__all__ = ["main", "worker_environment"]


def worker_environment(
    worker_id: str, provision_endpoint: str, base: dict, control: str = "", logging: str = ""
) -> dict:
    """The environment ``sdk_worker_main`` reads, from the job's provision service (the
    control and logging endpoints given by the pool where the service names none)."""
    import grpc
    from apache_beam.portability.api import (
        beam_provision_api_pb2,
        beam_provision_api_pb2_grpc,
        endpoints_pb2,
    )
    from google.protobuf import json_format, text_format

    with grpc.insecure_channel(provision_endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        info = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(),
            metadata=[("worker_id", worker_id)],
            timeout=60,
        ).info

    def descriptor(url: str) -> str:
        return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))

    control = info.control_endpoint.url or control
    logging = info.logging_endpoint.url or logging
    if not control:
        raise SystemExit(f"worker {worker_id}: the job named no control endpoint")

    env = dict(base)
    env.update(
        WORKER_ID=worker_id,
        PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
        CONTROL_API_SERVICE_DESCRIPTOR=descriptor(control),
        SEMI_PERSISTENT_DIRECTORY=tempfile.mkdtemp(prefix=f"beam-worker-{worker_id}-"),
    )
    if logging:
        env["LOGGING_API_SERVICE_DESCRIPTOR"] = descriptor(logging)
    return env


def main(argv=None) -> None:
    """Fetches the worker's options and replaces this process with ``sdk_worker_main``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--control_endpoint", default="")
    parser.add_argument("--logging_endpoint", default="")
    args, _ = parser.parse_known_args(argv)
    env = worker_environment(
        args.id, args.provision_endpoint, os.environ, args.control_endpoint, args.logging_endpoint
    )
    # The pool pipes the worker's stdout and never reads it: a full pipe would stall the
    # worker, so its stdout goes where its stderr (the pool's log) goes.
    os.dup2(2, 1)
    argv = [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"]
    os.execve(sys.executable, argv, env)


if __name__ == "__main__":
    main()
