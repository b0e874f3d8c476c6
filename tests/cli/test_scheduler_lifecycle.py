"""A real `nbflow scheduler` process stopped by SIGTERM or killed with its worker, then restarted; per-try logs.

The scheduler runs as a user runs it (`python -m nbflow.cli.main scheduler`) with the local executor
against a real SQLite file; tasks mark a file each time they start, so a task run twice shows.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import lines, make_env, start_nbflow_scheduler, wait_for

CHAIN = """
import time
from pathlib import Path
from nbflow import DAG
from nbflow.operators.python import PythonOperator

MARKS, STARTED, RELEASE = Path({marks!r}), Path({started!r}), Path({release!r})

def mark(what):
    with MARKS.open("a") as f:
        f.write(what + "\\n")

def middle(ti):
    mark(f"middle {{ti.try_number}}")
    if ti.try_number == 1:
        STARTED.touch()
        deadline = time.monotonic() + 60  # until the test releases it (bounded, should it never)
        while not RELEASE.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

with DAG("lifecycle", schedule=None):
    (PythonOperator(task_id="first", python_callable=lambda: mark("first"))
     >> PythonOperator(task_id="middle", python_callable=middle, retries=1, retry_delay=0)
     >> PythonOperator(task_id="last", python_callable=lambda: mark("last")))
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {name: tmp_path / name for name in ("marks", "started", "release")}


def chain_dag(dags: Path, files: dict[str, Path]) -> None:
    write_dag(dags, "lifecycle.py", CHAIN.format(**{name: str(path) for name, path in files.items()}))


def nbflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbflow.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def worker_of(scheduler_pid: int) -> int:
    """The local executor's worker: the scheduler's child running nbflow.runtime.worker."""
    for pid in Path(f"/proc/{scheduler_pid}/task/{scheduler_pid}/children").read_text().split():
        if b"nbflow.runtime.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError(f"process {scheduler_pid} has no nbflow worker child")


