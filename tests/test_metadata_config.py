"""Where the ML Metadata store is: ``--metadata-mysql``, ``mysql_config``, the registry's record,
and a MySQL server that does not answer. No server needed: a closed port stands for one that is
down (tests/engines/test_mysql_metadata.py runs against a real MariaDB)."""

import argparse
import json
import socket

import pytest

from conveyor.beam_utils.errors import UsageError
from conveyor.orchestration import LocalDagRunner, Pipeline
from conveyor.orchestration.metadata import (
    Metadata,
    MetadataConnectionError,
    describe_config,
    mysql_config,
)
from conveyor.orchestration.metadata_flags import (
    MYSQL_PASSWORD_ENV,
    MYSQL_USER_ENV,
    add_metadata_arguments,
    config_from_args,
    config_of_record,
    parse_mysql_target,
    record_entry,
)
from conveyor.orchestration.ui.store import Store


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and released: the kernel does not hand it out
    again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:3307/conveyor", ("127.0.0.1", 3307, "conveyor")),
        ("db.example.org/mlmd", ("db.example.org", 3306, "mlmd")),
        ("mysql://db:33/team_a", ("db", 33, "team_a")),
        ("[::1]:3310/x", ("::1", 3310, "x")),
    ],
)
def test_mysql_target_forms(text, expected):
    assert parse_mysql_target(text) == expected


@pytest.mark.parametrize(
    "text, says",
    [
        ("root:secret@127.0.0.1:3306/db", "without a user or password"),
        ("127.0.0.1:0/db", "port '0' is not 1-65535"),
        ("127.0.0.1:99999/db", "port '99999'"),
        ("127.0.0.1:abc/db", "port 'abc'"),
        ("127.0.0.1:3306", "not of the form HOST[:PORT]/DATABASE"),
        ("127.0.0.1:3306/", "not of the form"),
        ("127.0.0.1/my-db", "database 'my-db' must be"),
        ("", "not of the form"),
    ],
)
def test_bad_mysql_targets_are_usage_errors_naming_the_form(text, says):
    with pytest.raises(UsageError, match=r"--metadata-mysql") as e:
        parse_mysql_target(text)
    assert says in str(e.value)


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_metadata_arguments(parser)
    return parser.parse_args(list(argv))


def test_user_and_password_come_from_the_flag_and_the_environment(monkeypatch):
    monkeypatch.delenv(MYSQL_USER_ENV, raising=False)
    monkeypatch.delenv(MYSQL_PASSWORD_ENV, raising=False)
    assert config_from_args(_args()) is None
    plain = config_from_args(_args("--metadata-mysql", "h:1/d"))
    assert (plain.mysql.host, plain.mysql.port, plain.mysql.database) == ("h", 1, "d")
    assert (plain.mysql.user, plain.mysql.password) == ("root", "")
    monkeypatch.setenv(MYSQL_USER_ENV, "team")
    monkeypatch.setenv(MYSQL_PASSWORD_ENV, "s3cret")
    env = config_from_args(_args("--metadata-mysql", "h/d"))
    assert (env.mysql.user, env.mysql.password, env.mysql.port) == ("team", "s3cret", 3306)
    flag = config_from_args(_args("--metadata-mysql", "h/d", "--metadata-mysql-user", "me"))
    assert flag.mysql.user == "me"
    with pytest.raises(UsageError, match="--metadata-mysql-user needs --metadata-mysql"):
        config_from_args(_args("--metadata-mysql-user", "me"))


def test_mysql_config_checks_its_arguments_and_describe_hides_the_password():
    config = mysql_config("127.0.0.1", "3306", "conveyor", "u", "pw")
    assert config.mysql.port == 3306 and config.mysql.password == "pw"
    assert describe_config(config) == "mysql://u@127.0.0.1:3306/conveyor"
    assert "pw" not in describe_config(config)
    for bad, says in [
        (("", 3306, "d", "u", ""), "host"),
        (("h", 0, "d", "u", ""), "port"),
        (("h", "x", "d", "u", ""), "port"),
        (("h", 3306, "", "u", ""), "database"),
    ]:
        with pytest.raises(ValueError, match=says):
            mysql_config(*bad)


def test_the_registry_keeps_where_the_store_is_never_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv(MYSQL_PASSWORD_ENV, "from-env")
    flag = config_from_args(_args("--metadata-mysql", "db:3307/team", "--metadata-mysql-user", "u"))
    sqlite_pipeline = Pipeline("p", str(tmp_path / "root"), [])
    own = Pipeline(
        "p",
        str(tmp_path / "root"),
        [],
        metadata_connection_config=mysql_config("o", 1, "d", "x", "pw"),
    )
    assert record_entry(None, sqlite_pipeline) is None
    entry = record_entry(flag, own)  # the flag wins over the pipeline's own config
    assert entry == {"mysql": "db:3307/team", "user": "u", "from": "flag"}
    assert "from-env" not in json.dumps(entry)
    assert record_entry(None, own) == {"mysql": "o:1/d", "user": "x", "from": "pipeline"}
    assert "pw" not in json.dumps(record_entry(None, own))

    record = {"name": "p", "pipeline_path": "unused.py", "metadata": entry}
    again = config_of_record(record)
    assert (again.mysql.host, again.mysql.port, again.mysql.user) == ("db", 3307, "u")
    assert again.mysql.password == "from-env"
    other = config_of_record(record, _args("--metadata-mysql", "elsewhere/x"))
    assert other.mysql.host == "elsewhere"  # the command's flag wins over the record
    assert config_of_record({"name": "p", "metadata": None}) is None


