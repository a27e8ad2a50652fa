"""An Apache Spark 3.5 standalone cluster on loopback, with Beam's Spark job server.

What :func:`start` starts, each a process of its own (logs in ``.engines/logs/``):

- ``spark-master``: the master, ``spark://127.0.0.1:7077``, web UI on 8080;
- ``spark-worker-1`` and ``spark-worker-2``: two workers of one core each, web
  UIs on 8091 and 8092 (8081 is Flink's);
- ``spark-worker-pool``: a Python SDK worker pool on 127.0.0.1:50001, for
  ``--environment_type=EXTERNAL`` (the executors ask it for SDK workers; see
  :mod:`conveyor.orchestration.engines.spark_worker_pool`);
- ``spark-job-server``: Beam's ``SparkJobServerDriver`` on a free port, one
  Spark application whose executors stay up across Beam jobs.

Spark is PyPI's ``pyspark`` (its ``spark-class`` and ``jars/``). The job server
runs from a launcher jar built here whose manifest puts pyspark's Spark jars
and Beam's unshaded Spark runner (fetched with Maven from
``poms/spark-3/pom.xml``) on the class path and opens the JDK packages Spark
needs on Java 17. The Beam flags that reach the cluster through it are written
to ``.engines/spark.args``; :func:`beam_args` with ``own_job_server=True``
gives the other way, the Python SparkRunner starting a job server of its own
for each pipeline from ``--spark_job_server_jar`` (slower: a new JVM, Spark
application and executors every time).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from conveyor.orchestration.engines import common
from conveyor.orchestration.engines.common import EngineError

__all__ = [
    "PROCESSES",
    "MASTER_HOST",
    "MASTER_PORT",
    "MASTER_URL",
    "MASTER_UI_PORT",
    "WORKER_UI_PORTS",
    "WORKER_POOL_PORT",
    "PYSPARK_REQUIREMENT",
    "JOB_SERVER_POM",
    "JOB_SERVER_MAIN",
    "spark_home",
    "job_server_jar",
    "start_worker_pool",
    "job_server_properties",
    "beam_args",
    "master_state",
    "executors",
    "start",
    "stop",
    "status",
    "running_jobs",
    "cancel_jobs",
]

MASTER_HOST = "127.0.0.1"
MASTER_PORT = 7077
MASTER_URL = f"spark://{MASTER_HOST}:{MASTER_PORT}"
MASTER_UI_PORT = 8080
WORKER_UI_PORTS = (8091, 8092)
WORKER_CORES = 1
WORKER_MEMORY = "2g"
WORKER_POOL_PORT = 50001
PYSPARK_REQUIREMENT = "pyspark==3.5.3"
JOB_SERVER_POM = str(Path(__file__).resolve().parent / "poms" / "spark-3" / "pom.xml")
JOB_SERVER_MAIN = "org.apache.beam.runners.spark.SparkJobServerDriver"
#: The Beam release of the Java runner in JOB_SERVER_POM (see the note there).
JOB_SERVER_BEAM_VERSION = "2.62.0"

_MASTER = "spark-master"
_WORKERS = tuple(f"spark-worker-{i}" for i in range(1, len(WORKER_UI_PORTS) + 1))
_POOL = "spark-worker-pool"
_JOB_SERVER = "spark-job-server"
PROCESSES = (_JOB_SERVER, _POOL, *_WORKERS[::-1], _MASTER)  # the order they are stopped in


def spark_home() -> str:
    """The folder of the installed pyspark (SPARK_HOME: ``bin/spark-class``, ``jars/``)."""
    try:
        import pyspark
    except ImportError as exc:
        raise EngineError(
            f"pyspark is not installed: pip install {PYSPARK_REQUIREMENT} "
            "(the Spark standalone cluster runs from its spark-class and jars)"
        ) from exc
    home = os.path.dirname(os.path.abspath(pyspark.__file__))
    if not os.path.exists(os.path.join(home, "bin", "spark-class")):
        raise EngineError(
            f"{home} has no bin/spark-class: reinstall pyspark ({PYSPARK_REQUIREMENT})"
        )
    return home


def _spark_dir(*parts: str) -> str:
    path = os.path.join(common.engines_dir(), "spark", *parts)
    os.makedirs(path, exist_ok=True)
    return path


def _spark_env(home: str) -> dict:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=home,
        # Binds the web UIs and block managers to loopback too, not only the RPC ports.
        SPARK_LOCAL_IP=MASTER_HOST,
        SPARK_LOG_DIR=_spark_dir("logs"),
        SPARK_LOCAL_DIRS=_spark_dir("local"),
        SPARK_CONF_DIR=_spark_dir("conf"),
        SPARK_NO_DAEMONIZE="1",
    )
    java = common.java_executable()
    env.setdefault("JAVA_HOME", str(Path(os.path.realpath(java)).parents[1]))
    return env


# Libraries both ship where Beam's newer one must win: Spark's Guava 14 and Gson 2.2 lack
# methods Beam's GCS options call (Spark itself uses a relocated Guava).
_BEAM_WINS = frozenset({"guava", "gson"})
# Two different artifacts of one name (JetBrains' and Android's): both stay.
_BOTH = frozenset({"annotations"})


def _manifest_line(key: str, value: str) -> str:
    # A manifest line holds at most 72 bytes; longer ones go on with lines that start with a space.
    raw = f"{key}: {value}".encode()
    chunks = [raw[:72]] + [raw[i : i + 71] for i in range(72, len(raw), 71)]
    return "\r\n ".join(c.decode() for c in chunks) + "\r\n"


def _jar_name(path: str) -> str:
    """A jar's artifact name without its version: ``jackson-core-2.15.2.jar`` -> ``jackson-core``."""
    stem = os.path.basename(path)[: -len(".jar")]
    parts = stem.split("-")
    for i, part in enumerate(parts):
        if part[:1].isdigit():
            return "-".join(parts[:i])
    return stem