def open_fds(pid: int) -> set[str]:
    """What the process's file descriptors point at ("pipe:[1234]", paths, ...)."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:  # closed meanwhile
            pass
    return found


def states(environment: api.Environment, run_id: str) -> dict[str, tuple[str | None, int]]:
    return {r.task_id: (r.state, r.try_number) for r in api.task_states(environment, "lifecycle", run_id)}


def test_sigterm_stops_the_scheduler_after_its_running_task_and_a_restart_finishes_the_run(
        env, tmp_path: Path, files: dict[str, Path]) -> None:
    chain_dag(env.dags, files)
    environment = make_env()
    run = api.trigger_dag(environment, "lifecycle")
    stderr = tmp_path / "scheduler.err"
    proc = start_nbflow_scheduler(stderr)
    try:
        wait_for(files["started"].exists, timeout=60)
        worker_stdin = os.readlink(f"/proc/{worker_of(proc.pid)}/fd/0")
        proc.send_signal(signal.SIGTERM)
        # Stopping, the scheduler closes its worker's stdin: from then on the worker starts nothing
        # new. Only then does the running attempt end, so `last` is left to the restarted scheduler.
        wait_for(lambda: worker_stdin not in open_fds(proc.pid), timeout=30)
        files["release"].touch()
        assert proc.wait(timeout=30) == 0
    finally:
        files["release"].touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = stderr.read_text().splitlines()
    config = environment.config
    assert said[0] == (f"nbflow scheduler: DAGs from {config.dags_folder}, database {config.sql_alchemy_conn}, "
                       f"local executor (parallelism 4), task logs under {config.log_folder}; stop with Ctrl-C")
    assert said[-1] == "nbflow scheduler: stopped"
    assert states(environment, run.run_id) == {"first": ("success", 1), "middle": ("success", 1),
                                               "last": (None, 0)}

    restarted = nbflow("scheduler", "--until-idle")
    assert restarted.returncode == 0, restarted.stderr
    assert api.get_run(environment, "lifecycle", run.run_id).state == "success"
    assert states(environment, run.run_id) == {"first": ("success", 1), "middle": ("success", 1),
                                               "last": ("success", 1)}
    assert lines(files["marks"]) == ["first", "middle 1", "last"]


def kill_scheduler_and_worker_mid_attempt(psutil, tmp_path: Path, files: dict[str, Path]) -> list:
    """Start `nbflow scheduler`, kill -9 it and its worker while `middle` runs try 1; their other descendants."""
    proc = start_nbflow_scheduler(tmp_path / "scheduler.err")
    try:
        wait_for(files["started"].exists, timeout=60)
        scheduler = psutil.Process(proc.pid)
        descendants = scheduler.children(recursive=True)
        workers = [p for p in scheduler.children() if "nbflow.runtime.worker" in " ".join(p.cmdline())]
        assert len(workers) == 1
        os.kill(proc.pid, signal.SIGKILL)
        workers[0].kill()
        proc.wait(timeout=10)
        workers[0].wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return [p for p in descendants if p.pid != workers[0].pid]


def kill_all(psutil, processes: list) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def no_heartbeat_timeout(monkeypatch) -> None:
    """Only the restarted scheduler's look at this machine's processes can find the dead attempt in time."""
    monkeypatch.setenv("NBFLOW__SCHEDULER__ORPHAN_TIMEOUT_SEC", "600")
    monkeypatch.setenv("NBFLOW__SCHEDULER__TASK_HEARTBEAT_SEC", "0.2")


def test_kill_9_of_scheduler_and_worker_then_a_restart_retries_the_orphaned_task_and_finishes_the_run(
        env, tmp_path: Path, files: dict[str, Path], no_heartbeat_timeout) -> None:
    import psutil  # finds the scheduler's worker process (installed with ipykernel)
    chain_dag(env.dags, files)
    environment = make_env()
    run = api.trigger_dag(environment, "lifecycle")
    left = []
    try:
        left = kill_scheduler_and_worker_mid_attempt(psutil, tmp_path, files)
        assert states(environment, run.run_id)["middle"] == ("running", 1)
        restarted = nbflow("scheduler", "--until-idle")
        assert restarted.returncode == 0, restarted.stderr
    finally:
        files["release"].touch()
        kill_all(psutil, left)  # whatever is left if a check above failed
    assert "try 1: its process on this machine is gone; now up_for_retry" in restarted.stderr
    assert api.get_run(environment, "lifecycle", run.run_id).state == "success"
    assert states(environment, run.run_id) == {"first": ("success", 1), "middle": ("success", 2),
                                               "last": ("success", 1)}
    assert lines(files["marks"]) == ["first", "middle 1", "middle 2", "last"]


def test_a_killed_worker_takes_its_fork_server_and_running_attempt_along(
        env, tmp_path: Path, files: dict[str, Path], no_heartbeat_timeout) -> None:
    import psutil  # finds the scheduler's worker process (installed with ipykernel)
    chain_dag(env.dags, files)
    environment = make_env()
    run = api.trigger_dag(environment, "lifecycle")
    left = []
    try:
        left = kill_scheduler_and_worker_mid_attempt(psutil, tmp_path, files)
        assert left, "the fork server and the running attempt were found before the kill"

        def running(process) -> bool:
            try:
                return process.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False
        wait_for(lambda: not [process for process in left if running(process)], timeout=10)
        assert nbflow("scheduler", "--until-idle").returncode == 0
        assert api.get_run(environment, "lifecycle", run.run_id).state == "success"
        from nbflow.store import session_scope, ti_state
        from nbflow.store.keys import TIKey
        with session_scope(environment.sessions) as session:
            first_try = ti_state.get_task_history(session, TIKey("lifecycle", "middle", run.run_id))[0]
        assert first_try.try_number == 1
        try:
            alive = psutil.Process(first_try.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        assert not alive, f"try 1 of middle (pid {first_try.pid}) still runs after try 2 finished the run"
    finally:
        files["release"].touch()
        kill_all(psutil, left)


def test_tasks_logs_with_try_prints_that_attempts_log(env) -> None:
    write_dag(env.dags, "twice.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def work(ti):
            print(f"output of try {ti.try_number}")
            if ti.try_number == 1:
                raise RuntimeError("the first try fails")

        with DAG("twice", schedule=None):
            PythonOperator(task_id="work", python_callable=work, retries=1, retry_delay=0)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "twice")
    assert nbflow("scheduler", "--until-idle").returncode == 0
    first = nbflow("tasks", "logs", "twice", run.run_id, "work", "--try", "1")
    second = nbflow("tasks", "logs", "twice", run.run_id, "work", "--try", "2")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "output of try 1" in first.stdout and "RuntimeError: the first try fails" in first.stdout
    assert "output of try 2" not in first.stdout
    assert "output of try 2" in second.stdout and "[nbflow] success" in second.stdout
    assert "output of try 1" not in second.stdout
