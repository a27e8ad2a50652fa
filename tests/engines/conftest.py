"""Fixtures that bring up the real engines through the code of ``make engines``.

Each engine fixture starts the engine when it is not up and stops at the end of
the session only what it started itself. The fixtures are defined here, once,
so that all test modules share one per session: a fixture imported into two
modules is two fixtures, and the second found the first's worker pool running.
Each also starts a worker pool of its own for the tests' pipelines: their
helper functions live in ``tests/`` (on this session's PYTHONPATH, which the
pool inherits), which a pool started by ``make engines`` does not import.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def engine_up(engine, start_pool):
    """An :class:`Engine` for the engine module ``engine`` (``flink``, ``spark``): started when
    not up, with a worker pool of the tests' own (``start_pool(name, port)``); on the way out
    the pool stops, and of the engine's processes only those started here."""
    from conveyor.orchestration.engines import common

    name = engine.__name__.rsplit(".", 1)[-1]
    before = {p: common.pid_alive(common.read_pid(p)) for p in engine.PROCESSES}
    engine.start()
    started = [p for p, alive in before.items() if not alive]
    pool = f"{name}-test-worker-pool"
    port = common.free_port()
    # A pool left by a test session that was killed before its teardown.
    common.stop_process(pool)
    start_pool(pool, port)
    args = common.read_args(name)
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
        if len(started) == len(engine.PROCESSES):
            engine.stop()
        else:
            for p in started:
                common.stop_process(p)


@pytest.fixture(scope="session")
def flink_engine():
    """The Flink cluster of ``make engines`` (started here when it is not up)."""
    from conveyor.orchestration.engines import common, flink

    with engine_up(flink, common.start_worker_pool) as engine:
        yield engine


@pytest.fixture(scope="session")
def spark_engine():
    """The Spark cluster and job server of ``make engines`` (started here when not up)."""
    from conveyor.orchestration.engines import spark

    with engine_up(spark, spark.start_worker_pool) as engine:
        yield engine


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """s3proxy (an S3-compatible server) started for the test module, its data in a temporary
    folder; stopped at the module's end, with no process left."""
    from conveyor.orchestration.engines import s3proxy

    info = s3proxy.start(data_dir=str(tmp_path_factory.mktemp("s3data")))
    try:
        yield info
    finally:
        s3proxy.stop()
    assert not s3proxy.status()["running"]


#: The test that sends the whole flights pipeline to Spark as one Beam job per component, each
#: starting its own SDK workers: 10 min on 2 cores (601 s on 2026-12-03), which CI's 90 minutes
#: cannot spare. ``make test-engines`` (and CI) leaves it out; ``make test-engines-all`` runs it.
LONG = {
    "test_flights_template_on_the_local_dag_runner_with_components_on_spark",
}


def pytest_collection_modifyitems(config, items):
    """Marks the :data:`LONG` tests ``engines_long``."""
    for item in items:
        if item.originalname in LONG:
            item.add_marker(pytest.mark.engines_long)
