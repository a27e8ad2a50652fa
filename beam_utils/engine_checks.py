"""Clear errors, before a pipeline is sent, when the engine its flags name is not there.

A pipeline sent to a Flink or Spark cluster that is not running, through a job
server jar that does not exist, or to an EXTERNAL worker pool that does not
answer otherwise fails late and obscurely (a job server that retries for a
minute, a gRPC timeout). :func:`check_engine` looks first and raises
:class:`EngineUnavailable` (a :class:`UsageError`, so the command line prints
it and exits 2) naming the flag, the address and how to start the engine.

A worker pool whose interpreter cannot import Conveyor is only seen when the
job runs: the job fails with the worker's ``ModuleNotFoundError`` in its
message. :func:`explain_failure` turns such a failure into an
:class:`EngineUnavailable` that says so; likewise a PortableRunner's job
service (``--job_endpoint``) that never answers, which Beam reports as a bare
gRPC timeout (the endpoint is not probed before: building a pipeline's options
must work without its service).
"""

from __future__ import annotations

import os
import re
import socket
import urllib.request
from collections.abc import Iterable, Sequence

from conveyor.beam_utils.errors import UsageError

__all__ = ["EngineUnavailable", "check_engine", "explain_failure", "flag_value"]

START_HINT = (
    "start it with `make engines` (or `python -m conveyor.orchestration.engines start {engine}`)"
)
# Flink's and Spark's own names for "no cluster: run one inside the job server".
_EMBEDDED = {"[auto]", "[local]", "[collection]"}
_MISSING_MODULE = re.compile(
    r"(?:ModuleNotFoundError|ImportError): No module named '(?P<name>conveyor[\w.]*)'"
)


class EngineUnavailable(UsageError):
    """The engine the Beam flags name is not there; the message says how to start it."""


def flag_value(args: Sequence[str], name: str) -> str | None:
    """The value of ``--name=value`` or ``--name value`` in ``args`` (the last one), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
    return value


def _host_port(address: str) -> tuple[str, int] | None:
    address = re.sub(r"^[a-z]+://", "", address.strip()).split("/", 1)[0]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "localhost", int(port)


def _answers(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _check_jar(args: Sequence[str], flag: str, engine: str) -> None:
    jar = flag_value(args, flag)
    if jar and "://" not in jar and not os.path.isfile(jar):
        raise EngineUnavailable(
            f"--{flag}={jar}: the job server jar does not exist; `make engines` assembles it "
            f"and writes its path to .engines/{engine}.args"
        )


def _check_flink(args: Sequence[str]) -> None:
    master = flag_value(args, "flink_master") or "[auto]"
    if master not in _EMBEDDED:
        address = _host_port(master)
        if address is None:
            raise EngineUnavailable(f"--flink_master={master}: not a host:port address")
        url = f"http://{address[0]}:{address[1]}/overview"
        try:
            with urllib.request.urlopen(url, timeout=5):
                pass
        except OSError as exc:
            raise EngineUnavailable(
                f"the Flink cluster at {master} (--flink_master) is not running "
                f"(its REST API at {url} does not answer: {exc}): {START_HINT.format(engine='flink')}"
            ) from None
    _check_jar(args, "flink_job_server_jar", "flink")


def _check_spark(args: Sequence[str]) -> None:
    master = flag_value(args, "spark_master_url") or "local[4]"
    if master.startswith("spark://"):
        for part in master[len("spark://") :].split(","):
            address = _host_port(part)
            if address is None:
                raise EngineUnavailable(
                    f"--spark_master_url={master}: not a spark://host:port address"
                )
            if not _answers(*address):
                raise EngineUnavailable(
                    f"the Spark master at {master} (--spark_master_url) is not running: "
                    + START_HINT.format(engine="spark")
                )
    _check_jar(args, "spark_job_server_jar", "spark")


def _check_worker_pool(args: Sequence[str], engine: str) -> None:
    if (flag_value(args, "environment_type") or "").upper() != "EXTERNAL":
        return
    config = flag_value(args, "environment_config")
    if not config:
        raise EngineUnavailable(
            "--environment_type=EXTERNAL needs --environment_config=HOST:PORT, the address of "
            "a Python SDK worker pool"
        )
    address = _host_port(config)
    if address is not None and not _answers(*address):
        raise EngineUnavailable(
            f"no Python SDK worker pool answers at {config} (--environment_config, "
            f"--environment_type=EXTERNAL): {START_HINT.format(engine=engine)}; or run the "
            "workers in this process with --environment_type=LOOPBACK"
        )


def check_engine(beam_args: Iterable[str] | None) -> None:
    """Raises :class:`EngineUnavailable` when the flags send the pipeline to a
    Flink or Spark cluster, a job server jar or an EXTERNAL worker pool that is
    not there. Other runners, and Flink's or Spark's embedded modes, pass untouched.

    A PortableRunner's ``--job_endpoint`` is not probed here (building the
    options of such a pipeline must work without its service, as for reading
    its plan); its EXTERNAL worker pool is.
    """
    args = list(beam_args or [])
    runner = (flag_value(args, "runner") or "").rsplit(".", 1)[-1]
    if runner in ("FlinkRunner", "FlinkRunnerV2"):
        _check_flink(args)
        _check_worker_pool(args, "flink")
    elif runner == "SparkRunner":
        _check_spark(args)
        _check_worker_pool(args, "spark")
    elif runner == "PortableRunner":
        _check_worker_pool(args, "flink spark")


def explain_failure(
    exc: BaseException, beam_args: Iterable[str] | None = None
) -> EngineUnavailable | None:
    """An :class:`EngineUnavailable` saying that the SDK workers cannot import
    Conveyor, when the text of the failed job ``exc`` (or of what it was raised
    from) shows that, or that no job service answers at ``--job_endpoint``;
    else None."""
    args = list(beam_args or [])
    endpoint = flag_value(args, "job_endpoint")
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        # The portable runner's wait for a job service that never answers ends in a bare
        # grpc.FutureTimeoutError, without a message.
        if endpoint and type(e).__name__ == "FutureTimeoutError":
            waited = flag_value(args, "job_server_timeout") or "60"
            return EngineUnavailable(
                f"no Beam job service answers at {endpoint} (--job_endpoint) within {waited} s: "
                "start the job server (for Spark, `make engines` starts one and writes its "
                "address to .engines/spark.args), or fix --job_endpoint"
            )
        try:
            text = str(e)
        except Exception:
            text = ""
        found = _MISSING_MODULE.search(text)
        if found:
            where = flag_value(args, "environment_config")
            pool = f"the Python SDK worker pool at {where}" if where else "the SDK workers"
            return EngineUnavailable(
                f"{pool} cannot import {found.group('name')} (No module named "
                f"'{found.group('name')}'): the workers run in an interpreter without Conveyor. "
                "Start the pool with the project's interpreter (`make engines` does), install "
                "Conveyor where the pool runs, or use --environment_type=LOOPBACK"
            )
        e = e.__cause__ or e.__context__
    return None
