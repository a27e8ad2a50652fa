"""Where a command finds a pipeline's ML Metadata: ``--metadata-mysql`` and the registry's record.

One form for a MySQL (or MariaDB) store on every command that opens one::

    export CONVEYOR_MYSQL_PASSWORD=...          # never on the command line (ps shows it)
    conveyor run create --pipeline-name flights \\
        --metadata-mysql db.example.org:3306/conveyor --metadata-mysql-user conveyor

``HOST[:PORT]/DATABASE`` (port 3306 if left out); the user is
``--metadata-mysql-user``, else ``$CONVEYOR_MYSQL_USER``, else ``root``; the password
is ``$CONVEYOR_MYSQL_PASSWORD`` (empty if unset). ML Metadata creates the database
if it is missing.

Which store a command uses, first that applies: ``--metadata-mysql`` on the command;
the store ``conveyor pipeline create`` recorded (its ``--metadata-mysql``, or the
pipeline file's own ``metadata_connection_config`` when that is MySQL); the
pipeline's own config; the SQLite file the pipeline file named (TFX's pipelines keep
it outside the root, ``sqlite_metadata_connection_config(path)``), recorded at
``pipeline create``/``update``; SQLite at ``<root>/metadata.sqlite``.
"""

from __future__ import annotations

import argparse
import os
import re

from conveyor.beam_utils.errors import UsageError

__all__ = [
    "MYSQL_PASSWORD_ENV",
    "MYSQL_USER_ENV",
    "add_metadata_arguments",
    "config_from_args",
    "mysql_from_target",
    "parse_mysql_target",
    "record_entry",
    "config_of_record",
    "sqlite_path_of_record",
]

MYSQL_USER_ENV = "CONVEYOR_MYSQL_USER"
MYSQL_PASSWORD_ENV = "CONVEYOR_MYSQL_PASSWORD"
DEFAULT_PORT = 3306
_FORM = "HOST[:PORT]/DATABASE (e.g. 127.0.0.1:3306/conveyor)"
_TARGET = re.compile(r"^(?P<host>\[[^\]/]+\]|[^:/@\s]+)(?::(?P<port>[^/]*))?/(?P<db>[^/\s]+)$")
_DATABASE = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


def add_metadata_arguments(parser: argparse.ArgumentParser, what: str = "") -> None:
    """Adds ``--metadata-mysql`` and ``--metadata-mysql-user`` (``what``: a help prefix)."""
    parser.add_argument(
        "--metadata-mysql",
        metavar="HOST[:PORT]/DB",
        help=f"{what}ML Metadata on this MySQL/MariaDB server instead of SQLite under the "
        f"pipeline root (password: ${MYSQL_PASSWORD_ENV}; database created if missing)",
    )
    parser.add_argument(
        "--metadata-mysql-user",
        metavar="USER",
        help=f"the MySQL user (default: ${MYSQL_USER_ENV}, else root)",
    )


def parse_mysql_target(text: str) -> tuple[str, int, str]:
    """``(host, port, database)`` of ``HOST[:PORT]/DATABASE``; a UsageError naming the form."""
    if "@" in (text or ""):
        raise UsageError(
            f"--metadata-mysql {text!r}: give HOST[:PORT]/DATABASE without a user or password; "
            f"the user goes in --metadata-mysql-user (or ${MYSQL_USER_ENV}), the password in "
            f"${MYSQL_PASSWORD_ENV}"
        )
    m = _TARGET.match((text or "").strip().removeprefix("mysql://"))
    if not m:
        raise UsageError(f"--metadata-mysql {text!r}: not of the form {_FORM}")
    host, port_text, database = m.group("host").strip("[]"), m.group("port"), m.group("db")
    if port_text is None or port_text == "":
        port = DEFAULT_PORT
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise UsageError(f"--metadata-mysql {text!r}: port {port_text!r} is not 1-65535")
    if not _DATABASE.match(database):
        raise UsageError(
            f"--metadata-mysql {text!r}: database {database!r} must be 1-64 letters, digits, "
            "'_' or '$'"
        )
    return host, port, database


def mysql_from_target(target: str, user: str | None = None):
    """The ``ConnectionConfig`` of ``HOST[:PORT]/DATABASE``, user and password as the module
    docstring says."""
    from conveyor.orchestration.metadata import mysql_config

    host, port, database = parse_mysql_target(target)
    user = user or os.environ.get(MYSQL_USER_ENV) or "root"
    return mysql_config(host, port, database, user, os.environ.get(MYSQL_PASSWORD_ENV, ""))


def config_from_args(args) -> object | None:
    """The ``ConnectionConfig`` that ``--metadata-mysql`` names, or None without it."""
    target = getattr(args, "metadata_mysql", None)
    if not target:
        if getattr(args, "metadata_mysql_user", None):
            raise UsageError("--metadata-mysql-user needs --metadata-mysql HOST[:PORT]/DATABASE")
        return None
    return mysql_from_target(target, getattr(args, "metadata_mysql_user", None))


def record_entry(flag_config, pipeline) -> dict | None:
    """What the registry keeps of a pipeline's store (no password): ``{"mysql":
    "host:port/db", "user", "from"}``, ``from`` ``"flag"`` (``--metadata-mysql``) or
    ``"pipeline"`` (its own config, re-read from the file when used); ``{"sqlite": PATH,
    "from": "pipeline"}`` for a SQLite file the pipeline names elsewhere than
    ``<root>/metadata.sqlite``; None for that default."""
    config, origin = flag_config, "flag"
    if config is None:
        config, origin = getattr(pipeline, "metadata_connection_config", None), "pipeline"
    if config is not None and config.HasField("sqlite"):
        path = os.path.abspath(config.sqlite.filename_uri)
        default = os.path.abspath(os.path.join(pipeline.root, "metadata.sqlite"))
        return None if path == default else {"sqlite": path, "from": origin}
    if config is None or not config.HasField("mysql"):
        return None
    m = config.mysql
    host = f"[{m.host}]" if ":" in m.host else m.host
    return {
        "mysql": f"{host}:{m.port or DEFAULT_PORT}/{m.database}",
        "user": m.user,
        "from": origin,
    }


def sqlite_path_of_record(record: dict) -> str:
    """The SQLite file of a registered pipeline whose store is SQLite: the one its file named
    (recorded at ``pipeline create``), else ``<root>/metadata.sqlite``."""
    entry = record.get("metadata") or {}
    return entry.get("sqlite") or os.path.join(record["root"], "metadata.sqlite")


def config_of_record(record: dict, args=None):
    """The ``ConnectionConfig`` a command uses for a registered pipeline: ``--metadata-mysql``
    (``args``), else the recorded MySQL store; None: SQLite, at
    :func:`sqlite_path_of_record`."""
    given = config_from_args(args) if args is not None else None
    if given is not None:
        return given
    entry = record.get("metadata")
    if not entry or "sqlite" in entry:
        return None
    if entry.get("from") == "pipeline":
        from conveyor.orchestration.loader import load_pipeline

        own = load_pipeline(record["pipeline_path"]).metadata_connection_config
        if own is not None and own.HasField("mysql"):
            return own
        raise UsageError(
            f"pipeline {record['name']!r} was registered with ML Metadata on MySQL "
            f"({entry['mysql']}), but {record['pipeline_path']} no longer sets a MySQL "
            "metadata_connection_config: run 'conveyor pipeline update --pipeline-path FILE' "
            "or give --metadata-mysql"
        )
    return mysql_from_target(entry["mysql"], entry.get("user") or None)