def job_server_jar() -> str:
    """The launcher jar of Beam's Spark job server, built (and its jars fetched) when missing.

    ``java -jar`` of it runs :data:`JOB_SERVER_MAIN` with pyspark's Spark jars
    first on the class path, then those of Beam's runner that Spark does not
    ship already (Spark's own versions of shared libraries win, as they do under
    spark-submit), and with the JDK packages Spark needs opened.
    """
    home = spark_home()
    lib = os.path.dirname(_lib_dir())
    beam_jars = common.fetch_maven(JOB_SERVER_POM, _lib_dir())
    spark_jars = sorted(str(p) for p in Path(home, "jars").glob("*.jar"))
    shipped = {_jar_name(p).removesuffix("_2.12") for p in spark_jars} - _BEAM_WINS - _BOTH
    spark_jars = [p for p in spark_jars if _jar_name(p) not in _BEAM_WINS]
    classpath = spark_jars + [p for p in beam_jars if _jar_name(p) not in shipped]
    if not any(os.path.basename(p).startswith("beam-runners-spark-3-") for p in classpath):
        raise EngineError(
            f"Beam's Spark runner jar is missing from {lib}/lib: delete that folder and run "
            "`python -m conveyor.orchestration.engines start spark` again"
        )
    opens = " ".join(o.split("=", 1)[1].rsplit("=", 1)[0] for o in common.JAVA17_OPENS)
    manifest = (
        "Manifest-Version: 1.0\r\n"
        + _manifest_line("Main-Class", JOB_SERVER_MAIN)
        + _manifest_line("Add-Opens", opens)
        + _manifest_line("Class-Path", " ".join(Path(p).as_uri() for p in classpath))
        + "\r\n"
    )
    jar = os.path.join(lib, f"beam-runners-spark-3-job-server-{JOB_SERVER_BEAM_VERSION}.jar")
    if os.path.exists(jar):
        with zipfile.ZipFile(jar) as existing:
            if existing.read("META-INF/MANIFEST.MF").decode() == manifest:
                return jar
    tmp = jar + ".tmp"
    with zipfile.ZipFile(tmp, "w") as out:
        out.writestr("META-INF/MANIFEST.MF", manifest)
    os.replace(tmp, jar)
    return jar


