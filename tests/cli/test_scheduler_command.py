"""`nbflow scheduler` and `nbflow standalone` as a user runs them."""
from __future__ import annotations

import subprocess
import sys

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env

DAG = """
from nbflow import DAG
from nbflow.operators.bash import BashOperator
with DAG("hello", schedule=None):
    BashOperator(task_id="say", bash_command="echo hello from {{ dag.dag_id }}")
"""


def nbflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_scheduler_until_idle_finishes_a_triggered_run(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    write_dag(nbflow_env.dags, "hello.py", DAG)
    environment = make_env()
    run = api.trigger_dag(environment, "hello")
    result = nbflow("scheduler", "--until-idle")
    assert result.returncode == 0, result.stderr
    assert "local executor" in result.stderr and "task logs under" in result.stderr
    assert api.get_run(environment, "hello", run.run_id).state == "success"
    assert "hello from hello" in api.log_path(environment, "hello", run.run_id, "say", None).read_text()


def test_standalone_creates_the_database_and_stops_when_idle(nbflow_env) -> None:
    write_dag(nbflow_env.dags, "hello.py", DAG)
    result = nbflow("standalone", "--until-idle")
    assert result.returncode == 0, result.stderr
    assert (nbflow_env.home / "nbflow.db").exists()


def test_scheduler_with_unknown_executor_fails_in_one_line(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__EXECUTOR", "locl")
    write_dag(nbflow_env.dags, "hello.py", DAG)
    make_env()
    result = nbflow("scheduler", "--until-idle")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown executor 'locl' (core.executor)")


def test_scheduler_says_which_runs_ended_how_and_which_dag_files_are_broken(nbflow_env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    write_dag(nbflow_env.dags, "hello.py", DAG)
    write_dag(nbflow_env.dags, "boom.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("boom", schedule=None):
            PythonOperator(task_id="divide", python_callable=lambda: 1 / 0)
    """)
    write_dag(nbflow_env.dags, "badcron.py", """
        from nbflow import DAG
        with DAG("badcron", schedule="every tuesday"):
            pass
    """)
    environment = make_env()
    good = api.trigger_dag(environment, "hello")
    bad = api.trigger_dag(environment, "boom")
    result = nbflow("scheduler", "--until-idle")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    broken = [line for line in lines if "broken DAG file" in line]
    assert len(broken) == 1 and "badcron.py:2" in broken[0] and "'every tuesday'" in broken[0]
    assert any(line.startswith(f"nbflow scheduler: DAG run hello {good.run_id}: success in ") for line in lines)
    failed = next(line for line in lines if f"DAG run boom {bad.run_id}: failed" in line)
    assert f"task divide failed; `nbflow tasks logs boom {bad.run_id} divide`" in failed


def test_scheduler_without_a_database_fails_in_one_line_saying_how_to_create_it(nbflow_env) -> None:
    write_dag(nbflow_env.dags, "hello.py", DAG)
    result = nbflow("scheduler", "--until-idle")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: metadata database sqlite:///{nbflow_env.home / 'nbflow.db'} is unreachable: no database file at "
        f"{nbflow_env.home / 'nbflow.db'}; `nbflow db init` creates it"]


def test_standalone_on_an_unreachable_postgres_fails_in_one_line(nbflow_env, monkeypatch) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # port 1: nothing listens there
    monkeypatch.setenv("NBFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
    write_dag(nbflow_env.dags, "hello.py", DAG)
    result = nbflow("standalone", "--until-idle")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: metadata database {url} is unreachable: ")
