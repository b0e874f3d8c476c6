"""`nbflow dags trigger|pause|unpause|list-runs|state|backfill` and `nbflow tasks run|clear|states-for-dag-run|logs`."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import write_dag

DAG = """
from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator
with DAG("daily", schedule="@daily", default_args={"retry_delay": 0}):
    hello = BashOperator(task_id="hello", bash_command="echo hello {{ ds }} {{ dag_run.conf.get('who', 'nobody') }}")
    slow = BashOperator(task_id="slow", bash_command="echo start; sleep 1.5; echo done")
    hello >> slow >> PythonOperator(task_id="last", python_callable=lambda: 42)
"""


def nbflow(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                            timeout=180)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def ready(nbflow_env):
    write_dag(nbflow_env.dags, "daily.py", DAG)
    nbflow("db", "init", check=True)
    return nbflow_env


def runs(dag_id: str) -> list[dict]:
    return json.loads(nbflow("dags", "list-runs", dag_id, "-o", "json", check=True).stdout)


def test_trigger_queues_a_run_with_conf_and_run_id(ready) -> None:
    result = nbflow("dags", "trigger", "daily", "--conf", '{"who": "ada"}', "--run-id", "mine",
                    "--logical-date", "2025-03-01", "-o", "json", check=True)
    assert json.loads(result.stdout)[0]["run_id"] == "mine"
    assert [(r["run_id"], r["state"], r["logical_date"][:10]) for r in runs("daily")] == [("mine", "queued", "2025-03-01")]


def test_trigger_with_bad_conf_fails_in_one_line(ready) -> None:
    result = nbflow("dags", "trigger", "daily", "--conf", '{"who": ')
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --conf is not valid JSON")
    assert len(result.stderr.strip().splitlines()) == 1


def test_trigger_before_db_init_says_to_init(nbflow_env) -> None:
    write_dag(nbflow_env.dags, "daily.py", DAG)
    result = nbflow("dags", "trigger", "daily")
    assert result.returncode == 1 and "nbflow db init" in result.stderr


def test_triggered_run_of_a_paused_dag_waits_until_unpaused(ready) -> None:
    nbflow("dags", "trigger", "daily", "--run-id", "r1", "--conf", '{"who": "ada"}', check=True)
    nbflow("dags", "pause", "daily", check=True)
    nbflow("scheduler", "--num-runs", "3", check=True)
    assert nbflow("dags", "state", "daily", "r1", check=True).stdout.strip() == "queued"
    nbflow("dags", "unpause", "daily", check=True)
    nbflow("scheduler", "--until-idle", check=True)
    assert nbflow("dags", "state", "daily", "r1", check=True).stdout.strip() == "success"
    states = json.loads(nbflow("tasks", "states-for-dag-run", "daily", "r1", "-o", "json", check=True).stdout)
    assert {s["task_id"]: s["state"] for s in states} == {"hello": "success", "slow": "success", "last": "success"}
    log = nbflow("tasks", "logs", "daily", "r1", "hello", check=True).stdout
    assert "hello" in log and "ada" in log


def test_logs_follow_prints_the_attempt_while_it_runs(ready) -> None:
    nbflow("dags", "unpause", "daily", check=True)
    nbflow("dags", "trigger", "daily", "--run-id", "r2", check=True)
    scheduler = subprocess.Popen([sys.executable, "-m", "nbflow.cli.main", "scheduler", "--until-idle"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while nbflow("tasks", "logs", "daily", "r2", "slow").returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        followed = nbflow("tasks", "logs", "daily", "r2", "slow", "--follow", check=True).stdout
        assert "start" in followed and "done" in followed and "success after" in followed
    finally:
        scheduler.wait(timeout=120)


def test_clear_reruns_a_task_and_its_downstream(ready) -> None:
    nbflow("dags", "unpause", "daily", check=True)
    nbflow("dags", "trigger", "daily", "--run-id", "r3", check=True)
    nbflow("scheduler", "--until-idle", check=True)
    result = nbflow("tasks", "clear", "daily", "r3", "-t", "^slow$", check=True)
    assert "cleared 2 task instance(s)" in result.stderr
    states = json.loads(nbflow("tasks", "states-for-dag-run", "daily", "r3", "-o", "json", check=True).stdout)
    assert {s["task_id"]: s["state"] for s in states} == {"hello": "success", "slow": None, "last": None}
    nbflow("scheduler", "--until-idle", check=True)
    states = json.loads(nbflow("tasks", "states-for-dag-run", "daily", "r3", "-o", "json", check=True).stdout)
    assert {s["task_id"]: (s["state"], s["try_number"]) for s in states} == {
        "hello": ("success", 1), "slow": ("success", 2), "last": ("success", 2)}


def test_tasks_run_runs_one_queued_instance_and_refuses_a_finished_one(ready) -> None:
    nbflow("dags", "trigger", "daily", "--run-id", "r4", check=True)
    result = nbflow("tasks", "run", "daily", "hello", "r4", check=True)
    assert "success" in result.stderr
    again = nbflow("tasks", "run", "daily", "hello", "r4")
    assert again.returncode == 1 and "clear it first" in again.stderr


def test_backfill_runs_each_interval_with_progress(ready) -> None:
    result = nbflow("dags", "backfill", "daily", "--start-date", "2025-01-01", "--end-date", "2025-01-03",
                    "--executor", "sequential", check=True)
    assert "3 run(s) succeeded" in result.stderr
    assert "3/3" in result.stderr
    assert sorted((r["run_type"], r["logical_date"][:10], r["state"]) for r in runs("daily")) == [
        ("backfill", "2025-01-01", "success"), ("backfill", "2025-01-02", "success"),
        ("backfill", "2025-01-03", "success")]


def test_backfill_with_reversed_dates_fails_in_one_line(ready) -> None:
    result = nbflow("dags", "backfill", "daily", "-s", "2025-02-01", "-e", "2025-01-01")
    assert result.returncode == 1 and "is after --end-date" in result.stderr


def test_state_of_an_unknown_run_names_it(ready) -> None:
    result = nbflow("dags", "state", "daily", "nope")
    assert result.returncode == 1 and "has no run 'nope'" in result.stderr
