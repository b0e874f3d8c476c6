"""SqlHook on a real SQLite file and a real Postgres, with connections from env and from Vault."""
from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from nbflow.exceptions import ConnectionNotFound, InvalidConnectionError
from nbflow.hooks.base import BaseHook
from nbflow.hooks.sql import DbApiHook, SqlHook, split_sql
from nbflow.secrets.connection import Connection
from nbflow.utils.masking import masker
from tests.secrets.vault_server import VaultServer


@pytest.fixture
def lite(nbflow_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """Connection `lite`: a SQLite file, given in Airflow's form (the path as percent-encoded host)."""
    path = tmp_path / "data.db"
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    monkeypatch.setenv("NBFLOW_CONN_LITE", f"sqlite://{quote(str(path), safe='')}")
    return path


def test_base_hook_gets_a_connection_by_id(lite: Path) -> None:
    conn = BaseHook.get_connection("lite")
    assert (conn.conn_type, conn.host) == ("sqlite", str(lite))


def test_a_missing_connection_names_it(lite: Path) -> None:
    with pytest.raises(ConnectionNotFound, match="connection 'nope' is not defined; searched env"):
        SqlHook("nope").get_records("SELECT 1")


def test_run_get_records_and_get_first_on_sqlite(lite: Path) -> None:
    with SqlHook("lite") as hook:
        hook.run("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a'); "
                 "INSERT INTO t VALUES (2, 'b; not a separator') -- trailing comment", split_statements=True)
        hook.run("INSERT INTO t VALUES (?, ?)", parameters=(3, "c"))
        assert hook.get_records("SELECT id, name FROM t ORDER BY id") == [
            (1, "a"), (2, "b; not a separator"), (3, "c")]
        assert hook.get_first("SELECT name FROM t WHERE id = :id", parameters={"id": 2}) == ("b; not a separator",)
        assert hook.get_first("SELECT name FROM t WHERE id = 99") is None
    assert lite.exists()


def test_a_failing_statement_rolls_back_the_whole_run(lite: Path) -> None:
    with SqlHook("lite") as hook:
        hook.run("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        with pytest.raises(Exception, match="UNIQUE"):
            hook.run(["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"])
        assert hook.get_records("SELECT count(*) FROM t") == [(0,)]


def test_run_with_a_handler_returns_each_statements_result(lite: Path) -> None:
    with SqlHook("lite") as hook:
        results = hook.run(["SELECT 1", "SELECT 2"], handler=lambda cursor: cursor.fetchone()[0])
        assert results == [1, 2]
        assert hook.run("SELECT 3", handler=lambda cursor: cursor.fetchone()[0]) == 3
        assert hook.run("SELECT 4") is None


def test_get_hook_picks_the_hook_of_the_conn_type(lite: Path) -> None:
    hook = BaseHook.get_hook("lite")
    assert isinstance(hook, SqlHook) and DbApiHook is SqlHook
    assert hook.get_first("SELECT 1") == (1,)


def test_test_connection_is_registered_for_sql_types(lite: Path) -> None:
    assert Connection.get("lite").test_connection() == (True, "connection successfully tested")
    broken = Connection(conn_id="pg", conn_type="postgres", host="127.0.0.1", port=1, schema="x")
    ok, message = broken.test_connection()
    assert not ok and message


def test_an_unsupported_conn_type_is_a_clear_error() -> None:
    hook = SqlHook(connection=Connection(conn_id="m", conn_type="mssql", host="h"))
    with pytest.raises(InvalidConnectionError, match="connection 'm': SqlHook cannot open conn_type 'mssql'"):
        hook.get_sqlalchemy_engine()


def test_postgres_url_keeps_libpq_extras_only() -> None:
    conn = Connection(conn_id="pg", uri="postgres://u:p%40ss@db:5433/wh?sslmode=require&cursor=dict")
    url = SqlHook(connection=conn).sqlalchemy_url
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg", "u", "p@ss", "db", 5433, "wh")
    assert dict(url.query) == {"sslmode": "require"}


def test_split_sql_ignores_quoted_semicolons_and_comments() -> None:
    assert split_sql("select ';'; -- a; comment\nselect \"a;b\";;\n-- only a comment") == [
        "select ';'", "-- a; comment\nselect \"a;b\""]


def test_postgres_through_a_connection_held_in_vault(postgres_url: str, vault: VaultServer, nbflow_env,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Trust auth ignores the password, which lets the test check that it is masked once fetched.
    vault.put_connection("warehouse_pg", "postgres://postgres:Pg-Vault-Pw-31@127.0.0.1:5432/test")
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env,vault")
    monkeypatch.setenv("NBFLOW__VAULT__URL", vault.url)
    monkeypatch.setenv("NBFLOW__VAULT__TOKEN", vault.reader_token())
    table = f"t_{uuid.uuid4().hex[:8]}"
    with SqlHook("warehouse_pg") as hook:
        try:
            hook.run(f"CREATE TABLE {table} (id int, name text)")
            hook.run(f"INSERT INTO {table} VALUES (%(id)s, %(name)s)", parameters={"id": 1, "name": "one"})
            assert hook.get_records(f"SELECT id, name FROM {table}") == [(1, "one")]
            assert hook.get_first("SELECT current_database()") == ("test",)
        finally:
            hook.run(f"DROP TABLE IF EXISTS {table}")
    assert masker.redact("dsn password=Pg-Vault-Pw-31") == "dsn password=***"
