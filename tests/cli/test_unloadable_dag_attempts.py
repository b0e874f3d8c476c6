"""A DAG file that breaks after its runs were queued fails those runs by the tasks' tries (issue 14).

The DAG processor keeps the broken file's DAG as last stored, so a real `nbflow scheduler` goes on
queuing its tasks, and the worker (local, or sequential: the same worker with one slot) cannot load it.
Each such attempt is a failed try, as Airflow's "DAG not found" in its worker: retries follow the task's
`retries`, the run ends failed, the attempt's log names the file and how it failed, and the scheduler
does not queue the task again and again. Once the file is fixed, a cleared task runs normally.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.logs import attempt_log_path, callback_log_path
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

FRAGILE = """
from datetime import timedelta
from nbflow import DAG
from nbflow.operators.bash import BashOperator
def alert(context):
    print("alerted")
with DAG("fragile", schedule=None, on_failure_callback={callback}):
    BashOperator(task_id="work", bash_command="echo working", retries={retries},
                 retry_delay=timedelta(seconds=0))
"""
STEADY = """
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
with DAG("steady", schedule=None):
    EmptyOperator(task_id="noop")
"""
BREAKS = {
    "raises": ('raise RuntimeError("the warehouse moved")\n', "RuntimeError: the warehouse moved"),
    "os_exit": ("import os\nos._exit(3)\n", "exited with exit code 3"),
    "hangs": ("import time\ntime.sleep(600)\n", "DagImportTimeout"),
}


@pytest.fixture(params=["local", "sequential"])
def env(request: pytest.FixtureRequest, nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__EXECUTOR", request.param)
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "2")
    write_dag(nbflow_env.dags, "steady.py", STEADY)
    return nbflow_env


def queue_then_break(env, *, retries: int = 0, break_with: str = "raises",
                     alert: bool = False) -> tuple[api.Environment, str]:
    """A paused `fragile` with a queued run; then its file breaks, and it is unpaused. Returns the run id.

    With `alert`, the DAG has a failure callback (its process loads the broken file: a hanging one
    would hold the scheduler's stop until the callback's time limit)."""
    path = write_dag(env.dags, "fragile.py", FRAGILE.format(retries=retries, callback="alert" if alert else None))
    environment = make_env()
    api.set_paused(environment, "fragile", True)
    run_id = api.trigger_dag(environment, "fragile").run_id
    with path.open("a", encoding="utf-8") as file:
        file.write(BREAKS[break_with][0])
    api.set_paused(environment, "fragile", False)
    return environment, run_id


@contextlib.contextmanager
def scheduler(env) -> Iterator[subprocess.Popen[bytes]]:
    process = start_nbflow_scheduler(env.home.parent / "scheduler.err")
    try:
        yield process
    finally:
        stop_scheduler(process)


def ended(environment: api.Environment, dag_id: str, run_id: str) -> str | None:
    state = api.get_run(environment, dag_id, run_id).state
    return state if state in ("success", "failed") else None


def work(environment: api.Environment, run_id: str):
    return next(row for row in api.task_states(environment, "fragile", run_id) if row.task_id == "work")


def attempt_log(environment: api.Environment, run_id: str, try_number: int) -> Path:
    return attempt_log_path(environment.config.log_folder, "fragile", run_id, "work", try_number)


def steady_run_completes(environment: api.Environment) -> None:
    """The scheduler still schedules, turn after turn: a run of another DAG succeeds."""
    run_id = api.trigger_dag(environment, "steady").run_id
    assert wait_for(lambda: ended(environment, "steady", run_id), timeout=90) == "success"


@pytest.mark.parametrize("break_with", sorted(BREAKS))
def test_a_run_whose_dag_file_broke_after_it_was_queued_fails_after_one_try(env, break_with: str) -> None:
    environment, run_id = queue_then_break(env, break_with=break_with)
    with scheduler(env) as process:
        assert wait_for(lambda: ended(environment, "fragile", run_id), timeout=90) == "failed"
        steady_run_completes(environment)
        assert process.poll() is None
        row = work(environment, run_id)
        assert (row.state, row.try_number) == ("failed", 1)


@pytest.mark.parametrize("break_with", sorted(BREAKS))
def test_the_log_of_an_attempt_whose_dag_did_not_load_names_the_file_and_the_error(env, break_with: str) -> None:
    environment, run_id = queue_then_break(env, break_with=break_with)
    with scheduler(env):
        wait_for(lambda: ended(environment, "fragile", run_id), timeout=90)
    [line] = attempt_log(environment, run_id, 1).read_text().splitlines()
    assert str(env.dags / "fragile.py") in line
    assert BREAKS[break_with][1] in line


def test_an_unloadable_dag_uses_its_tasks_retries_then_fails(env) -> None:
    environment, run_id = queue_then_break(env, retries=1)
    with scheduler(env):
        assert wait_for(lambda: ended(environment, "fragile", run_id), timeout=90) == "failed"
        row = work(environment, run_id)
        assert (row.state, row.try_number) == ("failed", 2)
    assert attempt_log(environment, run_id, 1).exists() and attempt_log(environment, run_id, 2).exists()


def test_the_scheduler_does_not_queue_an_unloadable_task_again_and_again(env) -> None:
    environment, run_id = queue_then_break(env)
    stderr = env.home.parent / "scheduler.err"
    with scheduler(env):
        wait_for(lambda: ended(environment, "fragile", run_id), timeout=90)
        steady_run_completes(environment)
        steady_run_completes(environment)
        assert work(environment, run_id).try_number == 1
    attempts = sorted(p.name for p in attempt_log(environment, run_id, 1).parent.iterdir())
    assert attempts == ["attempt=1.log"]
    assert len([line for line in stderr.read_text().splitlines() if "could not be loaded" in line]) == 1


def test_the_runs_failure_callback_is_attempted_and_its_log_says_why_it_could_not_load(env) -> None:
    environment, run_id = queue_then_break(env, alert=True)
    log = callback_log_path(environment.config.log_folder, "fragile", run_id)
    with scheduler(env):
        wait_for(lambda: ended(environment, "fragile", run_id), timeout=90)
        wait_for(lambda: log.exists() and "exited with code 2" in log.read_text(), timeout=90)
    lines = [line for line in log.read_text().splitlines() if line.startswith("[nbflow] DAG fragile: failed callback")]
    assert len(lines) == 1 and "RuntimeError: the warehouse moved" in lines[0]


def test_once_the_file_is_fixed_a_cleared_task_runs_normally(env) -> None:
    environment, run_id = queue_then_break(env, break_with="os_exit")
    with scheduler(env):
        wait_for(lambda: ended(environment, "fragile", run_id), timeout=90)
        write_dag(env.dags, "fragile.py", FRAGILE.format(retries=0, callback=None))
        wait_for(lambda: not api.list_import_errors(environment))  # the DAG processor parsed the fixed file
        api.clear_tasks(environment, "fragile", run_id, ["work"])
        assert wait_for(lambda: ended(environment, "fragile", run_id), timeout=90) == "success"
        assert work(environment, run_id).try_number == 2
    assert "working" in attempt_log(environment, run_id, 2).read_text()


def test_tasks_run_of_a_task_whose_dag_file_broke_fails_in_one_line_and_leaves_it_as_it_was(nbflow_env) -> None:
    environment, run_id = queue_then_break(nbflow_env)
    done = subprocess.run([sys.executable, "-m", "nbflow.cli.main", "tasks", "run", "fragile", "work", run_id],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert str(nbflow_env.dags / "fragile.py") in line and "RuntimeError: the warehouse moved" in line
    row = work(environment, run_id)
    assert (row.state, row.try_number) == (None, 0)
