"""``conveyor ui``: serves the UI on ``--host``:``--port`` (127.0.0.1:8765) with uvicorn.

``--metadata-mysql HOST[:PORT]/DB`` shows every pipeline of a MySQL ML Metadata
store too (user and password as for ``conveyor run``:
:mod:`conveyor.orchestration.metadata_flags`). A host other than a loopback address needs an access token (``--token`` or the
``CONVEYOR_UI_TOKEN`` environment variable), checked on every request. ``--home`` sets
``CONVEYOR_HOME`` (the pipeline registry) for the server and the runs it starts.
"""

from __future__ import annotations

import argparse
import os

HELP = "serve a web UI of the pipelines, runs, artifacts and lineage (ML Metadata)"
#: Where ``conveyor ui`` listens unless ``--host``/``--port`` say otherwise.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def command_line(root: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """The command that shows pipeline ``root`` and the URL to open: ``[command, url]``.

    Example::

        command_line("out/demo")  # ["conveyor ui --root out/demo", "http://127.0.0.1:8765/"]
    """
    import shlex

    if not root:
        raise ValueError("root: the pipeline root to show, not empty")
    command = f"conveyor ui --root {shlex.quote(root)}"
    if host != DEFAULT_HOST:
        command += f" --host {shlex.quote(host)}"
    if port != DEFAULT_PORT:
        command += f" --port {port}"
    shown = f"[{host}]" if ":" in host else host
    return [command, f"http://{shown}:{port}/"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``conveyor ui``'s options."""
    parser.add_argument("--home", metavar="DIR", help="CONVEYOR_HOME: the pipeline registry")
    parser.add_argument(
        "--root",
        metavar="DIR",
        action="append",
        default=[],
        help="a pipeline root (with its metadata.sqlite) to show too; repeatable",
    )
    from conveyor.orchestration.metadata_flags import add_metadata_arguments

    add_metadata_arguments(parser, "show the pipelines of ")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default 8765; 0: any free)"
    )
    parser.add_argument(
        "--token",
        metavar="T",
        help="access token every request must carry (default: $CONVEYOR_UI_TOKEN); "
        "required when --host is not a loopback address",
    )


def run(args, beam_args) -> int:
    """Serves the UI until stopped (SIGINT or SIGTERM); usage errors before anything listens."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.orchestration.ui import security

    if beam_args:
        raise UsageError("conveyor ui takes no Beam flags (after --)")
    if args.home:
        os.environ["CONVEYOR_HOME"] = os.path.abspath(args.home)
    token = args.token or os.environ.get(security.TOKEN_ENV) or None
    if not security.is_loopback(args.host) and not token:
        raise UsageError(
            f"--host {args.host} is not a loopback address: give --token T "
            f"(or set {security.TOKEN_ENV}) so that only those with it get in"
        )
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number")
    for root in args.root:
        if not os.path.isdir(root):
            raise UsageError(f"--root {root}: no such folder")
    stores = list(args.root)
    server = _server_store(args)
    if server is not None:
        stores.append(server)

    import uvicorn

    from conveyor.orchestration.ui.app import create_app

    hosts = (
        {"127.0.0.1", "localhost", "[::1]", args.host} if security.is_loopback(args.host) else None
    )
    app = create_app(roots=stores, token=token, hosts=hosts)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    _announce(server, shown, token)
    server.run()
    return 0


def _server_store(args):
    """The ``ConnectionConfig`` of ``--metadata-mysql`` (None without it), opened once here so
    that a server that does not answer is a usage error before anything listens."""
    from conveyor.orchestration.metadata import Metadata
    from conveyor.orchestration.metadata_flags import config_from_args

    config = config_from_args(args)
    if config is not None:
        Metadata(config)
    return config


def _announce(server, host: str, token: str | None) -> None:
    """Prints the URL once the server listens (its real port when ``--port 0``)."""
    startup = server.startup

    async def startup_and_print(sockets=None):
        await startup(sockets=sockets)
        port = (
            server.servers[0].sockets[0].getsockname()[1] if server.servers else server.config.port
        )
        query = "?token=…" if token else ""
        print(f"conveyor ui: http://{host}:{port}/{query}", flush=True)

    server.startup = startup_and_print
