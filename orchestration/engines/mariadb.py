"""MariaDB for ML Metadata: a private server on 127.0.0.1, its data in a folder of its own.

It is a non-system instance of Debian's ``mariadb-server`` package (``make
mariadb`` installs it): ``mariadb-install-db`` makes the data folder, ``mariadbd``
serves it with no option file read (``--no-defaults``), on loopback only, and a
user with a random password gets every privilege on the databases named
``conveyor*``, which ML Metadata creates when they are missing. Stopping it
(SIGTERM to its process group) leaves no process behind.

What a started server is, ``.engines/mariadb.json``; the flags that point a
``conveyor`` command at it, ``.engines/mariadb.args``; its user and password as
environment variables, ``.engines/mariadb.env`` (mode 0600)::

    python -m conveyor.orchestration.engines start mariadb
    set -a; . .engines/mariadb.env; set +a
    conveyor run create --pipeline-name flights $(cat .engines/mariadb.args)

Example (the tests' fixture, data in a temporary folder)::

    info = mariadb.start(data_dir=str(tmp_path / "mariadb"))
    config = mysql_config(info["host"], info["port"], "conveyor_test", info["user"],
                          info["password"])
    ...
    mariadb.stop()
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time

from conveyor.orchestration.engines import common
from conveyor.orchestration.engines.common import EngineError

__all__ = ["DATABASE", "USER", "start", "stop", "status", "server_info"]

#: The process name (its log and pid file) and the database the args file names.
NAME = "mariadb"
DATABASE = "conveyor"
#: The user ``start`` creates; it may create and use every database named ``conveyor*``.
USER = "conveyor"
_INSTALL_HINT = (
    "install Debian's MariaDB server (make mariadb, or apt-get update && "
    "apt-get install -y mariadb-server)"
)
# Small enough for a test server beside the engines on a 2-core, shared machine.
_SERVER_FLAGS = [
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--skip-name-resolve",
    "--max-connections=200",
]


def _binary(name: str) -> str:
    for folder in ("", "/usr/sbin", "/usr/bin"):
        found = shutil.which(name, path=folder or None)
        if found:
            return found
    raise EngineError(f"{name} is not installed: {_INSTALL_HINT}")


def _info_path() -> str:
    return os.path.join(common.engines_dir(), f"{NAME}.json")


def server_info() -> dict | None:
    """What :func:`start` recorded of the server (with its password), or None if none was."""
    try:
        with open(_info_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_private(path: str, text: str) -> None:
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _socket_path(data_dir: str) -> str:
    # A Unix socket path holds at most 107 bytes: a deep data folder gets one in /tmp.
    path = os.path.join(data_dir, "mariadbd.sock")
    if len(path.encode()) < 100:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="conveyor-mariadb-"), "mariadbd.sock")


def _install(data_dir: str) -> None:
    """Makes a fresh data folder (root logs in by password, none set, over the socket only)."""
    log = common.log_path(f"{NAME}-install")
    argv = [
        _binary("mariadb-install-db"),
        "--no-defaults",
        f"--datadir={data_dir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--innodb-log-file-size=16M",
    ]
    if os.geteuid() == 0:
        argv.append("--user=root")
    with open(log, "ab") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise EngineError(
            f"mariadb-install-db could not make {data_dir} (exit {proc.returncode}); "
            f"the end of {log}:\n{common.log_tail(log)}"
        )


def _sql(socket: str, statements: str, user: str = "root") -> str:
    """Runs SQL through the server's socket with the ``mariadb`` client; EngineError if it fails."""
    argv = [_binary("mariadb"), "--no-defaults", f"--socket={socket}", f"-u{user}", "-N", "-B"]
    proc = subprocess.run(argv, input=statements, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise EngineError(f"the MariaDB server at {socket} refused SQL: {proc.stderr.strip()}")
    return proc.stdout


def start(
    data_dir: str | None = None,
    port: int | None = None,
    timeout: float = 60,
) -> dict:
    """Starts the server (data in ``data_dir``, default ``.engines/mariadb``; a free port unless
    ``port``), waits until it accepts connections, and makes the user :data:`USER`.

    A folder made by an earlier start is reused with its user and password.
    Returns ``{"host", "port", "user", "database", "data_dir", "socket", "pid", "args",
    "env"}`` (the password is in :func:`server_info` and the ``env`` file, never printed); an
    EngineError names what is missing (the package, a port that never
    opened, with the end of the server's log).
    """
    data_dir = os.path.abspath(data_dir or os.path.join(common.engines_dir(), NAME))
    running = status()
    if running["running"]:
        raise EngineError(
            f"MariaDB is already running (pid {running['pid']}, port {running['port']}); "
            "stop it first: python -m conveyor.orchestration.engines stop mariadb"
        )
    mariadbd = _binary("mariadbd")
    port = int(port or common.free_port())
    if common.port_open("127.0.0.1", port):  # else the wait below would take it for ours
        raise EngineError(
            f"port {port} on 127.0.0.1 is taken by another process: give another port "
            "(or none: a free one is chosen)"
        )
    os.makedirs(data_dir, exist_ok=True)
    secret_path = os.path.join(data_dir, "conveyor-user.json")
    fresh = not os.path.isdir(os.path.join(data_dir, "mysql"))
    if fresh:
        _install(data_dir)
        _write_private(secret_path, json.dumps({"password": secrets.token_urlsafe(18)}))
    try:
        with open(secret_path) as f:
            password = json.load(f)["password"]
    except (OSError, ValueError, KeyError):
        raise EngineError(
            f"{data_dir} holds a MariaDB data folder that Conveyor did not make "
            f"({secret_path} is missing): give an empty folder"
        ) from None
    socket = _socket_path(data_dir)
    argv = [
        mariadbd,
        "--no-defaults",
        f"--datadir={data_dir}",
        f"--socket={socket}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={os.path.join(data_dir, 'mariadbd.pid')}",
        *_SERVER_FLAGS,
    ]
    if os.geteuid() == 0:
        argv.append("--user=root")  # mariadbd refuses to run as root unless told to
    pid = common.start_process(NAME, argv)
    try:
        common.wait_for_port("127.0.0.1", port, timeout, "MariaDB", common.log_path(NAME), pid)
        _wait_for_socket(socket, timeout)
        if fresh:
            _sql(socket, _create_user_sql(password))
    except BaseException:
        stop()
        raise
    info = {
        "host": "127.0.0.1",
        "port": port,
        "user": USER,
        "password": password,
        "database": DATABASE,
        "data_dir": data_dir,
        "socket": socket,
        "pid": pid,
    }
    _write_private(_info_path(), json.dumps(info, indent=2) + "\n")
    del info["password"]
    info["args"] = common.write_args(
        NAME, [f"--metadata-mysql=127.0.0.1:{port}/{DATABASE}", f"--metadata-mysql-user={USER}"]
    )
    info["env"] = _env_path()
    _write_private(info["env"], f"CONVEYOR_MYSQL_USER={USER}\nCONVEYOR_MYSQL_PASSWORD={password}\n")
    return info


def _env_path() -> str:
    return os.path.join(common.engines_dir(), f"{NAME}.env")


def _wait_for_socket(socket: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _sql(socket, "SELECT 1;")
            return
        except EngineError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _create_user_sql(password: str) -> str:
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    lines = []
    for host in ("127.0.0.1", "localhost"):
        lines.append(f"CREATE USER IF NOT EXISTS '{USER}'@'{host}' IDENTIFIED BY '{quoted}';")
        # `conveyor%`: the databases ML Metadata may create (one per test, one per team...).
        lines.append(f"GRANT ALL PRIVILEGES ON `{DATABASE}%`.* TO '{USER}'@'{host}';")
    lines.append("FLUSH PRIVILEGES;")
    return "\n".join(lines) + "\n"


def stop() -> None:
    """Stops the server (SIGTERM: it shuts down cleanly; SIGKILL after 30 s); its data stay."""
    common.stop_process(NAME, timeout=30)
    for path in (_info_path(), common.args_path(NAME), _env_path()):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def status() -> dict:
    """``{"running", "pid", "port", "data_dir", "database", "user"}`` of the server started here
    (no password)."""
    pid = common.read_pid(NAME)
    alive = common.pid_alive(pid)
    info = server_info() or {}
    port = info.get("port")
    return {
        "running": bool(alive and port and common.port_open("127.0.0.1", port)),
        "pid": pid if alive else None,
        "port": port,
        "data_dir": info.get("data_dir"),
        "database": info.get("database"),
        "user": info.get("user"),
    }
