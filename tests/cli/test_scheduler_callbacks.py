"""DAG callbacks under a real `nbflow scheduler` process: each runs in a child, so none can take the scheduler down.

Each test writes a DAG whose callback misbehaves in one way (segfault, `os._exit`, hang, raise), or
behaves and looks at what it was given, runs it under `nbflow scheduler` (local executor, real
SQLite file) and reads the run's callbacks.log and the scheduler's own log (its stderr).
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.logs import callback_log_path
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

DAG_WITH_CALLBACK = """
import ctypes, os, signal, time
from pathlib import Path
from nbflow import DAG
from nbflow.models import Variable
from nbflow.operators.python import PythonOperator

def callback(context):
{body}

def fail():
    raise RuntimeError("the task fails, so the failure callback runs")

with DAG("noisy", schedule=None, on_failure_callback=callback, on_success_callback=callback):
    PythonOperator(task_id="work", python_callable={task})

with DAG("quiet", schedule=None):
    PythonOperator(task_id="work", python_callable=lambda: None)
"""


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


class Scheduler:
    """A running `nbflow scheduler` and what it wrote to its log."""

    def __init__(self, process: subprocess.Popen[bytes], stderr: Path, environment: api.Environment) -> None:
        self.process, self.stderr, self.environment = process, stderr, environment

    def run(self, dag_id: str, conf: dict | None = None) -> tuple[str, str]:
        """Trigger `dag_id`, wait until its run ended; (run id, final state)."""
        run_id = api.trigger_dag(self.environment, dag_id, conf=conf).run_id
        state = wait_for(lambda: (api.get_run(self.environment, dag_id, run_id).state in ("success", "failed")
                                  and api.get_run(self.environment, dag_id, run_id).state), timeout=90)
        return run_id, state

    def callbacks_log(self, dag_id: str, run_id: str, *, until: str) -> str:
        """The run's callbacks.log once it contains `until` (the callback's end line is written last)."""
        path = callback_log_path(self.environment.config.log_folder, dag_id, run_id)
        return wait_for(lambda: path.exists() and until in path.read_text() and path.read_text(), timeout=90)

    def log_lines(self, containing: str) -> list[str]:
        return [line for line in self.stderr.read_text().splitlines() if containing in line]


@contextlib.contextmanager
def running_scheduler(env) -> Iterator[Scheduler]:
    """`nbflow scheduler` for one test (started after the test wrote its DAG); SIGTERM and a bounded wait at the end."""
    stderr = env.home.parent / "scheduler.err"
    environment = make_env()
    process = start_nbflow_scheduler(stderr)
    try:
        yield Scheduler(process, stderr, environment)
    finally:
        stop_scheduler(process)


def dag(env, body: str, *, task: str = "fail") -> None:
    """The DAG `noisy`, whose success and failure callback is `body` (statements, not indented) and whose one
    task runs `task`; and a DAG `quiet` that just succeeds."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    write_dag(env.dags, "noisy.py", DAG_WITH_CALLBACK.format(body=indented, task=task))


def test_a_segfaulting_callback_leaves_the_scheduler_running_and_its_log_names_the_signal(env) -> None:
    dag(env, "ctypes.string_at(0)")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("noisy")
        assert state == "failed"
        log = scheduler.callbacks_log("noisy", run_id, until="signal 11")
        assert "was killed by signal 11 (SIGSEGV)" in log
        assert scheduler.run("quiet")[1] == "success"
        assert scheduler.process.poll() is None
        warnings = scheduler.log_lines("callback's process")
        assert len(warnings) == 1 and "DAG noisy: failed callback" in warnings[0] and "SIGSEGV" in warnings[0]


def test_a_callback_calling_os_exit_is_logged_with_its_exit_code(env) -> None:
    dag(env, "os._exit(3)")
    with running_scheduler(env) as scheduler:
        run_id, _ = scheduler.run("noisy")
        assert "the callback's process exited with code 3" in scheduler.callbacks_log("noisy", run_id,
                                                                                       until="exited with code")
        assert scheduler.run("quiet")[1] == "success"


def test_a_callback_that_outlives_callback_timeout_is_killed_and_logged_as_timed_out(env, tmp_path: Path,
                                                                                     monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__SCHEDULER__CALLBACK_TIMEOUT", "1")
    pid_file = tmp_path / "callback.pid"
    dag(env, f"Path({str(pid_file)!r}).write_text(str(os.getpid()))\ntime.sleep(600)")
    with running_scheduler(env) as scheduler:
        run_id, _ = scheduler.run("noisy")
        log = scheduler.callbacks_log("noisy", run_id, until="timed out")
        assert "timed out after 1 s ([scheduler] callback_timeout) and was killed" in log
        assert not Path(f"/proc/{pid_file.read_text()}").exists()
        assert scheduler.run("quiet")[1] == "success"


def test_a_callback_that_raises_leaves_its_traceback_in_callbacks_log(env) -> None:
    dag(env, 'raise ValueError("the webhook answered 500")')
    with running_scheduler(env) as scheduler:
        run_id, _ = scheduler.run("noisy")
        log = scheduler.callbacks_log("noisy", run_id, until="reported a failure")
        assert "Traceback (most recent call last)" in log
        assert "ValueError: the webhook answered 500" in log
        assert len(scheduler.log_lines("callback's process reported a failure")) == 1


def test_a_success_callback_receives_the_dag_the_run_and_the_reason(env, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    dag(env, f"""
run = context["dag_run"]
Path({str(seen)!r}).write_text(" ".join([context["dag"].dag_id, context["run_id"], run.run_id,
                                         context["reason"], str(run.conf), context["ds"]]))
""", task="lambda: None")
    with running_scheduler(env) as scheduler:
        run_id, state = scheduler.run("noisy", conf={"day": 3})
        assert state == "success"
        assert "DAG noisy: success callback: done" in scheduler.callbacks_log("noisy", run_id, until="done")
        logical = api.get_run(scheduler.environment, "noisy", run_id).logical_date
        assert seen.read_text() == f"noisy {run_id} {run_id} success {{'day': 3}} {logical:%Y-%m-%d}"
        assert scheduler.log_lines("callback's process") == []


def test_a_callback_printing_a_secret_variable_shows_it_masked(env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW_VAR_API_KEY", "hunter2-very-secret")
    dag(env, 'print("the key is", Variable.get("api_key"))')
    with running_scheduler(env) as scheduler:
        run_id, _ = scheduler.run("noisy")
        log = scheduler.callbacks_log("noisy", run_id, until="failed callback: done")
        assert "the key is ***" in log
        assert "hunter2-very-secret" not in log


def test_a_stopping_scheduler_waits_for_the_callback_in_flight(env, tmp_path: Path) -> None:
    started, finished = tmp_path / "started", tmp_path / "finished"
    dag(env, f"Path({str(started)!r}).touch()\ntime.sleep(1)\nPath({str(finished)!r}).touch()")
    with running_scheduler(env) as scheduler:
        api.trigger_dag(scheduler.environment, "noisy")
        wait_for(started.exists, timeout=90)
        scheduler.process.send_signal(signal.SIGTERM)
        assert scheduler.process.wait(timeout=90) == 0
    assert finished.exists()
