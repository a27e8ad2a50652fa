"""TFX's ``tfx.orchestration.metadata``: ML Metadata connection configs for a pipeline.

Example::

    from conveyor import tfx

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config("out/metadata.db")
    pipeline = tfx.dsl.Pipeline(pipeline_name="penguins", pipeline_root="out/penguins",
                                components=[...], metadata_connection_config=config)
"""

from __future__ import annotations

import os

# ConnectionConfigType (ML Metadata's ConnectionConfig) is there too, imported on first use.
__all__ = [
    "mysql_metadata_connection_config",
    "sqlite_metadata_connection_config",
]


def sqlite_metadata_connection_config(metadata_db_uri: str):
    """An ML Metadata ``ConnectionConfig`` for the SQLite file ``metadata_db_uri`` (made if
    missing; a relative path is taken from the current folder and kept absolute, so the
    components' processes and exported DAGs find the same store)."""
    from conveyor.orchestration.metadata import sqlite_config

    if not metadata_db_uri or not isinstance(metadata_db_uri, str):
        raise ValueError(
            f"sqlite_metadata_connection_config: metadata_db_uri is a file path, "
            f"not {metadata_db_uri!r}"
        )
    return sqlite_config(os.path.abspath(metadata_db_uri))


def mysql_metadata_connection_config(
    host: str, port: int, database: str, username: str, password: str
):
    """An ML Metadata ``ConnectionConfig`` for a MySQL server, with TFX's arguments
    (Conveyor's :func:`conveyor.orchestration.metadata.mysql_config`: a bad host, port or
    database is a ValueError naming it)."""
    from conveyor.orchestration.metadata import mysql_config

    return mysql_config(host, port, database, username, password)


def __getattr__(name: str):
    if name == "ConnectionConfigType":
        from ml_metadata.proto import metadata_store_pb2

        return metadata_store_pb2.ConnectionConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
