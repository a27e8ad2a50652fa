"""Fixtures that bring up the real engines through the code of ``make engines``.

Each engine fixture starts the engine when it is not up and stops at the end of
the session only what it started itself. The Flink fixture also starts a
worker pool of its own for the tests' pipelines: their helper functions live in
``tests/`` (on this session's PYTHONPATH, which the pool inherits), which a
pool started by ``make engines`` does not import.
"""

from __future__ import annotations

import dataclasses

import pytest


@dataclasses.dataclass
class Engine:
    """A running engine: the flags of its args file, and the same flags on the tests' worker pool."""

    args: list[str]
    test_args: list[str]
    loopback_args: list[str]


def _replace_flag(args: list[str], name: str, value: str) -> list[str]:
    return [f"--{name}={value}" if a.startswith(f"--{name}=") else a for a in args]


@pytest.fixture(scope="session")
def flink_engine():
    """The Flink cluster of ``make engines`` (started here when it is not up)."""
    from conveyor.orchestration.engines import common, flink

    before = {name: common.pid_alive(common.read_pid(name)) for name in flink.PROCESSES}
    flink.start()
    started = [name for name, alive in before.items() if not alive]
    pool = "flink-test-worker-pool"
    port = common.free_port()
    common.start_worker_pool(pool, port)
    args = common.read_args("flink")
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
        if len(started) == len(flink.PROCESSES):
            flink.stop()
        else:
            for name in started:
                common.stop_process(name)


#: Tests that send a whole pipeline as many engine jobs (each with its own job-server start) or
#: copy a whole pipeline's artifacts to and from the object store: tens of minutes on 2 cores.
#: ``make test-engines`` (and CI) leaves them out; ``make test-engines-all`` runs them too.
LONG = {
    "test_flights_template_on_the_local_dag_runner_with_components_on_flink",
    "test_flights_template_on_the_local_dag_runner_with_components_on_spark",
    "test_flights_template_with_its_root_on_s3",
}


def pytest_collection_modifyitems(config, items):
    """Marks the :data:`LONG` tests ``engines_long``."""
    for item in items:
        if item.originalname in LONG:
            item.add_marker(pytest.mark.engines_long)
