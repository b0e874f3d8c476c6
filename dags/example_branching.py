"""Branching and trigger rules: a BranchPythonOperator joined with `none_failed_min_one_success`, a
ShortCircuitOperator, nested TaskGroups, `chain()` over lists, and a labelled edge."""
from __future__ import annotations

from datetime import datetime, timedelta

from nbflow.models.baseoperator import chain
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from nbflow.sdk import DAG, Label, TaskGroup

BRANCHES = ["branch_a", "branch_b", "branch_c"]


def choose_branch(logical_date=None, **context):
    """Follow one branch, chosen by the day of the month, so different runs take different paths."""
    return BRANCHES[logical_date.day % len(BRANCHES)]


def is_weekday(logical_date=None, **context):
    return logical_date.weekday() < 5


with DAG(
    dag_id="example_branching",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0, "retry_delay": timedelta(seconds=0.1)},
    tags=["example", "branching"],
) as dag:
    start = EmptyOperator(task_id="start")

    branching = BranchPythonOperator(task_id="branching", python_callable=choose_branch)
    start >> branching

    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    for option in BRANCHES:
        work = PythonOperator(task_id=option, python_callable=print, op_args=[f"taking {option}"])
        branching >> Label(f"day picks {option[-1]}") >> work >> join

    weekday_only = ShortCircuitOperator(task_id="weekday_only", python_callable=is_weekday)

    with TaskGroup("reports", tooltip="reports, each in two steps") as reports:
        with TaskGroup("daily") as daily:
            chain(EmptyOperator(task_id="collect"), EmptyOperator(task_id="publish"))
        with TaskGroup("weekly"):
            chain(EmptyOperator(task_id="collect"), EmptyOperator(task_id="publish"))

    fan_out = [EmptyOperator(task_id=f"prepare_{n}") for n in range(2)]
    fan_in = [EmptyOperator(task_id=f"check_{n}") for n in range(2)]
    done = EmptyOperator(task_id="done", trigger_rule="none_failed")

    chain(join, weekday_only, reports, fan_out, fan_in, done)
