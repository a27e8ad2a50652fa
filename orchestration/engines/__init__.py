"""The real engines the project runs against on loopback: Apache Flink and
Apache Spark clusters (with Beam's job servers and Python SDK worker pools),
MariaDB for ML Metadata and an S3-compatible server.

Each engine is a module here (``flink``, ``spark``, ``mariadb``, ``s3proxy``)
with ``start() -> dict``, ``stop()`` and ``status() -> dict``; the shared
pieces are in :mod:`conveyor.orchestration.engines.common`. From the shell::

    python -m conveyor.orchestration.engines start flink spark
    conveyor statistics --input F --output O -- $(cat .engines/flink.args)
    python -m conveyor.orchestration.engines stop
"""

from __future__ import annotations

import importlib

__all__ = ["DEFAULT_ENGINES", "engine_module"]

DEFAULT_ENGINES = ("flink", "spark")


def engine_module(name: str):
    """The module of engine ``name``; an EngineError naming it when there is none."""
    from conveyor.orchestration.engines.common import EngineError

    if not name.isidentifier() or name == "common":
        raise EngineError(f"no engine named {name!r}")
    try:
        return importlib.import_module(f"conveyor.orchestration.engines.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"conveyor.orchestration.engines.{name}":
            raise EngineError(
                f"no engine named {name!r}: conveyor/orchestration/engines/{name}.py does not exist"
            ) from exc
        raise