def start_worker_pool(name: str, port: int) -> int:
    """Starts a Python SDK worker pool for Spark on 127.0.0.1:``port`` and returns its pid.

    As :func:`common.start_worker_pool` (this interpreter, its folder first on
    PATH, the project importable), but the pool is
    :mod:`conveyor.orchestration.engines.spark_worker_pool`: Spark's executors,
    several JVMs, give their SDK workers the same ids, which Beam's own pool
    mixes up (it stopped one executor's worker when the other's ended).
    """
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    root = str(Path(__file__).resolve().parents[2].parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    argv = [
        sys.executable,
        "-m",
        "conveyor.orchestration.engines.spark_worker_pool",
        f"--service_port={port}",
    ]
    pid = common.start_process(name, argv, env=env)
    common.wait_for_port(
        "127.0.0.1", port, 60, f"the Python SDK worker pool {name}", common.log_path(name), pid
    )
    return pid


def _lib_dir() -> str:
    return os.path.join(common.cache_dir(), f"spark-3-job-server-{JOB_SERVER_BEAM_VERSION}", "lib")


def job_server_properties() -> list[str]:
    """The JVM system properties Beam's Spark job server needs here (Spark reads ``spark.*``).

    The driver binds to loopback; executors put Beam's Guava (and Gson) before
    the Guava 14 of Spark's own class path, as the driver does.
    """
    first = sorted(
        str(p)
        for p in Path(_lib_dir()).glob("*.jar")
        if _jar_name(str(p)) in _BEAM_WINS | {"failureaccess"}
    )
    return [
        f"-Dspark.driver.host={MASTER_HOST}",
        f"-Dspark.driver.bindAddress={MASTER_HOST}",
        "-Dspark.executor.extraClassPath=" + os.pathsep.join(first),
    ]


def beam_args(
    jar: str | None = None,
    environment: str = "EXTERNAL",
    *,
    job_endpoint: str | None = None,
    own_job_server: bool = False,
) -> list[str]:
    """The Beam flags that run a pipeline on this cluster.

    By default through the running job server at ``job_endpoint``; with
    ``own_job_server`` the Python SparkRunner starts one from ``jar`` for the
    pipeline. ``environment`` EXTERNAL: SDK workers from the worker pool beside
    the Spark workers; LOOPBACK: in the submitting Python process (one machine).
    """
    if own_job_server:
        flags = [
            "--runner=SparkRunner",
            f"--spark_master_url={MASTER_URL}",
            f"--spark_job_server_jar={jar or job_server_jar()}",
        ] + [f"--job_server_jvm_properties={p}" for p in job_server_properties()]
    else:
        if not job_endpoint:
            raise EngineError("beam_args needs the job_endpoint of the running Spark job server")
        flags = ["--runner=PortableRunner", f"--job_endpoint={job_endpoint}"]
    flags.append(f"--environment_type={environment}")
    if environment == "EXTERNAL":
        flags.append(f"--environment_config=localhost:{WORKER_POOL_PORT}")
    # Not --environment_cache_millis: it keeps SDK workers between tasks, but the cache closes
    # them that long after they started even mid-bundle (a 30 s one failed the orchestrating
    # bundle of the BeamDagRunner with "CANCELLED: client cancelled").
    return flags


def _start_job_server(jar: str, env: dict) -> str:
    port = common.free_port()
    artifacts = _spark_dir("artifacts")
    argv = [
        common.java_executable(),
        *job_server_properties(),
        # One Spark application for every Beam job: executors, their fetched jars and the
        # JVMs' warm-up are paid once, not per pipeline (Beam's SparkContextFactory reads it).
        "-Dbeam.spark.test.reuseSparkContext=true",
        "-jar",
        jar,
        "--spark-master-url",
        MASTER_URL,
        "--job-host",
        "localhost",
        "--job-port",
        str(port),
        "--artifact-port",
        "0",
        "--expansion-port",
        "0",
        "--artifacts-dir",
        artifacts,
    ]
    pid = common.start_process(_JOB_SERVER, argv, env=env)
    common.wait_for_port(
        "127.0.0.1", port, 120, "Beam's Spark job server", common.log_path(_JOB_SERVER), pid
    )
    with open(os.path.join(_spark_dir(), "job_endpoint"), "w") as handle:
        handle.write(f"localhost:{port}")
    return f"localhost:{port}"


def _job_endpoint() -> str | None:
    if not common.pid_alive(common.read_pid(_JOB_SERVER)):
        return None
    try:
        with open(os.path.join(_spark_dir(), "job_endpoint")) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _beam_jobs(timeout: float, cancel: bool, strict: bool = False) -> list[str] | None:
    """The Beam jobs of the running job server that have not finished (cancelled first when
    ``cancel``); none when the job server is down. ``strict``: None when the job server did
    not answer (busy, say), rather than none."""
    endpoint = _job_endpoint()
    if not endpoint:
        return []
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    state = beam_job_api_pb2.JobState
    done = {state.DONE, state.FAILED, state.CANCELLED, state.DRAINED, state.UPDATED}
    found = []
    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        try:
            for job in stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=timeout).job_info:
                if job.state in done:
                    continue
                if cancel:
                    request = beam_job_api_pb2.CancelJobRequest(job_id=job.job_id)
                    stub.Cancel(request, timeout=timeout)
                found.append(job.job_id)
        except grpc.RpcError:
            if strict:
                return None
    return found


