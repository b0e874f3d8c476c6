"""The env backend: NBFLOW_CONN_<ID> (URI or JSON) and NBFLOW_VAR_<KEY>."""
from __future__ import annotations

import pytest

from nbflow.secrets.backends.env import EnvironmentVariablesBackend


def test_connection_from_a_uri_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_CONN_MY_DB", "postgres://etl:pw@db:5432/wh")
    conn = EnvironmentVariablesBackend().get_connection("my_db")
    assert conn is not None
    assert (conn.conn_id, conn.conn_type, conn.login, conn.password, conn.host, conn.port, conn.schema) == (
        "my_db", "postgres", "etl", "pw", "db", 5432, "wh")


def test_connection_from_a_json_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_CONN_API", '  {"conn_type": "http", "host": "api.example.com", '
                                          '"password": "t0ken", "extra": {"timeout": 5}}')
    conn = EnvironmentVariablesBackend().get_connection("api")
    assert conn is not None
    assert (conn.conn_type, conn.host, conn.password, conn.extra_dejson) == ("http", "api.example.com", "t0ken",
                                                                              {"timeout": 5})


def test_variable_by_upper_cased_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_REGION", "eu-west-1")
    assert EnvironmentVariablesBackend().get_variable("region") == "eu-west-1"


def test_absent_ids_are_none() -> None:
    backend = EnvironmentVariablesBackend(env={})
    assert backend.get_connection("nope") is None
    assert backend.get_variable("nope") is None
    assert backend.get_config("nope") is None


def test_a_given_mapping_replaces_the_process_environment() -> None:
    backend = EnvironmentVariablesBackend(env={"NBFLOW_VAR_X": "1"})
    assert backend.get_variable("x") == "1"
