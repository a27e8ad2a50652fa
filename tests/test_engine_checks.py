"""Beam flags that name an engine which is not there fail at once with a clear error.

No engine runs here: the cluster, job server jar and worker pool addresses are
free ports or missing files, and one tiny HTTP server stands in for a Flink
REST API that answers (to show the check lets a live cluster through). The
real engines' failures are in tests/engines/.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from conveyor.beam_utils import datasets
from conveyor.beam_utils.engine_checks import EngineUnavailable, check_engine, explain_failure
from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.options import pipeline_options


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rest_api():
    """An HTTP server on loopback answering every GET with '{}' (a REST API that is up)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_flink_cluster_not_running_is_named_with_how_to_start_it():
    port = _dead_port()
    with pytest.raises(EngineUnavailable) as info:
        pipeline_options(["--runner=FlinkRunner", f"--flink_master=localhost:{port}"])
    message = str(info.value)
    assert f"the Flink cluster at localhost:{port} (--flink_master) is not running" in message
    assert "make engines" in message
    assert isinstance(info.value, UsageError)  # so the command line exits 2 with it


def test_missing_job_server_jars_are_named(tmp_path, rest_api):
    jar = tmp_path / "no-such-job-server.jar"
    with pytest.raises(EngineUnavailable, match="the job server jar does not exist") as info:
        check_engine(
            [
                "--runner=FlinkRunner",
                f"--flink_master=localhost:{rest_api}",
                f"--flink_job_server_jar={jar}",
            ]
        )
    assert str(jar) in str(info.value) and ".engines/flink.args" in str(info.value)
    with pytest.raises(EngineUnavailable, match="spark_job_server_jar"):
        check_engine(["--runner=SparkRunner", "--spark_job_server_jar", str(jar)])


def test_external_worker_pool_that_does_not_answer(rest_api):
    port = _dead_port()
    args = [
        "--runner=FlinkRunner",
        f"--flink_master=localhost:{rest_api}",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{port}",
    ]
    with pytest.raises(EngineUnavailable) as info:
        check_engine(args)
    assert f"no Python SDK worker pool answers at localhost:{port}" in str(info.value)
    assert "LOOPBACK" in str(info.value)
    with pytest.raises(EngineUnavailable, match="needs --environment_config"):
        check_engine(["--runner=PortableRunner", "--environment_type=EXTERNAL"])


def test_spark_master_not_running():
    port = _dead_port()
    with pytest.raises(
        EngineUnavailable, match=r"Spark master at spark://127.0.0.1:\d+ .* not running"
    ):
        check_engine(["--runner=SparkRunner", f"--spark_master_url=spark://127.0.0.1:{port}"])


def test_live_or_embedded_engines_and_other_runners_pass(tmp_path, rest_api):
    jar = tmp_path / "job-server.jar"
    jar.write_bytes(b"")
    check_engine(
        [
            "--runner=FlinkRunner",
            f"--flink_master=localhost:{rest_api}",
            f"--flink_job_server_jar={jar}",
        ]
    )
    check_engine(["--runner=FlinkRunner"])  # [auto]: a cluster inside the job server
    check_engine(["--runner=SparkRunner", "--spark_master_url=local[2]"])
    check_engine(["--runner=PortableRunner", "--job_endpoint=localhost:1"])
    check_engine([])
    check_engine(["--direct_running_mode=multi_processing"])


def _statistics_cli(out, beam_flags: list[str], capsys) -> tuple[int, str]:
    """``conveyor statistics`` on 50 flights with these Beam flags: the exit status and stderr."""
    from conveyor.orchestration.cli import main

    status = main(
        ["statistics", "--input", datasets.flights_sample_csv(50), "--output", str(out), "--"]
        + beam_flags
    )
    return status, capsys.readouterr().err


@pytest.mark.parametrize("kind", ["flink_cluster", "job_service"])
def test_cli_exits_2_naming_the_engine_that_does_not_answer(kind, tmp_path, capsys):
    port = _dead_port()
    out = tmp_path / "stats"
    if kind == "flink_cluster":
        flags = ["--runner=FlinkRunner", f"--flink_master=localhost:{port}"]
        expected = f"Flink cluster at localhost:{port} (--flink_master) is not running"
    else:  # Beam itself reports this one as a grpc.FutureTimeoutError with no message
        flags = [
            "--runner=PortableRunner",
            f"--job_endpoint=localhost:{port}",
            "--job_server_timeout=2",
        ]
        expected = f"no Beam job service answers at localhost:{port} (--job_endpoint) within 2 s"
    status, err = _statistics_cli(out, flags, capsys)
    assert status == 2
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_a_worker_without_conveyor_is_explained():
    # The text a portable runner's RuntimeError carries when a worker's unpickling fails.
    failed = RuntimeError(
        "Pipeline BeamApp failed in state FAILED: java.lang.RuntimeException: Error received "
        "from SDK harness for instruction 2: Traceback (most recent call last):\n"
        '  File "apache_beam/runners/worker/sdk_worker.py", line 300, in _execute\n'
        "ModuleNotFoundError: No module named 'conveyor'\n"
    )
    explained = explain_failure(failed, ["--environment_config=localhost:50000"])
    assert isinstance(explained, EngineUnavailable)
    assert "the Python SDK worker pool at localhost:50000 cannot import conveyor" in str(explained)
    assert explain_failure(RuntimeError("No module named 'numpy'")) is None
    wrapped = ValueError("step failed")
    wrapped.__cause__ = failed
    assert explain_failure(wrapped) is not None


def test_engines_command_names_an_engine_that_does_not_exist(capsys):
    from conveyor.orchestration.engines.__main__ import main

    assert main(["start", "no_such_engine"]) == 2
    assert "no engine named 'no_such_engine'" in capsys.readouterr().err
