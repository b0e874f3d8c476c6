"""Airflow semantics the scheduler keeps, with real processes and a real SQLite database file."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nbflow.runtime import api
from nbflow.store import dags as dag_rows
from nbflow.store import session_scope
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, run_scheduler_until_idle


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_without_catchup_a_dag_whose_end_date_has_passed_gets_no_run(env) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    write_dag(env.dags, "ended.py", f"""
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("ended", schedule="@daily", catchup=False, start_date=datetime.fromisoformat({start.isoformat()!r}),
                 end_date=datetime.fromisoformat({(start + timedelta(days=5)).isoformat()!r})):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    run_scheduler_until_idle(environment, executor="sequential")
    assert api.list_runs(environment, "ended") == []
    with session_scope(environment.readers) as session:
        assert dag_rows.get_dag_row(session, "ended").next_dagrun is None


def test_without_catchup_a_stale_next_interval_is_not_skipped_past_end_date(env) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=5)
    write_dag(env.dags, "stale.py", f"""
        from datetime import datetime
        from nbflow import DAG
        from nbflow.operators.empty import EmptyOperator
        with DAG("stale", schedule="@daily", catchup=False, start_date=datetime.fromisoformat({start.isoformat()!r}),
                 end_date=datetime.fromisoformat({end.isoformat()!r})):
            EmptyOperator(task_id="noop")
    """)
    environment = make_env()
    api.set_paused(environment, "stale", True)
    # As left by a scheduler that went down before end_date: the next interval is long past.
    with session_scope(environment.sessions) as session:
        dag_rows.set_next_dagrun(session, "stale", next_dagrun=start, data_interval=(start, start + timedelta(days=1)),
                                 create_after=start + timedelta(days=1))
    api.set_paused(environment, "stale", False)
    run_scheduler_until_idle(environment, executor="sequential")
    assert api.list_runs(environment, "stale") == []
