"""The local executor's worker: it claims and records attempts; forked processes only run tasks."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from nbflow.runtime import api
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import lines, make_env, run_scheduler_until_idle, wait_for


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


def states(environment: api.Environment, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {row.task_id: row.state for row in api.task_states(environment, dag_id, run_id)}


def test_an_attempt_that_exits_before_reporting_fails_instead_of_staying_running(env) -> None:
    write_dag(env.dags, "quits.py", """
        import os
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("quits", schedule=None):
            PythonOperator(task_id="quits", python_callable=lambda: os._exit(0))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "quits")
    run_scheduler_until_idle(environment)
    assert states(environment, "quits", run.run_id) == {"quits": "failed"}
    assert api.get_run(environment, "quits", run.run_id).failed_task == "quits"


def test_attempt_processes_hold_no_database_connection(env, tmp_path: Path) -> None:
    marks = tmp_path / "open_files.txt"
    write_dag(env.dags, "files.py", f"""
        import os
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def list_open_files():
            names = []
            for fd in os.listdir("/proc/self/fd"):
                try:
                    names.append(os.readlink(f"/proc/self/fd/{{fd}}"))
                except OSError:
                    pass
            Path({str(marks)!r}).write_text("\\n".join(names))

        with DAG("files", schedule=None):
            PythonOperator(task_id="files", python_callable=list_open_files)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "files")
    run_scheduler_until_idle(environment)
    assert states(environment, "files", run.run_id) == {"files": "success"}
    opened = lines(marks)
    assert opened, "the task listed its open files"
    assert not [name for name in opened if "nbflow.db" in name]


def test_a_killed_fork_server_takes_its_attempt_along_and_is_replaced(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    write_dag(env.dags, "server.py", f"""
        import os, signal, time
        from pathlib import Path
        from nbflow import DAG
        from nbflow.models.baseoperator import chain
        from nbflow.operators.python import PythonOperator

        MARKS = Path({str(marks)!r})

        def mark(name, kill_parent=False, ti=None):
            with MARKS.open("a") as f:
                f.write(f"{{name}} {{ti.try_number}}\\n")
            if kill_parent and ti.try_number == 1:
                os.kill(os.getppid(), signal.SIGKILL)  # the fork server that forked this attempt
                time.sleep(30)  # never reached: the kernel stops this process with its parent

        with DAG("server", schedule=None, default_args={{"retries": 1, "retry_delay": 0}}):
            chain(PythonOperator(task_id="a", python_callable=mark, op_args=["a", True]),
                  PythonOperator(task_id="b", python_callable=mark, op_args=["b"]),
                  PythonOperator(task_id="c", python_callable=mark, op_args=["c"]))
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "server")
    run_scheduler_until_idle(environment)
    assert states(environment, "server", run.run_id) == {"a": "success", "b": "success", "c": "success"}
    assert lines(marks) == ["a 1", "a 2", "b 1", "c 1"]


def test_a_changed_dag_file_runs_its_new_code_under_a_running_scheduler(env, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    text = """
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("versioned", schedule=None):
            PythonOperator(task_id="say", python_callable=lambda: Path({marks!r}).open("a").write("{word}\\n"))
    """
    path = write_dag(env.dags, "versioned.py", text.format(marks=str(marks), word="before"))
    environment = make_env()
    scheduler = api.make_scheduler(environment, executor="local")
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        first = api.trigger_dag(environment, "versioned")
        wait_for(lambda: api.get_run(environment, "versioned", first.run_id).state == "success")
        write_dag(env.dags, "versioned.py", text.format(marks=str(marks), word="after"))
        stamp = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(stamp, stamp))  # a different mtime even on a coarse clock
        second = api.trigger_dag(environment, "versioned")
        wait_for(lambda: api.get_run(environment, "versioned", second.run_id).state == "success")
    finally:
        scheduler.stop()
        thread.join(timeout=60)
    assert lines(marks) == ["before", "after"]


def test_a_broken_dag_file_runs_as_last_loaded_after_the_fork_server_is_replaced(env, tmp_path: Path) -> None:
    keeper = write_dag(env.dags, "keeper.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("keeper", schedule=None):
            PythonOperator(task_id="work", python_callable=lambda: 1)
    """)
    other = write_dag(env.dags, "other.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator
        with DAG("other", schedule=None):
            PythonOperator(task_id="work", python_callable=lambda: {version})
    """.replace("{version}", "1"))
    environment = make_env()
    scheduler = api.make_scheduler(environment, executor="local")
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        first = api.trigger_dag(environment, "keeper")
        wait_for(lambda: api.get_run(environment, "keeper", first.run_id).state == "success")
        keeper.write_text(keeper.read_text() + "\nthis is broken(\n")
        other.write_text(other.read_text().replace("lambda: 1", "lambda: 2"))
        for path in (keeper, other):
            stamp = path.stat().st_mtime_ns + 1_000_000_000
            os.utime(path, ns=(stamp, stamp))
        # the other file's change makes the worker start a new fork server, which parses keeper.py broken
        changed = api.trigger_dag(environment, "other")
        wait_for(lambda: api.get_run(environment, "other", changed.run_id).state == "success")
        second = api.trigger_dag(environment, "keeper")
        wait_for(lambda: api.get_run(environment, "keeper", second.run_id).state in ("success", "failed"))
    finally:
        scheduler.stop()
        thread.join(timeout=60)
    assert api.get_run(environment, "keeper", second.run_id).state == "success"
    assert "Returned value was: 1" in api.log_path(environment, "keeper", second.run_id, "work", None).read_text()


def test_a_killed_worker_is_replaced_and_its_attempt_retried(env, tmp_path: Path) -> None:
    marks, started = tmp_path / "marks.txt", tmp_path / "started"
    write_dag(env.dags, "victim.py", f"""
        import time
        from pathlib import Path
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def work(ti):
            with open({str(marks)!r}, "a") as f:
                f.write(f"work {{ti.try_number}}\\n")
            if ti.try_number == 1:
                Path({str(started)!r}).touch()
                time.sleep(60)  # killed with its worker long before this ends

        with DAG("victim", schedule=None, default_args={{"retries": 1, "retry_delay": 0}}):
            PythonOperator(task_id="work", python_callable=work) >> PythonOperator(task_id="after", python_callable=lambda: 1)
    """)
    environment = make_env()
    run = api.trigger_dag(environment, "victim")
    scheduler = api.make_scheduler(environment, executor="local")
    thread = threading.Thread(target=lambda: scheduler.run(until_idle=True), daemon=True)
    thread.start()
    try:
        wait_for(started.exists)
        worker = scheduler.executor._proc
        os.kill(worker.pid, 9)
        thread.join(timeout=60)
    finally:
        scheduler.stop()
    assert api.get_run(environment, "victim", run.run_id).state == "success"
    assert lines(marks) == ["work 1", "work 2"]
    assert scheduler.executor._proc is None or scheduler.executor._proc.pid != worker.pid