def test_a_pipeline_file_that_no_longer_sets_mysql_is_a_usage_error(tmp_path):
    path = tmp_path / "p.py"
    path.write_text(
        f"from conveyor.orchestration import Pipeline\npipeline = Pipeline('p', {str(tmp_path)!r}, [])\n"
    )
    record = {
        "name": "p",
        "pipeline_path": str(path),
        "metadata": {"mysql": "h:1/d", "user": "u", "from": "pipeline"},
    }
    with pytest.raises(UsageError, match="no longer sets a MySQL metadata_connection_config"):
        config_of_record(record)


def test_a_server_that_does_not_answer_is_a_clear_error():
    port = _closed_port()
    with pytest.raises(MetadataConnectionError) as e:
        Metadata(mysql_config("127.0.0.1", port, "conveyor", "u", "pw"))
    text = str(e.value)
    assert f"no MySQL server answers at 127.0.0.1:{port}" in text
    assert "engines start mariadb" in text and "pw" not in text
    assert isinstance(e.value, UsageError)  # exit 2 from the command line


def test_a_pipeline_on_a_server_that_is_down_fails_before_anything_runs(tmp_path):
    from orchestration_components import Produce

    port = _closed_port()
    pipeline = Pipeline(
        "down",
        str(tmp_path / "root"),
        [Produce(n=2)],
        metadata_connection_config=mysql_config("127.0.0.1", port, "conveyor", "u", ""),
    )
    with pytest.raises(MetadataConnectionError, match=f"127.0.0.1:{port}"):
        LocalDagRunner(quiet=True).run(pipeline)
    assert not (tmp_path / "root" / "Produce").exists()


def test_the_ui_store_takes_a_server_and_refuses_anything_else(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    port = _closed_port()
    store = Store([mysql_config("127.0.0.1", port, "conveyor", "u", "")])
    with pytest.raises(MetadataConnectionError, match=f"127.0.0.1:{port}"):
        store.pipelines()
    with pytest.raises(TypeError, match="a folder or a MySQL ConnectionConfig"):
        Store([42])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "status", "--pipeline-name", "toy"],
        ["run", "list", "--pipeline-name", "toy"],
        ["ui", "--port", "0"],
    ],
)
def test_commands_name_the_server_that_does_not_answer_and_exit_2(tmp_path, conveyor, argv):
    if argv[0] == "run":
        path = tmp_path / "toy.py"
        path.write_text(
            "from orchestration_components import Produce\n"
            "from conveyor.orchestration import Pipeline\n"
            f"pipeline = Pipeline('toy', {str(tmp_path / 'root')!r}, [Produce(n=1)])\n"
        )
        conveyor("pipeline", "create", "--pipeline-path", str(path))
    port = _closed_port()
    out = conveyor(
        *argv, "--metadata-mysql", f"127.0.0.1:{port}/conveyor", check=False, timeout=120
    )
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert f"no MySQL server answers at 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_pipeline_create_records_the_server(tmp_path, conveyor, conveyor_env):
    path = tmp_path / "toy.py"
    path.write_text(
        "from orchestration_components import Produce\n"
        "from conveyor.orchestration import Pipeline\n"
        f"pipeline = Pipeline('toy', {str(tmp_path / 'root')!r}, [Produce(n=1)])\n"
    )
    env = dict(conveyor_env, **{MYSQL_PASSWORD_ENV: "not-kept"})
    out = conveyor(
        "pipeline",
        "create",
        "--pipeline-path",
        str(path),
        "--metadata-mysql",
        "db:3307/team",
        "--metadata-mysql-user",
        "u",
        env=env,
    )
    assert "its ML Metadata: MySQL db:3307/team (user u)" in out.stdout
    text = (tmp_path / "home" / "pipelines" / "toy.json").read_text()
    assert json.loads(text)["metadata"] == {"mysql": "db:3307/team", "user": "u", "from": "flag"}
    assert "not-kept" not in text


def test_the_cache_can_be_kept_to_one_pipeline_of_a_shared_store(tmp_path):
    """Two pipelines in one store with a component alike (same cache key): ``find_cached``
    given the pipeline's name finds only that pipeline's outputs."""
    from conveyor.dsl.artifacts import Artifact
    from conveyor.orchestration.metadata import COMPLETE

    md = Metadata(str(tmp_path / "metadata.sqlite"))
    out = tmp_path / "a" / "Produce" / "examples" / "1"
    out.mkdir(parents=True)
    ex = md.start_execution("conveyor.Produce", "a", "r1", "Produce", {}, "same-key")
    md.finish_execution(ex, COMPLETE, {"examples": Artifact("Examples", str(out))})
    assert md.find_cached("same-key", "conveyor.Produce", pipeline_name="b") is None
    mine = md.find_cached("same-key", "conveyor.Produce", pipeline_name="a")
    assert mine["examples"].uri == str(out)
    assert md.find_cached("same-key", "conveyor.Produce")["examples"].uri == str(out)


def test_mysql_flags_that_would_not_reach_an_exported_pipeline_are_refused(tmp_path, conveyor):
    path = tmp_path / "toy.py"
    path.write_text(
        "from orchestration_components import Produce\n"
        "from conveyor.orchestration import Pipeline\n"
        f"pipeline = Pipeline('toy', {str(tmp_path / 'root')!r}, [Produce(n=1)])\n"
    )
    out = conveyor(
        "pipeline",
        "create",
        "--pipeline-path",
        str(path),
        "--engine",
        "kubeflow",
        "--metadata-mysql",
        "db/team",
        check=False,
    )
    assert out.returncode == 2
    assert "--metadata-mysql does not reach the tasks of a pipeline on kubeflow" in out.stderr
    assert "metadata_connection_config=mysql_config" in out.stderr
