"""The ``spark_engine`` fixture: the Spark cluster of ``make engines``, started when not up.

Like the Flink fixture of ``conftest.py``, it also starts a worker pool of its
own for the tests' pipelines (their helper functions live in ``tests/``, on
this session's PYTHONPATH, which that pool inherits and the pool of ``make
engines`` does not), and stops at the end only what it started itself.
"""

from __future__ import annotations

import pytest

from .conftest import engine_up

__all__ = ["spark_engine"]


@pytest.fixture(scope="session")
def spark_engine():
    """The Spark cluster and job server of ``make engines`` (started here when not up)."""
    from conveyor.orchestration.engines import spark

    with engine_up(spark, spark.start_worker_pool) as engine:
        yield engine
