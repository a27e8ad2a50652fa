"""Test setup: quiet third-party warnings, tests/ helpers importable, shared fixtures and helpers.

Helpers that tests import (``from conftest import ...``): :func:`run_conveyor` and
:func:`run_conveyor_in_process` (the command line), :func:`job_service`,
:func:`portable_args` and :func:`external_args` (the PortableRunner). Fixtures:
``conveyor`` and ``conveyor_env`` (the command line in a test's own
CONVEYOR_HOME), ``job_endpoint``, ``parallel_job_endpoint``, ``worker_pool``.
Tests that take long are marked ``slow`` here (:data:`SLOW`), not in their files.
"""

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS_DIR)
# Worker processes (multi_processing, LOOPBACK) import test helpers by module name too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p
)
warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# -- services on a local port: Beam's job service, its worker pool --------------


@contextlib.contextmanager
def local_service(
    argv: list[str], log_path, *, env=None, own_group: bool = False, wait: float = 90
):
    """Starts a server process on a free local port and yields ``localhost:PORT`` once it listens.

    ``argv`` is the command, where ``{port}`` stands for the port; its output goes
    to ``log_path``, whose end is in the error if the process exits or never
    listens within ``wait`` seconds. ``own_group`` starts it in a process group of
    its own, ended together (a worker pool and the workers it spawned). It is
    stopped (SIGTERM, then SIGKILL after 20 s) when the block ends.
    """
    port = _free_port()
    log_path = pathlib.Path(log_path)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [a.format(port=port) for a in argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=own_group,
        )

    def signal_all(sig):
        try:
            if own_group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass

    name = os.path.basename(argv[2] if argv[1:2] == ["-m"] else argv[0])
    deadline = time.time() + wait
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline:
                signal_all(signal.SIGKILL)
                proc.wait()
                raise RuntimeError(
                    f"{name} did not listen on {port}: {log_path.read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
    try:
        yield f"localhost:{port}"
    finally:
        signal_all(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            signal_all(signal.SIGKILL)
            proc.wait()


#: Beam's Python job service, and Conveyor's (giving each job ``--sdk_worker_parallelism`` workers).
BEAM_JOB_SERVICE = "apache_beam.runners.portability.local_job_service_main"
CONVEYOR_JOB_SERVICE = "conveyor.beam_utils.job_service"


def job_service(log_dir, module: str = BEAM_JOB_SERVICE):
    """A job service (Beam's unless told otherwise) on a free local port, as a context manager
    yielding its endpoint ``localhost:PORT``; its log goes to ``log_dir/job_service.log``.

    Use with :func:`portable_args` (LOOPBACK workers) or :func:`external_args`.
    In a test, the session fixtures ``job_endpoint`` and ``parallel_job_endpoint``
    share one service between tests.
    """
    return local_service(
        [sys.executable, "-m", module, "--port", "{port}"],
        pathlib.Path(log_dir) / "job_service.log",
    )


@pytest.fixture
def object_store():
    """The ``teststore://`` object store (tests/object_store.py), empty, for a test that writes or
    reads a Beam filesystem other than the local one; yields its class (``.objects``, ``.updated``)."""
    from object_store import ObjectStore

    ObjectStore.objects.clear()
    ObjectStore.updated.clear()
    yield ObjectStore
    ObjectStore.objects.clear()
    ObjectStore.updated.clear()


@pytest.fixture(scope="session")
def job_endpoint(tmp_path_factory):
    """Beam's Python job service on a free local port, for PortableRunner tests.

    Use with ``--runner=PortableRunner --job_endpoint=<this>
    --environment_type=LOOPBACK``.
    """
    with job_service(tmp_path_factory.mktemp("job_service")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def parallel_job_endpoint(tmp_path_factory):
    """Conveyor's job service (Beam's, giving each job ``--sdk_worker_parallelism`` workers)."""
    with job_service(tmp_path_factory.mktemp("job_service"), CONVEYOR_JOB_SERVICE) as endpoint:
        yield endpoint


def portable_args(endpoint: str) -> list[str]:
    """Beam flags for the PortableRunner against the local job service, LOOPBACK workers."""
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={endpoint}",
        "--environment_type=LOOPBACK",
    ]


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory):
    """Beam's worker pool (``worker_pool_main``) on a free local port, for EXTERNAL workers.

    The pool starts each SDK worker as ``python -c ...`` found on the PATH, so
    this interpreter's bin directory goes first on it; ``tests/`` is on the
    PYTHONPATH (set above) so workers import the test helpers. Yields
    ``localhost:PORT``; use with :func:`external_args`. The pool runs in a
    process group of its own, so the workers it spawned go when it goes.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        p for p in (os.path.dirname(sys.executable), env.get("PATH")) if p
    )
    argv = [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        "--service_port={port}",
    ]
    log = tmp_path_factory.mktemp("worker_pool") / "log.txt"
    with local_service(argv, log, env=env, own_group=True) as endpoint:
        yield endpoint


def external_args(endpoint: str, pool: str) -> list[str]:
    """Beam flags for the PortableRunner against a job service, workers from a worker pool.

    ``--sdk_worker_parallelism=2`` asks for two SDK workers per worker node;
    Flink's and Spark's job servers honour it, and so does Conveyor's job
    service (the ``parallel_job_endpoint`` fixture). Beam's Python job service
    (the ``job_endpoint`` fixture) does not: it starts one worker per
    environment from the pool, whatever the flags.
    """
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={pool}",
        "--sdk_worker_parallelism=2",
    ]


# -- the conveyor command line ---------------------------------------------------

#: The console script of this venv, as users, orchestrators and workers run it.
CONVEYOR = os.path.join(os.path.dirname(sys.executable), "conveyor")


def run_conveyor(
    *args, env=None, cwd=None, check: bool = False, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Runs ``conveyor ARGS...`` (the console script) in a process of its own; output captured as text.

    ``check`` asserts that it exited 0, the failure showing the arguments and the
    ends of stdout and stderr.
    """
    proc = subprocess.run(
        [CONVEYOR, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def run_conveyor_in_process(*argv) -> int:
    """Runs a ``conveyor`` command in this process (its ``main``, so ``capsys`` and
    ``monkeypatch`` reach it) and returns its exit status."""
    from conveyor.orchestration.cli import main

    return main([str(a) for a in argv])


@pytest.fixture()
def conveyor_env(tmp_path):
    """This process's environment with ``CONVEYOR_HOME`` (the pipeline registry) in the test's folder."""
    return dict(os.environ, CONVEYOR_HOME=str(tmp_path / "home"))


@pytest.fixture()
def conveyor(conveyor_env):
    """:func:`run_conveyor` in ``conveyor_env`` (unless given ``env=``) that checks the exit
    status unless given ``check=False``."""

    def run(*args, env=None, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return run_conveyor(*args, env=conveyor_env if env is None else env, check=check, **kwargs)

    return run


# -- slow tests ------------------------------------------------------------------

#: What makes a test ``slow`` (``make test-fast`` runs ``pytest -m "not slow"``): its module,
#: a fixture it uses, or its own name (``module::test``, without parameters).
SLOW = {
    "modules": {
        "test_distributed",  # job services, worker pools, several runners
        "test_template",  # the flights pipeline end to end, training included
        "test_statistics_parity",  # TFDV and Conveyor over the same data
        "test_evaluation_parity",  # TFMA and Conveyor
        "test_validation_parity",
        "test_trainer",  # trains models
        "test_crash",  # starts, kills and waits for runner and component processes
        "test_infra_validator",  # a fresh TensorFlow process per validation
        "test_tfx_acceptance",  # the penguin TFX pipeline, trained, on four runners
        "test_ui_browser",  # headless Chromium against a real conveyor ui server
    },
    "fixtures": {"job_endpoint", "parallel_job_endpoint", "worker_pool", "penguin_tuning_run"},
    "tests": {
        "test_inference::test_portable_runner_gives_same_predictions",  # its own job service
        "test_interactive::test_notebook_runs_and_exports_to_pipelines_that_run",  # a kernel, three runners
        "test_exporters::test_airflow_loads_the_dag_and_runs_its_tasks",  # Airflow's own processes
        "test_exporters::test_run_create_triggers_airflow",
        "test_conditions::test_airflow_skips_the_tasks_of_skipped_components",  # airflow dags test
        "test_user_errors::test_run_fn_errors_show_the_users_lines",  # trains
        "test_user_errors::test_trainer_node_failure_leads_with_the_users_error",
        "test_user_errors::test_op_error_in_a_worker_process_names_the_users_line",
        "test_continuous_runners::test_airflow_dags_test_runs_the_continuous_training_loop",  # 3 DAG runs
        "test_continuous_runners::test_kubeflow_spec_runs_the_continuous_training_loop",  # CLI per task
    },
}


#: Whole pipelines run end to end through an orchestrator's own machinery (``airflow dags
#: test``, a Kubeflow spec's task commands, the TFX acceptance pipeline on four runners, the
#: flights template over two spans): marked ``pipelines``. ``make test`` leaves them out to stay
#: within its 20 minutes; ``make test-pipelines`` runs them, and CI runs both. Each orchestrator
#: is still covered in ``make test`` by its smaller tests (exports loaded, specs checked,
#: the LocalDagRunner and BeamDagRunner on small pipelines). Also here: a TFX-style pipeline
#: file through every runner and the CLI (test_tfx_pipeline), a notebook kernel exporting
#: to three runners, and runtime parameters through ``run create``.
PIPELINES = {
    "modules": {"test_tfx_acceptance", "test_tfx_pipeline"},
    "tests": {
        "test_interactive::test_notebook_runs_and_exports_to_pipelines_that_run",
        "test_runtime_parameters::test_run_create_takes_runtime_parameters",
        "test_continuous_runners::test_airflow_dags_test_runs_the_continuous_training_loop",
        "test_continuous_runners::test_kubeflow_spec_runs_the_continuous_training_loop",
        "test_conditions::test_airflow_skips_the_tasks_of_skipped_components",
        "test_conditions::test_kubeflow_spec_gates_the_tasks_with_the_condition",
        "test_template::test_flights_template_runs_two_spans_end_to_end",
        "test_container_components::test_kubeflow_runs_the_command_in_its_image_between_conveyors_steps",
        "test_container_components::test_airflow_runs_the_container_pipeline",
        "test_runtime_parameters::test_kubeflow_pipeline_takes_them_as_its_parameters",
        "test_exporters::test_airflow_loads_the_dag_and_runs_its_tasks",
    },
}


def _is_whole_pipeline(item) -> bool:
    module = item.path.stem
    return module in PIPELINES["modules"] or f"{module}::{item.originalname}" in PIPELINES["tests"]


def _is_slow(item) -> bool:
    module = item.path.stem
    if module in SLOW["modules"] or f"{module}::{item.originalname}" in SLOW["tests"]:
        return True
    if SLOW["fixtures"] & set(getattr(item, "fixturenames", ())):
        return True
    # Beam's multi-process DirectRunner: worker processes, each importing Beam and TensorFlow.
    if "multi_processing" in item.name:
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any("multi_processing" in str(value) for value in params.values())


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
        if _is_whole_pipeline(item):
            item.add_marker(pytest.mark.pipelines)
