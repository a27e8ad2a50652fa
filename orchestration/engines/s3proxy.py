"""An S3-compatible server on loopback: s3proxy (``org.gaul:s3proxy``) with its filesystem backend.

Pipeline roots on shared storage are tested against it: Beam's S3 filesystem
(``apache-beam[aws]``) reaches it with the flags :func:`start` writes to
``.engines/s3proxy.args``::

    python -m conveyor.orchestration.engines start s3proxy
    conveyor run --root s3://conveyor/root ... -- $(cat .engines/s3proxy.args)

It listens on a free port of 127.0.0.1, keeps its objects in a temporary folder
(a bucket is a folder there) and is stopped, its folder removed, by :func:`stop`.
The jars come from Maven Central by ``poms/s3proxy/pom.xml`` into
``.engines/cache/s3proxy-<version>``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile

from conveyor.orchestration.engines import common

__all__ = [
    "DEFAULT_BUCKET",
    "MAIN_CLASS",
    "POM",
    "beam_flags",
    "create_bucket",
    "start",
    "status",
    "stop",
]

POM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "poms", "s3proxy", "pom.xml")
MAIN_CLASS = "org.gaul.s3proxy.Main"
#: The bucket :func:`start` creates unless told others.
DEFAULT_BUCKET = "conveyor"
_NAME = "s3proxy"
_VERSION = "2.6.0"
# Any region: s3proxy ignores it, but boto3 signs with one.
_REGION = "us-east-1"


def _state_path() -> str:
    return os.path.join(common.engines_dir(), f"{_NAME}.json")


def _read_state() -> dict | None:
    try:
        with open(_state_path()) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def beam_flags(endpoint: str, access_key: str, secret_key: str) -> list[str]:
    """The flags that point Beam's S3 filesystem at ``endpoint`` with these credentials (and
    load :mod:`conveyor.beam_utils.s3_empty_files` in every SDK worker)."""
    return [
        f"--s3_endpoint_url={endpoint}",
        f"--s3_access_key_id={access_key}",
        f"--s3_secret_access_key={secret_key}",
        f"--s3_region_name={_REGION}",
        # SDK workers in other processes write empty files to S3 only with this (apache/beam#21369).
        "--beam_plugins=conveyor.beam_utils.s3_empty_files",
    ]


def create_bucket(info: dict, bucket: str) -> None:
    """Creates ``bucket`` on the server :func:`start` returned ``info`` of (through the S3 API)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=info["endpoint"],
        aws_access_key_id=info["access_key"],
        aws_secret_access_key=info["secret_key"],
        region_name=_REGION,
    )
    client.create_bucket(Bucket=bucket)


def start(data_dir: str | None = None, buckets: tuple[str, ...] = (DEFAULT_BUCKET,)) -> dict:
    """Starts s3proxy on a free port of 127.0.0.1, its objects under ``data_dir`` (default: a new
    temporary folder, removed by :func:`stop`), and creates ``buckets``.

    Returns ``{"endpoint", "port", "access_key", "secret_key", "data_dir", "buckets", "args",
    "flags", "pid"}``; ``args`` is ``.engines/s3proxy.args``, the Beam flags one a line.
    Raises EngineError when Java or Maven is missing, the jars cannot be fetched or the
    server does not listen.
    """
    running = status()
    if running.get("running"):
        raise common.EngineError(
            f"s3proxy is already running at {running['endpoint']}; stop it first "
            "(python -m conveyor.orchestration.engines stop s3proxy)"
        )
    java = common.java_executable()
    jars_dir = os.path.join(common.cache_dir(), f"{_NAME}-{_VERSION}")
    common.fetch_maven(POM, jars_dir)
    own_data = data_dir is None
    data_dir = data_dir or tempfile.mkdtemp(prefix="conveyor-s3proxy-")
    os.makedirs(data_dir, exist_ok=True)
    port = common.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    access_key, secret_key = "conveyor", secrets.token_hex(16)
    properties = os.path.join(common.engines_dir(), f"{_NAME}.properties")
    with open(properties, "w") as handle:
        handle.write(
            f"s3proxy.endpoint={endpoint}\n"
            "s3proxy.authorization=aws-v2-or-v4\n"
            f"s3proxy.identity={access_key}\n"
            f"s3proxy.credential={secret_key}\n"
            "jclouds.provider=filesystem-nio2\n"
            # The backend's own login: s3proxy needs one, a local folder checks none.
            "jclouds.identity=local\n"
            "jclouds.credential=local\n"
            f"jclouds.filesystem.basedir={data_dir}\n"
        )
    os.chmod(properties, 0o600)
    argv = [
        java,
        "-cp",
        os.path.join(jars_dir, "*"),
        MAIN_CLASS,
        "--properties",
        properties,
    ]
    # s3proxy's logback reads its level from the environment (DEBUG otherwise: huge logs).
    pid = common.start_process(_NAME, argv, env={**os.environ, "LOG_LEVEL": "info"})
    state = {
        "endpoint": endpoint,
        "port": port,
        "access_key": access_key,
        "secret_key": secret_key,
        "data_dir": data_dir,
        "own_data_dir": own_data,
        "pid": pid,
    }
    with open(_state_path(), "w") as handle:
        json.dump(state, handle)
    try:
        common.wait_for_port("127.0.0.1", port, 60, "s3proxy", common.log_path(_NAME), pid)
        for bucket in buckets:
            create_bucket(state, bucket)
    except BaseException:
        stop()
        raise
    flags = beam_flags(endpoint, access_key, secret_key)
    args = common.write_args(_NAME, flags)
    return {**state, "buckets": list(buckets), "args": args, "flags": flags}


def stop() -> None:
    """Stops s3proxy, removes its args and properties files and the temporary data folder
    :func:`start` made."""
    state = _read_state() or {}
    common.stop_process(_NAME)
    properties = os.path.join(common.engines_dir(), f"{_NAME}.properties")  # holds the secret
    for path in (common.args_path(_NAME), _state_path(), properties):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    if state.get("own_data_dir") and state.get("data_dir"):
        shutil.rmtree(state["data_dir"], ignore_errors=True)


def status() -> dict:
    """``{"running": bool}``, with ``endpoint``, ``pid``, ``data_dir`` and ``args`` when it runs."""
    state = _read_state()
    pid = common.read_pid(_NAME)
    if not state or not common.pid_alive(pid):
        return {"running": False}
    return {
        "running": common.port_open("127.0.0.1", state["port"]),
        "endpoint": state["endpoint"],
        "pid": pid,
        "data_dir": state["data_dir"],
        "args": common.args_path(_NAME),
    }