def _log_marks(job_ids: list[str]) -> tuple[set[str], set[str]]:
    """Of ``job_ids``, those the job server's log (since its last start) shows running on
    Spark ("Running job"), and those it shows ended (finished, or "Error during job
    invocation"). A cancelled job whose Spark job was killed logs no end."""
    running: set[str] = set()
    ended: set[str] = set()
    try:
        with open(common.log_path(_JOB_SERVER), errors="replace") as handle:
            for line in handle:
                if line.startswith("=== "):
                    running.clear()
                    ended.clear()
                elif "Running job " in line:
                    running.update(j for j in job_ids if j in line)
                elif " finished." in line or "Error during job invocation " in line:
                    ended.update(j for j in job_ids if j in line)
    except OSError:
        return set(job_ids), set(job_ids)
    return running, ended


def _spark_jobs(state: str = "running", ui: str | None = None) -> list[int]:
    """The ids of the job server's Spark application's jobs in ``state`` (its UI's REST API,
    at ``ui`` when the caller has found it already)."""
    ui = ui or _driver_ui()
    if not ui or not common.pid_alive(common.read_pid(_JOB_SERVER)):
        return []
    try:
        app = _get_json(f"{ui}/api/v1/applications")[0]["id"]
        jobs = _get_json(f"{ui}/api/v1/applications/{app}/jobs?status={state}")
    except (OSError, urllib.error.URLError, ValueError, IndexError, KeyError):
        return []
    return [job["jobId"] for job in jobs]


def running_jobs(timeout: float = 10.0) -> list[str]:
    """What runs on the cluster: the job server's unfinished Beam jobs by id, and the Spark
    jobs running in its application as ``spark-job-N``."""
    return _beam_jobs(timeout, cancel=False) + [f"spark-job-{i}" for i in _spark_jobs()]


def cancel_jobs(timeout: float = 10.0, end_timeout: float = 120.0) -> list[str]:
    """Cancels every Beam job of the running job server that has not finished, and waits
    (up to ``end_timeout`` seconds) until the job server has stopped running them; returns
    their ids (none when the job server is down).

    The job server runs a job to its end whether or not the process that
    submitted it is still there; this is how a stopped benchmark or test frees
    the cluster. Cancelling marks the Beam job CANCELLED, but the job server
    lets the Spark jobs it submitted run on (its Spark application is shared by
    every job), and a job cancelled while it was starting runs its pipeline
    once started: so the Spark jobs that run while no live Beam job does are
    killed (a killed Spark job ends its pipeline; such Spark jobs left by an
    earlier cancel are killed too) until every cancelled job has ended, or
    started on Spark and run no Spark job for ``settle`` seconds, or has not
    started on Spark ``start_grace`` seconds after it was cancelled.
    """
    cancelled = _beam_jobs(timeout, cancel=True)
    # Nothing cancelled now: one pass, for Spark jobs an earlier cancel left running.
    _end_cancelled(cancelled, timeout, end_timeout if cancelled else 0.0)
    return cancelled


