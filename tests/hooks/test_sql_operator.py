"""SQLExecuteQueryOperator: templated SQL and .sql files on SQLite; a scheduled run against Postgres via Vault.

(Lives with the SQL hook's tests; belongs in tests/operators once that folder has an owner.)
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from nbflow.authoring.dag import DAG
from nbflow.configuration import load_config
from nbflow.hooks.sql import SqlHook
from nbflow.operators.sql import SQLExecuteQueryOperator
from nbflow.runtime import api
from nbflow.secrets.connection import Connection
from nbflow.store import session_scope
from nbflow.store.keys import TIKey
from nbflow.store.xcoms import get_xcom
from tests.conftest import write_dag
from tests.secrets.vault_server import VaultServer


@pytest.fixture
def lite(nbflow_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlHook:  # type: ignore[no-untyped-def]
    path = tmp_path / "data.db"
    monkeypatch.setenv("NBFLOW__SECRETS__BACKENDS", "env")
    monkeypatch.setenv("NBFLOW_CONN_LITE", f"sqlite://{quote(str(path), safe='')}")
    hook = SqlHook("lite")
    hook.run("CREATE TABLE t (id INTEGER, name TEXT)")
    hook.run(["INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')", "INSERT INTO t VALUES (3, 'c')"])
    return hook


def _execute(op: SQLExecuteQueryOperator, context: dict | None = None) -> object:
    op.render_template_fields(context or {})
    return op.execute(context or {})


def test_rows_come_back_as_lists(lite: SqlHook) -> None:
    op = SQLExecuteQueryOperator(task_id="q", conn_id="lite", sql="SELECT id, name FROM t WHERE id >= ? ORDER BY id",
                                 parameters=[2])
    assert _execute(op) == [[2, "b"], [3, "c"]]


def test_max_rows_limits_the_result(lite: SqlHook) -> None:
    op = SQLExecuteQueryOperator(task_id="q", conn_id="lite", sql="SELECT id FROM t ORDER BY id", max_rows=2)
    assert _execute(op) == [[1], [2]]


def test_sql_and_parameters_are_templated(lite: SqlHook) -> None:
    op = SQLExecuteQueryOperator(task_id="q", conn_id="lite", sql="SELECT name FROM {{ params.table }} WHERE id = :id",
                                 parameters={"id": "{{ params.id }}"})
    assert _execute(op, {"params": {"table": "t", "id": 3}}) == [["c"]]


def test_sql_from_a_file_in_the_template_searchpath(lite: SqlHook, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "count.sql").write_text("SELECT count(*) FROM t WHERE id > {{ params.floor }}")
    with DAG("q", schedule=None, template_searchpath=[str(sql_dir)]):
        op = SQLExecuteQueryOperator(task_id="count", conn_id="lite", sql="count.sql")
    assert _execute(op, {"params": {"floor": 1}}) == [[2]]


def test_several_statements_give_one_result_each(lite: SqlHook) -> None:
    op = SQLExecuteQueryOperator(task_id="q", conn_id="lite", sql=["SELECT 1", "SELECT name FROM t WHERE id = 1"])
    assert _execute(op) == [[[1]], [["a"]]]


def test_no_xcom_push_returns_nothing(lite: SqlHook) -> None:
    op = SQLExecuteQueryOperator(task_id="q", conn_id="lite", sql="UPDATE t SET name = 'z'", do_xcom_push=False)
    assert _execute(op) is None
    assert lite.get_first("SELECT count(*) FROM t WHERE name = 'z'") == (3,)


WAREHOUSE_DAG = """
from nbflow import DAG
from nbflow.decorators import task
from nbflow.hooks.base import BaseHook
from nbflow.operators.sql import SQLExecuteQueryOperator

with DAG("warehouse", schedule=None, start_date=None, template_searchpath=[{sql_dir!r}]):
    query = SQLExecuteQueryOperator(task_id="query", conn_id="warehouse", sql="names.sql",
                                    parameters={{"floor": 1}})

    @task
    def peek():
        conn = BaseHook.get_connection("warehouse")
        print(f"connecting as {{conn.login}} with password {{conn.password}}")

    query >> peek()
"""


def test_scheduled_run_queries_postgres_through_a_vault_connection_and_masks_its_password(
        postgres_url: str, vault: VaultServer, nbflow_env, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = f"names_{uuid.uuid4().hex[:8]}"
    # Trust auth ignores the password; it is there to be printed and masked.
    vault.put_connection("warehouse", "postgres://postgres:Sched-Vault-Pw-77@127.0.0.1:5432/test")
    for name, value in {"NBFLOW__SECRETS__BACKENDS": "env,vault", "NBFLOW__VAULT__URL": vault.url,
                        "NBFLOW__VAULT__TOKEN": vault.reader_token(),
                        "NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
                        "NBFLOW__SCHEDULER__HEARTBEAT_SEC": "0.2"}.items():
        monkeypatch.setenv(name, value)
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "names.sql").write_text(f"SELECT id, name FROM {table} WHERE id > %(floor)s ORDER BY id")
    write_dag(nbflow_env.dags, "warehouse.py", WAREHOUSE_DAG.format(sql_dir=str(sql_dir)))
    setup = SqlHook(connection=Connection(conn_id="setup", uri="postgres://postgres@127.0.0.1:5432/test"))
    setup.run(f"CREATE TABLE {table} (id int, name text)")
    try:
        setup.run(f"INSERT INTO {table} VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        environment = api.Environment.from_config(load_config())
        api.init_database(environment)
        run = api.trigger_dag(environment, "warehouse")
        api.make_scheduler(environment, executor="local").run(until_idle=True)

        assert api.get_run(environment, "warehouse", run.run_id).state == "success"
        with session_scope(environment.sessions) as session:
            xcom = get_xcom(session, TIKey("warehouse", "query", run.run_id))
        assert xcom is not None and json.loads(xcom.value) == [[2, "two"], [3, "three"]]
        log = api.log_path(environment, "warehouse", run.run_id, "peek", None).read_text()
        assert "connecting as postgres with password ***" in log
        assert "Sched-Vault-Pw-77" not in log
    finally:
        setup.run(f"DROP TABLE IF EXISTS {table}")
        setup.close()
