"""An Apache Flink 1.19 standalone session cluster on loopback, with Beam's
Flink job server and a Python SDK worker pool.

- Flink: the jars of PyPI's ``apache-flink-libraries`` (it has no start
  scripts), a JobManager (``StandaloneSessionClusterEntrypoint``, RPC 6123,
  REST 8081) and a TaskManager with 2 slots (``TaskManagerRunner``), each its
  own JVM, configured by a generated ``.engines/flink/conf/config.yaml``.
- Beam's Flink job server: the shaded ``beam-runners-flink-1.19-job-server``
  jar is not served by the registry here, so it is assembled from its
  unshaded parts (``poms/flink-1.19/pom.xml``) into
  ``.engines/cache/flink-job-server.jar``, a jar whose manifest names the
  driver class, the classpath and the JVM's ``Add-Opens``; the Python
  FlinkRunner starts it with ``java -jar`` from ``--flink_job_server_jar``.
- The Python SDK worker pool on 127.0.0.1:50000 for ``--environment_type=EXTERNAL``.

``start()`` returns when the REST API shows the TaskManager and its free slots.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile

from conveyor.orchestration.engines import common
from conveyor.orchestration.engines.common import EngineError

__all__ = [
    "FLINK_VERSION",
    "REST_PORT",
    "RPC_PORT",
    "WORKER_POOL_PORT",
    "SLOTS",
    "start",
    "stop",
    "status",
    "running_jobs",
    "cancel_jobs",
    "flink_args",
    "job_server_jar",
    "flink_lib",
    "overview",
]

FLINK_VERSION = "1.19.3"
RPC_PORT = 6123
REST_PORT = 8081
WORKER_POOL_PORT = 50000
SLOTS = 2
MASTER = f"localhost:{REST_PORT}"
PROCESSES = ("flink-worker-pool", "flink-taskmanager", "flink-jobmanager")
JOB_SERVER_DRIVER = "org.apache.beam.runners.flink.FlinkJobServerDriver"
_POM = os.path.join(os.path.dirname(__file__), "poms", "flink-1.19", "pom.xml")

# The Flink JVMs here are small: the Python SDK workers, not the JVM, do the work.
_CONFIG = {
    "jobmanager.rpc.address": "localhost",
    "jobmanager.rpc.port": RPC_PORT,
    "jobmanager.bind-host": "127.0.0.1",
    "jobmanager.memory.process.size": "1024m",
    "rest.address": "localhost",
    "rest.bind-address": "127.0.0.1",
    "rest.port": REST_PORT,
    "taskmanager.host": "localhost",
    "taskmanager.bind-host": "127.0.0.1",
    "taskmanager.numberOfTaskSlots": SLOTS,
    "taskmanager.memory.process.size": "2048m",
    # A Beam job is many operators at once; Flink's batch shuffle asks 512 buffers of each by
    # default, more than a small TaskManager has: fewer per partition, more network memory.
    "taskmanager.memory.network.min": "384m",
    "taskmanager.memory.network.max": "384m",
    "taskmanager.network.sort-shuffle.min-buffers": 64,
    "parallelism.default": SLOTS,
    "blob.server.port": "0",
    "web.submit.enable": "false",
    "execution.attached": "true",
}

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = Console
appender.console.name = Console
appender.console.type = Console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
logger.netty.name = org.apache.flink.shaded.netty4
logger.netty.level = WARN
logger.akka.name = org.apache.pekko
logger.akka.level = WARN
"""


def _flink_home() -> str:
    return os.path.join(common.cache_dir(), f"flink-{FLINK_VERSION}")


