"""The scheduler and local executor on Postgres (psycopg 3) through database.sql_alchemy_conn."""
from __future__ import annotations

from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.runtime.scheduler_helpers import lines, make_env, run_scheduler_until_idle
from tests.runtime.test_scheduler import chain_dag, states
from tests.store.conftest import pg_url, postgres_admin  # noqa: F401 - fixtures


@pytest.fixture
def pg_env(nbflow_env, monkeypatch, pg_url):  # noqa: F811 - the imported fixture
    monkeypatch.setenv("NBFLOW__DATABASE__SQL_ALCHEMY_CONN", pg_url)
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def test_triggered_run_completes_on_postgres(pg_env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    chain_dag(pg_env.dags, marks, retries=1,
              second_body="if len(MARKS.read_text().splitlines()) == 2:\n            os._exit(3)")
    environment = make_env()
    run = api.trigger_dag(environment, "chain")
    run_scheduler_until_idle(environment)
    assert api.get_run(environment, "chain", run.run_id).state == "success"
    assert states(environment, "chain", run.run_id) == {"first": "success", "second": "success", "third": "success"}
    assert lines(marks) == ["first", "second", "second", "third"]
    assert not (pg_env.home / "nbflow.db").exists()
