"""tfx.orchestration.metadata.mysql_metadata_connection_config is Conveyor's MySQL config."""

import pytest

from conveyor import tfx


def test_mysql_config_with_tfx_arguments():
    config = tfx.orchestration.metadata.mysql_metadata_connection_config(
        host="127.0.0.1", port=3306, database="penguins", username="tfx", password="pw"
    )
    assert config.WhichOneof("config") == "mysql"
    assert (config.mysql.host, config.mysql.port, config.mysql.database) == (
        "127.0.0.1",
        3306,
        "penguins",
    )
    assert (config.mysql.user, config.mysql.password) == ("tfx", "pw")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"port": "x"}, "port is a port number"),
        ({"port": 70000}, "port is a port number"),
        ({"host": ""}, "host is a host name"),
        ({"database": ""}, "database is a database name"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = dict(host="localhost", port=3306, database="db", username="u", password="")
    with pytest.raises(ValueError, match=match):
        tfx.orchestration.metadata.mysql_metadata_connection_config(**{**args, **kwargs})
