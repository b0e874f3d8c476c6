"""An attempt owns every process it starts, under a real `nbflow scheduler` (local executor, SQLite file).

Each test's DAG starts processes that would outlive their task (a bash `sleep 300 &`, a
`subprocess.Popen` never waited for, a double-forked daemon, one that ignores SIGTERM), writes their
pids to files, and the test looks in /proc once the task ended: none may still run. Other tests
kill an attempt in one way (SIGKILL, SIGSEGV, `os._exit`, execution_timeout, clearing it) and read
the last line of its log, which says why it died.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.logs import DEATH_MARK, attempt_log_path
from nbflow.runtime.process_tree import alive
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

LEAKY = """
import os, signal, subprocess, time
from datetime import timedelta
from pathlib import Path
from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator

PIDS = Path({pids!r})

def popen_child():
    child = subprocess.Popen(["sleep", "300"], start_new_session=False)
    (PIDS / "popen").write_text(str(child.pid))

def daemon(name, ignore_term):
    read, write = os.pipe()
    first = os.fork()
    if first == 0:  # the classic double fork: setsid, fork again, the middle process exits
        os.setsid()
        if os.fork() == 0:
            if ignore_term:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(write, str(os.getpid()).encode())
            time.sleep(300)
        os._exit(0)
    os.close(write)
    pid = os.read(read, 64).decode()
    os.waitpid(first, 0)
    (PIDS / name).write_text(pid)

with DAG("leaky", schedule=None):
    BashOperator(task_id="bash", bash_command="sleep 300 >/dev/null 2>&1 & echo $! > {pids}/bash")
    PythonOperator(task_id="popen", python_callable=popen_child)
    PythonOperator(task_id="daemon", python_callable=daemon, op_args=["daemon", False])
    PythonOperator(task_id="stubborn", python_callable=daemon, op_args=["stubborn", True])

with DAG("slow", schedule=None):
    BashOperator(task_id="sleeper", execution_timeout=timedelta(seconds=1),
                 bash_command="sleep 300 >/dev/null 2>&1 & echo $! > {pids}/timeout; sleep 300")

with DAG("cleared", schedule=None):
    BashOperator(task_id="long", bash_command=(
        '[ "{{{{ ti.try_number }}}}" -gt 1 ] && exit 0; '
        "sleep 300 >/dev/null 2>&1 & echo $! > {pids}/cleared; sleep 300"))

with DAG("silent", schedule=None):
    BashOperator(task_id="long", bash_command="sleep 300 >/dev/null 2>&1 & echo $! > {pids}/silent; sleep 300")

with DAG("deaths", schedule=None):
    PythonOperator(task_id="sigkill", python_callable=lambda: os.kill(os.getpid(), signal.SIGKILL))
    PythonOperator(task_id="sigsegv", python_callable=lambda: os.kill(os.getpid(), signal.SIGSEGV))
    PythonOperator(task_id="exits", python_callable=lambda: os._exit(7))
"""


@pytest.fixture
def env(nbflow_env, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW__SCHEDULER__TASK_HEARTBEAT_SEC", "0.2")
    pids = tmp_path / "pids"
    pids.mkdir()
    write_dag(nbflow_env.dags, "leaky.py", LEAKY.format(pids=str(pids)))
    return nbflow_env


@contextlib.contextmanager
def running_scheduler(env) -> Iterator[api.Environment]:
    """`nbflow scheduler` for one test; SIGTERM and a bounded wait at the end."""
    environment = make_env()
    process = start_nbflow_scheduler(env.home.parent / "scheduler.err")
    try:
        yield environment
    finally:
        stop_scheduler(process)


def finished(environment: api.Environment, dag_id: str, run_id: str) -> str:
    """The run's final state, once it has one."""
    return wait_for(lambda: (api.get_run(environment, dag_id, run_id).state in ("success", "failed")
                             and api.get_run(environment, dag_id, run_id).state), timeout=90)


