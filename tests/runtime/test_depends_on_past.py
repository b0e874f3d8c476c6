"""depends_on_past under the scheduler, as Airflow's PrevDagrunDep decides it (real SQLite file)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env

DAY1 = datetime(2025, 1, 1, tzinfo=timezone.utc)
DAY2 = datetime(2025, 1, 2, tzinfo=timezone.utc)

DAG_FILE = """
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("past", schedule="@daily"):
    EmptyOperator(task_id="old")
    {added}
"""
ADDED = 'EmptyOperator(task_id="new", depends_on_past=True, ignore_first_depends_on_past={ignore})'


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    return nbflow_env


def states(environment: api.Environment, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, "past", run_id)}


def test_the_first_run_of_a_dag_does_not_wait_for_a_past(env) -> None:
    write_dag(env.dags, "past.py", DAG_FILE.format(added=ADDED.format(ignore=False)))
    environment = make_env()
    first = api.trigger_dag(environment, "past", logical_date=DAY1)
    api.make_scheduler(environment, executor="sequential").run(until_idle=True)
    assert states(environment, first.run_id) == {"old": "success", "new": "success"}


def run_with_a_task_added_after_the_first_run(env, *, ignore: bool) -> dict[str, str | None]:
    path = write_dag(env.dags, "past.py", DAG_FILE.format(added=""))
    environment = make_env()
    api.trigger_dag(environment, "past", logical_date=DAY1)
    api.make_scheduler(environment, executor="sequential").run(until_idle=True)
    path.write_text(DAG_FILE.format(added=ADDED.format(ignore=ignore)))
    environment = make_env()
    second = api.trigger_dag(environment, "past", logical_date=DAY2)
    api.make_scheduler(environment, executor="sequential").run(num_runs=6)
    return states(environment, second.run_id)


def test_a_task_added_later_waits_for_a_previous_instance_that_never_ran(env) -> None:
    assert run_with_a_task_added_after_the_first_run(env, ignore=False) == {"old": "success", "new": None}


def test_ignore_first_depends_on_past_lets_a_task_added_later_run(env) -> None:
    assert run_with_a_task_added_after_the_first_run(env, ignore=True) == {"old": "success", "new": "success"}
