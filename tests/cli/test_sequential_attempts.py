"""Under the sequential executor each attempt runs in a process of its own, never in the scheduler's.

A real `nbflow scheduler` with `[core] executor = sequential` runs a DAG whose tasks call `os._exit`,
segfault, or write down their own pid: the scheduler keeps running, the other tasks complete, and
the log of each attempt that died says how.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.logs import DEATH_MARK, attempt_log_path
from tests.conftest import write_dag
from nbflow.runtime.process_tree import alive
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSEGV and /proc")

CRASHES = """
import os, signal
from datetime import timedelta
from pathlib import Path
from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator

MARKS = Path({marks!r})

def note_pid(name):
    (MARKS / name).write_text(str(os.getpid()))

def exit_on_first_try(ti):
    if ti.try_number == 1:
        os._exit(3)
    note_pid("flaky")

with DAG("crashes", schedule=None):
    exits = PythonOperator(task_id="exits", python_callable=lambda: os._exit(7))
    segv = PythonOperator(task_id="segv", python_callable=lambda: os.kill(os.getpid(), signal.SIGSEGV))
    after = PythonOperator(task_id="after", python_callable=note_pid, op_args=["after"], trigger_rule="all_done")
    [exits, segv] >> after
    PythonOperator(task_id="whoami", python_callable=note_pid, op_args=["whoami"])
    PythonOperator(task_id="flaky", python_callable=exit_on_first_try, retries=1,
                   retry_delay=timedelta(seconds=0))

with DAG("long", schedule=None):
    BashOperator(task_id="cleared", bash_command=(
        '[ "{{{{ ti.try_number }}}}" -gt 1 ] && exit 0; echo $$ > {marks}/cleared; sleep 300'))

with DAG("slow", schedule=None):
    BashOperator(task_id="overdue", execution_timeout=timedelta(seconds=1), bash_command="sleep 300")
"""


@pytest.fixture
def env(nbflow_env, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NBFLOW__CORE__EXECUTOR", "sequential")
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__SCHEDULER__TASK_HEARTBEAT_SEC", "0.2")
    marks = tmp_path / "marks"
    marks.mkdir()
    write_dag(nbflow_env.dags, "crashes.py", CRASHES.format(marks=str(marks)))
    return nbflow_env


@contextlib.contextmanager
def running_scheduler(env) -> Iterator[tuple[api.Environment, subprocess.Popen[bytes]]]:
    environment = make_env()
    process = start_nbflow_scheduler(env.home.parent / "scheduler.err")
    try:
        yield environment, process
    finally:
        stop_scheduler(process)


@contextlib.contextmanager
def crashes_run(env) -> Iterator[tuple[api.Environment, str, int]]:
    """One run of `crashes` under `nbflow scheduler`, ended; yields (environment, run_id, scheduler pid)
    while the scheduler still runs, so a test can check that it survived."""
    environment = make_env()
    process = start_nbflow_scheduler(env.home.parent / "scheduler.err")
    try:
        run_id = api.trigger_dag(environment, "crashes").run_id
        wait_for(lambda: api.get_run(environment, "crashes", run_id).state in ("success", "failed"), timeout=120)
        assert process.poll() is None, (env.home.parent / "scheduler.err").read_text()
        yield environment, run_id, process.pid
    finally:
        stop_scheduler(process)


def states(environment: api.Environment, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, "crashes", run_id)}


def last_log_line(environment: api.Environment, run_id: str, task_id: str, try_number: int = 1) -> str:
    path = attempt_log_path(environment.config.log_folder, "crashes", run_id, task_id, try_number)
    return path.read_text().splitlines()[-1]


def test_tasks_that_exit_or_segfault_fail_alone_and_the_scheduler_runs_the_rest(env) -> None:
    with crashes_run(env) as (environment, run_id, _):
        assert states(environment, run_id) == {"exits": "failed", "segv": "failed", "after": "success",
                                               "whoami": "success", "flaky": "success"}


def test_the_log_of_an_attempt_that_called_os_exit_says_so(env) -> None:
    with crashes_run(env) as (environment, run_id, _):
        pass
    assert last_log_line(environment, run_id, "exits") == f"{DEATH_MARK}exit code 7"


def test_the_log_of_an_attempt_that_segfaulted_says_so(env) -> None:
    with crashes_run(env) as (environment, run_id, _):
        pass
    assert last_log_line(environment, run_id, "segv") == f"{DEATH_MARK}signal 11 (SIGSEGV)"


def test_an_attempt_that_died_is_retried_and_its_first_log_says_why(env) -> None:
    with crashes_run(env) as (environment, run_id, _):
        flaky = next(r for r in api.task_states(environment, "crashes", run_id) if r.task_id == "flaky")
        assert (flaky.state, flaky.try_number) == ("success", 2)
    assert last_log_line(environment, run_id, "flaky", 1) == f"{DEATH_MARK}exit code 3"


def test_a_task_runs_in_a_process_other_than_the_schedulers(env) -> None:
    with crashes_run(env) as (_, _, scheduler_pid):
        pass
    marks = env.home.parent / "marks"
    task_pids = {int((marks / name).read_text()) for name in ("whoami", "after", "flaky")}
    assert scheduler_pid not in task_pids
    assert len(task_pids) == 3  # one process per attempt


def test_clearing_a_running_attempt_kills_it_and_it_runs_again(env) -> None:
    with running_scheduler(env) as (environment, process):
        run_id = api.trigger_dag(environment, "long").run_id
        marks = env.home.parent / "marks"
        shell = int(wait_for(lambda: (marks / "cleared").exists() and (marks / "cleared").read_text().strip()))
        api.clear_tasks(environment, "long", run_id, ["cleared"])
        wait_for(lambda: not alive(shell), timeout=60)
        wait_for(lambda: states_of(environment, "long", run_id)["cleared"] == "success", timeout=60)
        assert process.poll() is None
    path = attempt_log_path(environment.config.log_folder, "long", run_id, "cleared", 1)
    assert path.read_text().splitlines()[-1].startswith(f"{DEATH_MARK}cleared externally")


def test_an_attempt_past_its_execution_timeout_fails_and_its_log_says_so(env) -> None:
    with running_scheduler(env) as (environment, _):
        run_id = api.trigger_dag(environment, "slow").run_id
        wait_for(lambda: states_of(environment, "slow", run_id)["overdue"] == "failed", timeout=90)
    path = attempt_log_path(environment.config.log_folder, "slow", run_id, "overdue", 1)
    assert path.read_text().splitlines()[-1] == f"{DEATH_MARK}execution timeout after 1 s"


def states_of(environment: api.Environment, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, dag_id, run_id)}