def pid_of(env, name: str) -> int:
    path = env.home.parent / "pids" / name
    return int(wait_for(lambda: path.exists() and path.read_text().strip(), timeout=60))


def all_gone(pids: list[int]) -> bool:
    """Whether none of `pids` runs any more (waited for: an attempt ends its processes after it reports)."""
    try:
        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30)
    except AssertionError:
        return False
    return True


def last_log_line(environment: api.Environment, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
    path = attempt_log_path(environment.config.log_folder, dag_id, run_id, task_id, try_number)
    return path.read_text().splitlines()[-1]


def test_no_process_a_successful_task_started_survives_it(env) -> None:
    with running_scheduler(env) as environment:
        run_id = api.trigger_dag(environment, "leaky").run_id
        assert finished(environment, "leaky", run_id) == "success"
        pids = [pid_of(env, name) for name in ("bash", "popen", "daemon", "stubborn")]
        assert all_gone(pids), [pid for pid in pids if alive(pid)]


def test_the_children_of_a_timed_out_task_die_and_its_log_says_it_timed_out(env) -> None:
    with running_scheduler(env) as environment:
        run_id = api.trigger_dag(environment, "slow").run_id
        assert finished(environment, "slow", run_id) == "failed"
        assert all_gone([pid_of(env, "timeout")])
    assert last_log_line(environment, "slow", run_id, "sleeper") == f"{DEATH_MARK}execution timeout after 1 s"


def test_the_children_of_a_task_cleared_while_running_die(env) -> None:
    with running_scheduler(env) as environment:
        run_id = api.trigger_dag(environment, "cleared").run_id
        child = pid_of(env, "cleared")
        api.clear_tasks(environment, "cleared", run_id, ["long"])
        assert all_gone([child])
        assert finished(environment, "cleared", run_id) == "success"
    assert last_log_line(environment, "cleared", run_id, "long").startswith(f"{DEATH_MARK}cleared externally")


@pytest.mark.parametrize(("task_id", "reason"), [("sigkill", "signal 9 (SIGKILL)"),
                                                 ("sigsegv", "signal 11 (SIGSEGV)"),
                                                 ("exits", "exit code 7")])
def test_the_log_of_an_attempt_that_died_ends_with_why(env, task_id: str, reason: str) -> None:
    with running_scheduler(env) as environment:
        run_id = api.trigger_dag(environment, "deaths").run_id
        assert finished(environment, "deaths", run_id) == "failed"
    assert last_log_line(environment, "deaths", run_id, task_id) == f"{DEATH_MARK}{reason}"


def test_nbflow_tasks_run_ends_what_its_task_started(env, nbflow) -> None:
    assert nbflow("db", "init").code == 0
    environment = make_env()
    run_id = api.trigger_dag(environment, "leaky").run_id
    done = nbflow("tasks", "run", "leaky", "bash", run_id)
    assert done.code == 0, done.err
    assert all_gone([pid_of(env, "bash")])


def test_an_attempt_whose_heartbeat_stopped_is_killed_with_its_children_and_its_log_says_so(
        env, nbflow, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SCHEDULER__ORPHAN_TIMEOUT_SEC", "2")
    environment = make_env()
    run_id = api.trigger_dag(environment, "silent").run_id
    attempt = subprocess.Popen([sys.executable, "-m", "nbflow.cli.main", "tasks", "run", "silent", "long", run_id],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        child = pid_of(env, "silent")
        os.kill(attempt.pid, signal.SIGSTOP)  # alive, on this machine, and silent
        with running_scheduler(env):
            assert finished(environment, "silent", run_id) == "failed"
        assert attempt.wait(timeout=30) == -signal.SIGKILL
        assert all_gone([child])
    finally:
        if attempt.poll() is None:
            attempt.kill()
            attempt.wait()
    died = f"{DEATH_MARK}heartbeat lost (its process was killed)"
    assert last_log_line(environment, "silent", run_id, "long") == died
