"""`dag.test()`, Airflow's way, on a DAG written in plain Python in a cell: it runs in the kernel's process."""
from __future__ import annotations

from tests.jupyter.conftest import Shell

DAG_CELL = """
from datetime import datetime
from nbflow import DAG
from nbflow.operators.python import PythonOperator

def extract(**context):
    print("extracting for", context["ds"], "with", context["dag_run"].conf)
    return [1, 2, 3]

def load(ti=None):
    rows = ti.xcom_pull(task_ids="extract")
    if rows is None or len(rows) != 3:
        raise ValueError(f"expected 3 rows, got {rows}")
    print("loaded", sum(rows))

with DAG("plain", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
    PythonOperator(task_id="extract", python_callable=extract) >> PythonOperator(task_id="load", python_callable=load)
"""


def test_dag_test_prints_each_task_state_and_log_and_returns_success(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    result = ipython.ok("result = dag.test()")
    assert ipython.shell.user_ns["result"].state == "success"
    out = result.out
    assert out.startswith("testing DAG plain, run ")
    assert "extracting for" in out and "loaded 6" in out  # each task's log as it ends
    assert [line.split()[:2] for line in out.splitlines() if line.startswith(("extract ", "load "))][-2:] == \
        [["extract", "success"], ["load", "success"]]
    assert "success in " in out.splitlines()[-1]


def test_dag_test_takes_a_logical_date_and_run_conf(ipython: Shell) -> None:
    ipython.ok(DAG_CELL)
    result = ipython.ok("result = dag.test(logical_date=datetime(2025, 3, 4), run_conf={'day': 4})")
    assert ipython.shell.user_ns["result"].state == "success"
    assert "extracting for 2025-03-04 with {'day': 4}" in result.out


def test_dag_test_of_a_failing_task_says_failed_and_shows_its_log(ipython: Shell) -> None:
    ipython.ok(DAG_CELL.replace("return [1, 2, 3]", "return [1]"))
    result = ipython.ok("result = dag.test()")
    assert ipython.shell.user_ns["result"].state == "failed"
    assert "ValueError: expected 3 rows, got [1]" in result.out
    assert "task load failed" in result.out.splitlines()[-1]
