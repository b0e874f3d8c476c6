"""Small mistakes on the command line end in one line that says what to do, and no line shows a password.

`nbflow scheduler -n` takes a positive number of loops or -1 (no limit, Airflow's convention);
`dags list-runs` of a DAG nobody knows is an error, not an empty table; a database URL whose driver
is not installed names the package to install; the scheduler's banner and `db check` hide the
database password.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from nbflow.cli.main import build_parser
from tests.conftest import write_dag
from tests.store.conftest import pg_url, postgres_admin  # noqa: F401 - fixtures

PASSWORD = "Sup3r-s3cret-pw"

ONE_DAG = """
from nbflow import DAG
from nbflow.operators.python import PythonOperator

with DAG("known", schedule=None):
    PythonOperator(task_id="t", python_callable=lambda: None)
"""


@pytest.mark.parametrize("value", ["-5", "0", "-2"])
def test_scheduler_refuses_a_number_of_runs_below_one_other_than_minus_one(nbflow, value: str) -> None:
    done = nbflow("scheduler", "-n", value)
    assert done.code == 2
    assert "-n/--num-runs" in done.error_line and "-1 for no limit" in done.error_line


def test_scheduler_minus_one_runs_means_no_limit() -> None:
    assert build_parser().parse_args(["scheduler", "-n", "-1"]).num_runs is None


def test_scheduler_takes_a_positive_number_of_runs() -> None:
    assert build_parser().parse_args(["scheduler", "-n", "3"]).num_runs == 3


def test_list_runs_of_a_dag_unknown_to_folder_and_database_is_a_one_line_error(initialised) -> None:
    done = initialised("dags", "list-runs", "NOSUCHDAG")
    assert done.code == 1
    assert done.err.strip().splitlines() == ["error: DAG 'NOSUCHDAG' not found in "
                                             f"{initialised.env.dags}; known: none"]


def test_list_runs_of_a_dag_in_the_folder_without_runs_is_not_an_error(initialised) -> None:
    write_dag(initialised.env.dags, "known.py", ONE_DAG)
    done = initialised("dags", "list-runs", "known")
    assert done.code == 0, done.err
    assert "has no runs" in done.out + done.err


@pytest.mark.parametrize(("url", "install"), [
    (f"mysql://u:{PASSWORD}@127.0.0.1/x", "pip install mysqlclient"),
    (f"mysql+pymysql://u:{PASSWORD}@127.0.0.1/x", "pip install PyMySQL"),
    (f"mssql+pyodbc://u:{PASSWORD}@some_dsn", "pip install pyodbc"),
    (f"oracle+oracledb://u:{PASSWORD}@127.0.0.1/x", "pip install oracledb"),
    (f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1/x", "pip install psycopg2-binary"),
])
def test_db_init_with_a_driver_not_installed_names_the_package_and_hides_the_password(
        nbflow, url: str, install: str) -> None:
    module = {"mysql": "MySQLdb", "mysql+pymysql": "pymysql", "mssql+pyodbc": "pyodbc", "oracle+oracledb": "oracledb",
              "postgresql+psycopg2": "psycopg2"}[url.split(":", 1)[0]]
    if subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0:
        pytest.skip(f"{module} is installed here")
    done = nbflow("db", "init", extra_env={"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url})
    assert done.code == 1
    assert done.err.strip().splitlines() == [done.error_line]
    assert f"`{install}`" in done.error_line
    assert PASSWORD not in done.out + done.err


def test_db_init_with_an_unknown_database_kind_is_a_one_line_error(nbflow) -> None:
    done = nbflow("db", "init", extra_env={"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": f"nosuchdb://u:{PASSWORD}@h/x"})
    assert done.code == 1
    assert "'nosuchdb'" in done.error_line and "sqlite://" in done.error_line
    assert PASSWORD not in done.out + done.err


@pytest.fixture
def url_with_password(pg_url: str) -> str:  # noqa: F811 - the imported fixture
    """A Postgres URL holding a password (the test server trusts every local connection, so any password works)."""
    return pg_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def test_db_check_does_not_print_the_database_password(nbflow, url_with_password: str) -> None:
    extra = {"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url_with_password}
    assert nbflow("db", "init", extra_env=extra).code == 0
    done = nbflow("db", "check", extra_env=extra)
    assert done.code == 0, done.err
    assert PASSWORD not in done.out + done.err and "***" in done.out


def test_the_scheduler_banner_does_not_print_the_database_password(nbflow, url_with_password: str) -> None:
    extra = {"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url_with_password}
    assert nbflow("db", "init", extra_env=extra).code == 0
    done = nbflow("scheduler", "-n", "1", extra_env=extra)
    assert done.code == 0, done.err
    assert "database postgresql+psycopg://postgres:***@" in done.err
    assert PASSWORD not in done.out + done.err


def test_a_failing_db_init_does_not_print_the_database_password(nbflow) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nbflow"  # nothing listens on port 1
    done = nbflow("db", "init", extra_env={"NBFLOW__DATABASE__SQL_ALCHEMY_CONN": url})
    assert done.code == 1
    assert PASSWORD not in done.out + done.err

