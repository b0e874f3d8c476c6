"""A real `nbflow scheduler` (local executor, SQLite) with `[smtp]` pointing at a real aiosmtpd server."""
from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbflow.runtime import api
from nbflow.runtime.logs import attempt_log_path, callback_log_path
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    return nbflow_env


@pytest.fixture
def mail_env(env, smtp_server, monkeypatch):
    """`env`, with [smtp] set to the test's SMTP server."""
    for key, value in smtp_server.settings_env().items():
        monkeypatch.setenv(key, value)
    return env


class Scheduler:
    """A running `nbflow scheduler`; `run` triggers a DAG and waits for its end."""

    def __init__(self, process: subprocess.Popen[bytes], stderr: Path, environment: api.Environment) -> None:
        self.process, self.stderr, self.environment = process, stderr, environment

    def run(self, dag_id: str) -> tuple[str, str]:
        run_id = api.trigger_dag(self.environment, dag_id).run_id
        state = wait_for(lambda: (api.get_run(self.environment, dag_id, run_id).state in ("success", "failed")
                                  and api.get_run(self.environment, dag_id, run_id).state), timeout=120)
        return run_id, state

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return attempt_log_path(self.environment.config.log_folder, dag_id, run_id, task_id, try_number).read_text()

    def callbacks_log(self, dag_id: str, run_id: str, *, until: str) -> str:
        path = callback_log_path(self.environment.config.log_folder, dag_id, run_id)
        return wait_for(lambda: path.exists() and until in path.read_text() and path.read_text(), timeout=90)


@contextlib.contextmanager
def running_scheduler(env) -> Iterator[Scheduler]:
    stderr = env.home.parent / "scheduler.err"
    environment = make_env()
    process = start_nbflow_scheduler(stderr)
    try:
        yield Scheduler(process, stderr, environment)
    finally:
        stop_scheduler(process)
