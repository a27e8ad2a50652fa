"""ML Metadata on a real MariaDB server (Debian's mariadb-server, started through
``conveyor.orchestration.engines.mariadb`` with its data in a temporary folder): two pipeline
runs at once, ``run status``, lineage, caching across runs, the Beam runner, and the UI reading
the store, through ``create_app`` in-process and ``conveyor ui --metadata-mysql``."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from starlette.testclient import TestClient

from conveyor.orchestration import LocalDagRunner, Pipeline
from conveyor.orchestration.engines import common, mariadb
from conveyor.orchestration.metadata import Metadata, mysql_config
from conveyor.orchestration.metadata_flags import MYSQL_PASSWORD_ENV
from conveyor.orchestration.ui import create_app

CONVEYOR = os.path.join(os.path.dirname(sys.executable), "conveyor")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The started server's ``info`` (with its password), its state and data under tmp; stopped
    at the end, and checked gone."""
    base = tmp_path_factory.mktemp("mariadb")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEYOR_ENGINES_DIR", str(base / "engines"))
    try:
        info = mariadb.start(data_dir=str(base / "data"))
        info["password"] = mariadb.server_info()["password"]
        yield info
    finally:
        mariadb.stop()
        status = mariadb.status()
        mp.undo()
    assert not status["running"] and status["pid"] is None


def _config(server, database: str):
    return mysql_config(
        server["host"], server["port"], database, server["user"], server["password"]
    )


def _target(server, database: str) -> list[str]:
    return [
        "--metadata-mysql",
        f"{server['host']}:{server['port']}/{database}",
        "--metadata-mysql-user",
        server["user"],
    ]


def _pipeline_file(folder, name: str, n: int, sleep: float) -> str:
    path = folder / f"{name}.py"
    path.write_text(
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        f"p = Produce(n={n}, sleep={sleep})\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        f"pipeline = Pipeline({name!r}, {str(folder / name)!r}, [p, s])\n"
    )
    return str(path)


