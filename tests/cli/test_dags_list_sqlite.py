"""`nbflow dags list` on SQLite: read and refreshed through stdlib sqlite3, never importing SQLAlchemy (issue 14)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.cli.conftest import Cli
from tests.conftest import write_dag

ETL = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.python import PythonOperator
    with DAG("etl", schedule="@daily", start_date=datetime(2025, 1, 1), tags=["core"]):
        PythonOperator(task_id="extract", python_callable=print)
"""
LIST_AND_SHOW_MODULES = (
    "import json, sys; from nbflow.cli.main import main; code = main(['dags', 'list', '--output', 'json']); "
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'})))")


def list_in_process(nbflow: Cli) -> tuple[list[dict[str, object]], list[str]]:
    """The JSON listing and which of SQLAlchemy and Alembic the listing process imported."""
    done = subprocess.run([sys.executable, "-c", LIST_AND_SHOW_MODULES], capture_output=True, text=True,
                          env=dict(os.environ), cwd=nbflow.env.dags.parent, check=True)
    listing, modules = done.stdout.strip().splitlines()
    return json.loads(listing), json.loads(modules)


def test_dags_list_imports_no_sqlalchemy_before_db_init_cold_and_unchanged(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "etl.py", ETL)
    expected = [{"dag_id": "etl", "file": "etl.py", "schedule": "@daily", "tags": ["core"], "paused": True}]
    assert list_in_process(nbflow) == (expected, [])  # before db init: parsed, not stored
    assert nbflow("db", "init").code == 0
    assert list_in_process(nbflow) == (expected, [])  # cold: parsed and stored
    assert list_in_process(nbflow) == (expected, [])  # unchanged: read back


def test_a_dag_unpaused_through_the_orm_shows_unpaused_in_the_sqlite3_listing(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "etl.py", ETL)
    assert nbflow("db", "init").code == 0
    assert nbflow("dags", "list").code == 0
    assert nbflow("dags", "unpause", "etl").code == 0  # SQLAlchemy writes the `dag` row
    assert list_in_process(nbflow)[0][0]["paused"] is False


def test_an_edited_file_shows_its_new_dag_and_a_deleted_one_disappears(nbflow: Cli) -> None:
    path = write_dag(nbflow.env.dags, "etl.py", ETL)
    assert nbflow("db", "init").code == 0
    assert [row["dag_id"] for row in nbflow("dags", "list", "-o", "json").json()] == ["etl"]
    path.write_text(path.read_text().replace('"etl"', '"etl_v2"'))
    write_dag(nbflow.env.dags, "more.py", ETL.replace('"etl"', '"more"'))
    assert [row["dag_id"] for row in nbflow("dags", "list", "-o", "json").json()] == ["etl_v2", "more"]
    path.unlink()
    assert [row["dag_id"] for row in nbflow("dags", "list", "-o", "json").json()] == ["more"]


def test_a_database_behind_the_newest_migration_is_not_written_by_a_listing(nbflow: Cli) -> None:
    import sqlite3
    write_dag(nbflow.env.dags, "etl.py", ETL)
    assert nbflow("db", "init").code == 0
    conn = sqlite3.connect(nbflow.env.home / "nbflow.db")
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    done = nbflow("dags", "list", "-o", "json")
    assert [row["dag_id"] for row in done.json()] == ["etl"]  # parsed in a child, as before `db init`
    assert conn.execute("SELECT count(*) FROM dag_file").fetchone() == (0,)
    conn.close()
