"""The ``spark_engine`` fixture: the Spark cluster of ``make engines``, started when not up.

Like the Flink fixture of ``conftest.py``, it also starts a worker pool of its
own for the tests' pipelines (their helper functions live in ``tests/``, on
this session's PYTHONPATH, which that pool inherits and the pool of ``make
engines`` does not), and stops at the end only what it started itself.
"""

from __future__ import annotations

import pytest

from .conftest import Engine

__all__ = ["spark_engine"]


def _replace_flag(args: list[str], name: str, value: str) -> list[str]:
    return [f"--{name}={value}" if a.startswith(f"--{name}=") else a for a in args]


@pytest.fixture(scope="session")
def spark_engine():
    """The Spark cluster and job server of ``make engines`` (started here when not up)."""
    from conveyor.orchestration.engines import common, spark

    names = spark.PROCESSES
    before = {name: common.pid_alive(common.read_pid(name)) for name in names}
    spark.start()
    started = [name for name, alive in before.items() if not alive]
    pool = "spark-test-worker-pool"
    port = common.free_port()
    spark.start_worker_pool(pool, port)
    args = common.read_args("spark")
    try:
        yield Engine(
            args=args,
            test_args=_replace_flag(args, "environment_config", f"localhost:{port}"),
            loopback_args=[
                a for a in args if not a.startswith(("--environment_type", "--environment_config"))
            ]
            + ["--environment_type=LOOPBACK"],
        )
    finally:
        common.stop_process(pool)
        if len(started) == len(names):
            spark.stop()
        else:
            for name in started:
                common.stop_process(name)