def _conveyor(env, *args, check=True):
    proc = subprocess.run([CONVEYOR, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_the_server_takes_ml_metadata_and_makes_the_database(server):
    """MLMD's wheel logs in to MariaDB with the user start() made (mysql_native_password) and
    creates a database that does not exist yet."""
    md = Metadata(_config(server, "conveyor_fresh"))
    assert "Examples" in {t.name for t in md.store.get_artifact_types()}
    out = mariadb._sql(server["socket"], "SHOW DATABASES LIKE 'conveyor_fresh';")
    assert out.strip() == "conveyor_fresh"
    status = mariadb.status()
    assert status["running"] and status["port"] == server["port"]
    args = open(common.args_path("mariadb")).read().split()
    assert args == [
        f"--metadata-mysql=127.0.0.1:{server['port']}/conveyor",
        f"--metadata-mysql-user={server['user']}",
    ]


def test_two_runs_at_once_status_lineage_cache_and_the_ui(server, tmp_path, monkeypatch):
    env = dict(
        os.environ,
        CONVEYOR_HOME=str(tmp_path / "home"),
        **{MYSQL_PASSWORD_ENV: server["password"]},
    )
    target = _target(server, "conveyor_e2e")  # a new database: both runs make its schema at once
    for name, n in (("team_a", 4), ("team_b", 5), ("team_c", 4)):
        path = _pipeline_file(tmp_path, name, n, sleep=2.0)
        _conveyor(env, "pipeline", "create", "--pipeline-path", path, *target)

    started = time.time()
    procs = [
        subprocess.Popen(
            [CONVEYOR, "run", "create", "--pipeline-name", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("team_a", "team_b")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, (out[-2000:], err[-2000:])
        assert "Produce: DONE" in out and "Sum: DONE" in out and "(cached)" not in out
    assert not (tmp_path / "team_a" / "metadata.sqlite").exists()  # the server holds it all

    # Both ran at once: each run's span (first execution's start to last one's end) overlaps
    # the other's.
    md = Metadata(_config(server, "conveyor_e2e"))
    spans = {}
    for name in ("team_a", "team_b"):
        [run] = md.runs(name)
        executions = md.executions_of_run(name, run["run_id"])
        assert len(executions) == 2, (name, executions)
        spans[name] = (
            min(e.custom_properties["start_time"].double_value for e in executions),
            max(e.custom_properties["end_time"].double_value for e in executions),
        )
    (a0, a1), (b0, b1) = spans["team_a"], spans["team_b"]
    assert a0 < b1 and b0 < a1, spans
    assert min(a0, b0) >= started - 1

    again = _conveyor(env, "run", "create", "--pipeline-name", "team_a").stdout
    assert "Produce: DONE" in again and again.count("(cached)") == 2
    listing = _conveyor(env, "run", "list", "--pipeline-name", "team_a").stdout.splitlines()
    assert len(listing) == 2 and "CACHED=2" in listing[0] and "COMPLETE=2" in listing[1]
    latest = listing[0].split()[0]
    status = _conveyor(env, "run", "status", "--pipeline-name", "team_a").stdout
    assert f"run {latest} of team_a: COMPLETE" in status
    assert re.search(r"Produce\s+CACHED", status) and re.search(r"Sum\s+CACHED", status)
    # The flag on the command reads the same store as the registry's record.
    flagged = _conveyor(env, "run", "list", "--pipeline-name", "team_b", *target).stdout
    assert len(flagged.splitlines()) == 1 and "COMPLETE=2" in flagged
    # team_c's components are team_a's exactly (same cache keys): the cache is per pipeline.
    other = _conveyor(env, "run", "create", "--pipeline-name", "team_c").stdout
    assert "Sum: DONE" in other and "(cached)" not in other

    # Lineage: the cached Sum's statistics came from team_a's own Produce output.
    stats = md.latest_outputs("team_a", latest, "Sum")["statistics"]
    [examples] = md.producer_inputs(stats.id)["examples"]
    assert examples.uri.startswith(str(tmp_path / "team_a" / "Produce"))
    assert md.pipeline_root("team_a") == str(tmp_path / "team_a")

    # The UI on the server alone (an empty registry): pipelines, a run, lineage, files.
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "ui-home"))
    client = TestClient(create_app(roots=[_config(server, "conveyor_e2e")]))
    pipelines = {p["name"]: p for p in client.get("/api/pipelines").json()["pipelines"]}
    assert set(pipelines) == {"team_a", "team_b", "team_c"}
    assert pipelines["team_a"]["root"] == str(tmp_path / "team_a")
    assert not pipelines["team_a"]["registered"]
    run = client.get(f"/api/runs/{latest}").json()
    comps = {c["component_id"]: c for c in run["components"]}
    assert comps["Produce"]["state"] == "CACHED" and comps["Sum"]["state"] == "CACHED"
    assert comps["Sum"]["outputs"]["statistics"][0]["id"] == stats.id
    g = client.get(f"/api/artifacts/{stats.id}/lineage").json()
    assert {"Produce", "Sum"} <= {n["component_id"] for n in g["nodes"] if n["kind"] == "execution"}
    a = client.get(f"/api/artifacts/{examples.id}").json()
    link = f"/files/team_a/Produce/examples/{a['producer']['execution_id']}/data.json"
    assert client.get(link).json() == [0, 1, 2, 3]

    # The registered pipelines, their record naming the server: the UI finds their runs.
    monkeypatch.setenv("CONVEYOR_HOME", env["CONVEYOR_HOME"])
    monkeypatch.setenv(MYSQL_PASSWORD_ENV, server["password"])
    client = TestClient(create_app())
    runs = client.get("/api/pipelines/team_a/runs").json()
    assert len(runs["runs"]) == 2, runs
    assert client.get("/api/pipelines/team_a").json()["registered"]


def test_conveyor_ui_serves_a_mysql_store(server, tmp_path):
    database = "conveyor_ui"
    pipeline = _python_pipeline(server, tmp_path, database, "served")
    LocalDagRunner(in_process=True, quiet=True).run(pipeline, run_id="r1")
    env = dict(
        os.environ,
        CONVEYOR_HOME=str(tmp_path / "home"),
        **{MYSQL_PASSWORD_ENV: server["password"]},
    )
    proc = subprocess.Popen(
        [CONVEYOR, "ui", "--port", "0", *_target(server, database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = f"http://127.0.0.1:{m.group(1)}"
        with urllib.request.urlopen(f"{url}/api/pipelines", timeout=30) as r:
            names = [p["name"] for p in json.load(r)["pipelines"]]
        assert names == ["served"]
        with urllib.request.urlopen(f"{url}/api/runs/r1", timeout=30) as r:
            states = {c["component_id"]: c["state"] for c in json.load(r)["components"]}
        assert states == {"Produce": "COMPLETE", "Sum": "COMPLETE"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _python_pipeline(server, folder, database: str, name: str, n: int = 3) -> Pipeline:
    from orchestration_components import Produce, Sum

    p = Produce(n=n)
    s = Sum(examples=p.outputs["examples"])
    return Pipeline(
        name,
        str(folder / name),
        [p, s],
        metadata_connection_config=_config(server, database),
    )


def test_python_connection_config_on_the_local_and_beam_runners(server, tmp_path):
    """``Pipeline(metadata_connection_config=mysql_config(...))``: the LocalDagRunner's component
    processes and the BeamDagRunner's steps (the config pickled into them) record in the server,
    and the second run is cached."""
    from conveyor.orchestration.beam_runner import BeamDagRunner

    database = "conveyor_python"
    local = _python_pipeline(server, tmp_path, database, "local_py")
    first = LocalDagRunner(quiet=True).run(local)
    second = LocalDagRunner(quiet=True).run(local)
    assert {s["state"] for s in first["components"].values()} == {"COMPLETE"}
    assert {s["state"] for s in second["components"].values()} == {"CACHED"}

    beam = _python_pipeline(server, tmp_path, database, "beam_py", n=2)
    BeamDagRunner().run(beam, run_id="b1")
    BeamDagRunner().run(beam, run_id="b2")
    md = Metadata(_config(server, database))
    for run_id, state in (("b1", "COMPLETE"), ("b2", "CACHED")):
        states = {r["component_id"]: r["state"] for r in md.run_status("beam_py", run_id)}
        assert states == {"Produce": state, "Sum": state}
    assert (tmp_path / "beam_py" / "Sum").is_dir()
    assert {r["run_id"] for r in md.runs("local_py")} == {first["run_id"], second["run_id"]}


def test_stop_leaves_nothing_and_a_restart_keeps_the_data(tmp_path, monkeypatch):
    """A second server of its own: stopped, no process of it is left and its port is closed;
    started again on its data folder, the same user logs in and the data are there."""
    monkeypatch.setenv("CONVEYOR_ENGINES_DIR", str(tmp_path / "engines"))
    info = mariadb.start(data_dir=str(tmp_path / "data"))
    password = mariadb.server_info()["password"]
    try:
        config = mysql_config("127.0.0.1", info["port"], "conveyor_kept", info["user"], password)
        Metadata(config).store.put_context_type(_context_type("kept"))
    finally:
        mariadb.stop()
    assert not common.pid_alive(info["pid"]) and not common.port_open("127.0.0.1", info["port"])
    again = mariadb.start(data_dir=str(tmp_path / "data"))
    try:
        assert mariadb.server_info()["password"] == password
        config = mysql_config("127.0.0.1", again["port"], "conveyor_kept", info["user"], password)
        assert Metadata(config).store.get_context_type("kept") is not None
    finally:
        mariadb.stop()
    assert not common.pid_alive(again["pid"])


def _context_type(name: str):
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2.ContextType(name=name)


def test_start_names_what_is_missing_or_taken(tmp_path, monkeypatch):
    """No MariaDB installed (none found on PATH nor in /usr/sbin): the error says how to install
    it; a port another process holds: the error names it. Neither leaves a process."""
    import shutil
    import socket

    monkeypatch.setenv("CONVEYOR_ENGINES_DIR", str(tmp_path / "engines"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(common.EngineError, match=f"port {port} on 127.0.0.1 is taken"):
            mariadb.start(data_dir=str(tmp_path / "data"), port=port)
    assert not mariadb.status()["running"] and common.read_pid("mariadb") is None
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(common.EngineError, match="apt-get install -y mariadb-server"):
        mariadb.start(data_dir=str(tmp_path / "other"))


def test_component_run_records_in_the_server(server, tmp_path):
    """What orchestrators call, one component at a time: ``conveyor component run
    --metadata-mysql``; the second component finds the first one's output in the server."""
    env = dict(os.environ, CONVEYOR_HOME=str(tmp_path / "home"))
    env[MYSQL_PASSWORD_ENV] = server["password"]
    path = _pipeline_file(tmp_path, "by_step", 6, sleep=0.0)
    target = _target(server, "conveyor_steps")
    for component in ("Produce", "Sum"):
        out = _conveyor(
            env,
            "component",
            "run",
            "--pipeline-path",
            path,
            "--component",
            component,
            "--run-id",
            "s1",
            *target,
        ).stdout
        assert '"state": "COMPLETE"' in out
    md = Metadata(_config(server, "conveyor_steps"))
    states = {r["component_id"]: r["state"] for r in md.run_status("by_step", "s1")}
    assert states == {"Produce": "COMPLETE", "Sum": "COMPLETE"}
    stats = md.latest_outputs("by_step", "s1", "Sum")["statistics"]
    assert json.loads(open(os.path.join(stats.uri, "sum.json")).read()) == sum(range(6))
    assert not (tmp_path / "by_step" / "metadata.sqlite").exists()


def test_a_pipeline_file_with_its_own_mysql_config_needs_no_flag(server, tmp_path):
    """A pipeline file that sets ``metadata_connection_config=mysql_config(...)`` itself:
    ``pipeline create`` records that (no password), and ``run create``/``run status`` use it."""
    env = dict(os.environ, CONVEYOR_HOME=str(tmp_path / "home"))
    env[MYSQL_PASSWORD_ENV] = server["password"]
    path = tmp_path / "own.py"
    path.write_text(
        "import os\n"
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        "from conveyor.orchestration.metadata import mysql_config\n"
        "p = Produce(n=2)\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        f"config = mysql_config({server['host']!r}, {server['port']}, 'conveyor_own', "
        f"{server['user']!r}, os.environ['{MYSQL_PASSWORD_ENV}'])\n"
        f"pipeline = Pipeline('own', {str(tmp_path / 'own')!r}, [p, s], "
        "metadata_connection_config=config)\n"
    )
    _conveyor(env, "pipeline", "create", "--pipeline-path", str(path))
    record = json.loads((tmp_path / "home" / "pipelines" / "own.json").read_text())
    assert record["metadata"] == {
        "mysql": f"127.0.0.1:{server['port']}/conveyor_own",
        "user": server["user"],
        "from": "pipeline",
    }
    assert server["password"] not in json.dumps(record)
    _conveyor(env, "run", "create", "--pipeline-name", "own")
    status = _conveyor(env, "run", "status", "--pipeline-name", "own").stdout
    assert re.search(r"Produce\s+COMPLETE", status) and re.search(r"Sum\s+COMPLETE", status)
    assert not (tmp_path / "own" / "metadata.sqlite").exists()
    assert [r["state"] for r in Metadata(_config(server, "conveyor_own")).runs("own")] == [
        "COMPLETE"
    ]