def _end_cancelled(
    job_ids: list[str],
    timeout: float,
    end_timeout: float,
    settle: float = 20.0,
    start_grace: float = 30.0,
) -> None:
    began = time.monotonic()
    deadline = began + end_timeout
    quiet_since = began
    ui = None
    while True:
        ui = ui or _driver_ui()  # none until the first job's Spark application is up
        jobs = _spark_jobs(ui=ui) if ui else []
        if jobs:
            quiet_since = time.monotonic()
            live = _beam_jobs(timeout, cancel=False, strict=True)
            if live == []:  # a live job's work is not ours to kill, nor is it when unsure
                for job in jobs:
                    request = urllib.request.Request(
                        f"{ui}/jobs/job/kill/?id={job}", data=b"", method="POST"
                    )
                    try:
                        urllib.request.urlopen(request, timeout=5).close()
                    except OSError:
                        pass
        running, ended = _log_marks(job_ids)
        waiting = set(job_ids) - ended
        never_started = time.monotonic() - began >= start_grace
        if waiting <= running or never_started:
            # Each left has started on Spark (or will not): from then on, quiet means ended.
            if time.monotonic() - quiet_since >= (settle if waiting or jobs else 0):
                return
        else:
            quiet_since = time.monotonic()
        if time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _get_json(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def master_state() -> dict | None:
    """The master's ``/json`` state (status, aliveworkers, workers, ...), or None when down."""
    try:
        return _get_json(f"http://{MASTER_HOST}:{MASTER_UI_PORT}/json/")
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _driver_ui() -> str | None:
    # Spark logs the port of the application's UI (4040, or the next free one); the last
    # start of the job server's log is the one that counts.
    found = None
    try:
        with open(common.log_path(_JOB_SERVER), errors="replace") as handle:
            for line in handle:
                if line.startswith("=== "):
                    found = None
                elif "Successfully started service 'SparkUI' on port " in line:
                    port = line.rsplit(" on port ", 1)[1].strip().rstrip(".")
                    found = f"http://{MASTER_HOST}:{port}"
    except OSError:
        return None
    return found


def executors() -> dict[str, dict]:
    """The executors of the job server's Spark application, by id (``driver``
    left out): host, totalTasks, completedTasks, ... from Spark's REST API;
    empty before the first job or when the job server is down."""
    ui = _driver_ui()
    if not ui or not common.pid_alive(common.read_pid(_JOB_SERVER)):
        return {}
    try:
        apps = _get_json(f"{ui}/api/v1/applications")
        if not apps:
            return {}
        found = _get_json(f"{ui}/api/v1/applications/{apps[0]['id']}/executors")
    except (OSError, urllib.error.URLError, ValueError):
        return {}
    return {e["id"]: e for e in found if e.get("id") != "driver"}


def _wait_for_workers(count: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = master_state()
        if state and state.get("status") == "ALIVE" and state.get("aliveworkers", 0) >= count:
            return state
        for name in _WORKERS:
            if not common.pid_alive(common.read_pid(name)):
                raise EngineError(
                    f"the Spark worker {name} exited; the end of {common.log_path(name)}:\n"
                    + common.log_tail(common.log_path(name))
                )
        if time.monotonic() > deadline:
            raise EngineError(
                f"the Spark master did not show {count} ALIVE workers within {timeout:.0f}s "
                f"(it shows {state and state.get('aliveworkers')}); see "
                + ", ".join(common.log_path(n) for n in (_MASTER, *_WORKERS))
            )
        time.sleep(0.5)


def _check_ports_free() -> None:
    busy = [
        port
        for port in (MASTER_PORT, MASTER_UI_PORT, *WORKER_UI_PORTS, WORKER_POOL_PORT)
        if common.port_open(MASTER_HOST, port)
    ]
    if busy:
        raise EngineError(
            f"ports {busy} on {MASTER_HOST} are taken by something that is not this project's "
            "Spark (no pid file of it): stop that, or `python -m conveyor.orchestration.engines "
            "stop spark` if it is a Spark left from before"
        )


def start() -> dict:
    """Starts the master, two workers and the worker pool (what is already up is kept),
    waits until the master shows both workers ALIVE, writes ``.engines/spark.args``."""
    home = spark_home()
    jar = job_server_jar()
    if not any(common.pid_alive(common.read_pid(n)) for n in PROCESSES):
        _check_ports_free()
    env = _spark_env(home)
    spark_class = os.path.join(home, "bin", "spark-class")
    try:
        if not common.pid_alive(common.read_pid(_MASTER)):
            pid = common.start_process(
                _MASTER,
                [
                    spark_class,
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    MASTER_HOST,
                    "--port",
                    str(MASTER_PORT),
                    "--webui-port",
                    str(MASTER_UI_PORT),
                ],
                env=env,
            )
            log = common.log_path(_MASTER)
            common.wait_for_port(MASTER_HOST, MASTER_PORT, 90, "the Spark master", log, pid)
            common.wait_for_port(MASTER_HOST, MASTER_UI_PORT, 60, "the Spark master UI", log, pid)
        for name, ui_port in zip(_WORKERS, WORKER_UI_PORTS):
            if common.pid_alive(common.read_pid(name)):
                continue
            work_dir = _spark_dir(name)
            common.start_process(
                name,
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    MASTER_URL,
                    "--host",
                    MASTER_HOST,
                    "--cores",
                    str(WORKER_CORES),
                    "--memory",
                    WORKER_MEMORY,
                    "--webui-port",
                    str(ui_port),
                    "--work-dir",
                    work_dir,
                ],
                env=env,
            )
        state = _wait_for_workers(len(_WORKERS), 120)
        if not common.pid_alive(common.read_pid(_POOL)):
            start_worker_pool(_POOL, WORKER_POOL_PORT)
        endpoint = _job_endpoint() or _start_job_server(jar, env)
    except BaseException:
        stop()
        raise
    args = common.write_args("spark", beam_args(jar, job_endpoint=endpoint))
    return {
        "master": MASTER_URL,
        "master_ui": f"http://{MASTER_HOST}:{MASTER_UI_PORT}",
        "workers": [w["id"] for w in state.get("workers", []) if w.get("state") == "ALIVE"],
        "worker_uis": [f"http://{MASTER_HOST}:{p}" for p in WORKER_UI_PORTS],
        "worker_pool": f"localhost:{WORKER_POOL_PORT}",
        "job_endpoint": endpoint,
        "job_server_jar": jar,
        "args": args,
    }


def stop() -> None:
    """Stops the job server, the worker pool, the workers and the master; removes
    ``.engines/spark.args``."""
    for name in PROCESSES:
        common.stop_process(name)
    for path in (common.args_path("spark"), os.path.join(_spark_dir(), "job_endpoint")):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    # Executors' scratch files of finished applications; the logs stay.
    for name in _WORKERS:
        shutil.rmtree(os.path.join(common.engines_dir(), "spark", name), ignore_errors=True)


def status() -> dict:
    """Which of the processes run, and what the master reports."""
    state = master_state()
    return {
        "processes": {n: common.pid_alive(common.read_pid(n)) for n in PROCESSES[::-1]},
        "master": MASTER_URL,
        "master_status": state and state.get("status"),
        "alive_workers": state and state.get("aliveworkers"),
        "job_endpoint": _job_endpoint(),
        "args": common.args_path("spark") if os.path.exists(common.args_path("spark")) else None,
    }