def flink_lib() -> list[str]:
    """The Flink distribution's jars (``deps/lib``), downloaded from PyPI once."""
    home = _flink_home()
    found = glob.glob(os.path.join(home, "*", "deps", "lib", "flink-dist-*.jar"))
    if not found:
        dl = os.path.join(common.cache_dir(), "dl")
        os.makedirs(dl, exist_ok=True)
        sdist = os.path.join(dl, f"apache-flink-libraries-{FLINK_VERSION}.tar.gz")
        if not os.path.exists(sdist):
            proc = subprocess.run(
                [
                    os.path.join(os.path.dirname(sys.executable), "pip"),
                    "download",
                    "--no-deps",
                    "--no-binary=:all:",
                    "--no-build-isolation",
                    f"apache-flink-libraries=={FLINK_VERSION}",
                    "-d",
                    dl,
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0 or not os.path.exists(sdist):
                raise EngineError(
                    f"could not download apache-flink-libraries=={FLINK_VERSION} from PyPI:\n"
                    + "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
                )
        with tarfile.open(sdist) as tar:
            members = [
                m for m in tar.getmembers() if "/deps/lib/" in m.name or "/deps/bin/" in m.name
            ]
            tar.extractall(home, members=members, filter="data")
        found = glob.glob(os.path.join(home, "*", "deps", "lib", "flink-dist-*.jar"))
    lib = os.path.dirname(found[0])
    # flink-dist first, as Flink's own scripts put it last but log4j must not shadow it.
    return sorted(glob.glob(os.path.join(lib, "*.jar")), key=lambda p: "flink-dist" not in p)


def _bash_java_utils() -> str:
    (jar,) = glob.glob(os.path.join(_flink_home(), "*", "deps", "bin", "bash-java-utils.jar"))
    return jar


def job_server_jar() -> str:
    """The path of the Flink job server jar, assembled on first use (see the module doc)."""
    jar = os.path.join(common.cache_dir(), "flink-job-server.jar")
    parts_dir = os.path.join(common.cache_dir(), "flink-job-server")
    parts = common.fetch_maven(_POM, parts_dir)
    classpath = flink_lib() + parts
    if os.path.exists(jar) and os.path.getmtime(jar) >= max(os.path.getmtime(p) for p in classpath):
        return jar
    opens = " ".join(o.split("=", 1)[1] for o in common.JAVA17_OPENS)
    class_path = " ".join("file:" + os.path.abspath(p) for p in classpath)
    manifest = (
        "Manifest-Version: 1.0\n"
        f"Main-Class: {JOB_SERVER_DRIVER}\n"
        f"Add-Opens: {opens}\n"
        f"Class-Path: {class_path}\n"
    )
    # Manifest lines are at most 72 bytes: continuation lines start with a space.
    wrapped = []
    for line in manifest.splitlines():
        data = line.encode()
        wrapped.append(data[:72])
        data = data[72:]
        while data:
            wrapped.append(b" " + data[:71])
            data = data[71:]
    tmp = jar + ".tmp"
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", b"\r\n".join(wrapped) + b"\r\n\r\n")
    os.replace(tmp, jar)
    return jar


def flink_args(environment: str = "EXTERNAL") -> list[str]:
    """The Beam flags that run a pipeline on this cluster (``EXTERNAL``: on the
    worker pool; ``LOOPBACK``: in the submitting process)."""
    flags = [
        "--runner=FlinkRunner",
        f"--flink_master={MASTER}",
        f"--flink_job_server_jar={job_server_jar()}",
        f"--parallelism={SLOTS}",
        # One SDK worker per slot: Flink's default is one per TaskManager, all slots sharing it.
        f"--sdk_worker_parallelism={SLOTS}",
        f"--environment_type={environment}",
    ]
    if environment == "EXTERNAL":
        flags.append(f"--environment_config=localhost:{WORKER_POOL_PORT}")
    return flags


def _conf_dir() -> str:
    conf = os.path.join(common.engines_dir(), "flink", "conf")
    os.makedirs(conf, exist_ok=True)
    tmp_dir = os.path.join(common.engines_dir(), "flink", "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    config = dict(_CONFIG, **{"io.tmp.dirs": tmp_dir})
    with open(os.path.join(conf, "config.yaml"), "w") as handle:
        for key, value in config.items():
            handle.write(f"{key}: {json.dumps(value) if isinstance(value, str) else value}\n")
    with open(os.path.join(conf, "log4j.properties"), "w") as handle:
        handle.write(_LOG4J)
    return conf


def _resource_params(kind: str, conf: str) -> tuple[list[str], list[str]]:
    """Flink's own computation of a process's JVM memory flags and the matching
    dynamic properties (what its start scripts ask BashJavaUtils for)."""
    cp = os.pathsep.join([_bash_java_utils()] + flink_lib())
    proc = subprocess.run(
        [
            common.java_executable(),
            "-cp",
            cp,
            "org.apache.flink.runtime.util.bash.BashJavaUtils",
            f"GET_{kind}_RESOURCE_PARAMS",
            "--configDir",
            conf,
        ],
        capture_output=True,
        text=True,
    )
    results = [
        line.split(":", 1)[1]
        for line in proc.stdout.splitlines()
        if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")
    ]
    if proc.returncode != 0 or not results:
        raise EngineError(
            f"Flink could not size the {kind} memory from {conf}/config.yaml:\n"
            + "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
        )
    jvm = results[0].split()
    dynamic = results[1].split() if len(results) > 1 else []
    return jvm, dynamic


def _java(conf: str, jvm: list[str], main: str, dynamic: list[str]) -> list[str]:
    return [
        common.java_executable(),
        *jvm,
        *common.JAVA17_OPENS,
        f"-Dlog4j.configurationFile=file:{conf}/log4j.properties",
        f"-Dlog.file={common.logs_dir()}/{main.rsplit('.', 1)[1]}.log",
        "-cp",
        os.pathsep.join(flink_lib()),
        main,
        "--configDir",
        conf,
        *dynamic,
    ]


def overview(timeout: float = 2.0) -> dict | None:
    """The REST API's ``/overview`` (task managers, slots, jobs), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{REST_PORT}/overview", timeout=timeout) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


#: Flink's job states after which a job no longer runs.
_FINISHED_STATES = {"FINISHED", "CANCELED", "FAILED"}


def running_jobs(timeout: float = 10.0) -> list[str]:
    """The ids of the cluster's jobs that have not finished (none when it does not answer)."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{REST_PORT}/jobs/overview", timeout=timeout
        ) as r:
            jobs = json.loads(r.read()).get("jobs", [])
    except (OSError, ValueError):
        return []
    return [job["jid"] for job in jobs if job.get("state") not in _FINISHED_STATES]


def cancel_jobs(timeout: float = 10.0) -> list[str]:
    """Cancels every job of the cluster that has not finished; returns their ids.

    A Beam job on Flink outlives the process that submitted it: a benchmark or a
    test that is stopped leaves its job running (and holding the slots) until
    it is cancelled here.
    """
    cancelled = []
    for jid in running_jobs(timeout):
        request = urllib.request.Request(
            f"http://127.0.0.1:{REST_PORT}/jobs/{jid}?mode=cancel", method="PATCH"
        )
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
            cancelled.append(jid)
        except OSError:
            pass
    return cancelled


def start() -> dict:
    """Starts the JobManager, the TaskManager and the worker pool (those not
    running yet), writes ``.engines/flink.args`` and returns when the cluster
    has its TaskManager and slots."""
    jar = job_server_jar()
    conf = _conf_dir()
    env = dict(os.environ, FLINK_CONF_DIR=conf, FLINK_PLUGINS_DIR=os.path.join(conf, "no-plugins"))
    os.makedirs(env["FLINK_PLUGINS_DIR"], exist_ok=True)
    jm_log = common.log_path("flink-jobmanager")
    if not common.pid_alive(common.read_pid("flink-jobmanager")):
        if common.port_open("127.0.0.1", REST_PORT) or common.port_open("127.0.0.1", RPC_PORT):
            raise EngineError(
                f"ports {RPC_PORT}/{REST_PORT} are taken by a process this project did not start"
            )
        jvm, dynamic = _resource_params("JM", conf)
        argv = _java(
            conf,
            jvm,
            "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
            dynamic,
        )
        pid = common.start_process("flink-jobmanager", argv, env=env, cwd=common.engines_dir())
        common.wait_for_port("127.0.0.1", REST_PORT, 90, "the Flink JobManager", jm_log, pid)
    if not common.pid_alive(common.read_pid("flink-taskmanager")):
        jvm, dynamic = _resource_params("TM", conf)
        argv = _java(conf, jvm, "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", dynamic)
        common.start_process("flink-taskmanager", argv, env=env, cwd=common.engines_dir())
    if not common.pid_alive(common.read_pid("flink-worker-pool")):
        common.start_worker_pool("flink-worker-pool", WORKER_POOL_PORT)
    _wait_for_slots(120)
    args = common.write_args("flink", flink_args())
    return {
        "rest": f"http://localhost:{REST_PORT}",
        "master": MASTER,
        "worker_pool": f"localhost:{WORKER_POOL_PORT}",
        "job_server_jar": jar,
        "args": args,
        "logs": common.logs_dir(),
    }


def _wait_for_slots(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = overview()
        if info and info.get("taskmanagers", 0) >= 1 and info.get("slots-total", 0) >= SLOTS:
            return
        pid = common.read_pid("flink-taskmanager")
        if not common.pid_alive(pid):
            raise EngineError(
                "the Flink TaskManager exited; the end of its log:\n"
                + common.log_tail(common.log_path("flink-taskmanager"))
            )
        time.sleep(1)
    raise EngineError(
        f"the Flink TaskManager did not register {SLOTS} slots within {timeout:.0f}s; "
        "the end of its log:\n" + common.log_tail(common.log_path("flink-taskmanager"))
    )


def stop() -> None:
    """Stops the worker pool, the TaskManager and the JobManager; removes ``.engines/flink.args``."""
    for name in PROCESSES:
        common.stop_process(name, timeout=20)
    try:
        os.remove(common.args_path("flink"))
    except FileNotFoundError:
        pass


def status() -> dict:
    """Which processes run, and the cluster's ``/overview``."""
    return {
        "processes": {name: common.pid_alive(common.read_pid(name)) for name in PROCESSES},
        "overview": overview(),
        "args": common.args_path("flink") if os.path.exists(common.args_path("flink")) else None,
    }
