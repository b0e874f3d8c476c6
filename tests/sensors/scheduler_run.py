"""A real `nbflow scheduler` (local executor, SQLite file) for the sensor and cross-DAG tests."""
from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from nbflow.runtime import api
from nbflow.store import session_scope
from nbflow.store import ti_state
from nbflow.store.keys import TIKey
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

FINISHED_RUN = ("success", "failed")


class Scheduler:
    """A running `nbflow scheduler`, and the metadata database it writes."""

    def __init__(self, process: subprocess.Popen[bytes], stderr: Path, environment: api.Environment) -> None:
        self.process, self.stderr, self.env = process, stderr, environment

    def trigger(self, dag_id: str, conf: dict | None = None, **kwargs) -> str:
        return api.trigger_dag(self.env, dag_id, conf=conf, **kwargs).run_id

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float = 120) -> str:
        """The run's final state, once it has one."""
        return wait_for(lambda: (api.get_run(self.env, dag_id, run_id).state in FINISHED_RUN
                                 and api.get_run(self.env, dag_id, run_id).state), timeout=timeout)

    def run(self, dag_id: str, conf: dict | None = None) -> tuple[str, str]:
        run_id = self.trigger(dag_id, conf)
        return run_id, self.wait_run(dag_id, run_id)

    def states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {row.task_id: row.state for row in api.task_states(self.env, dag_id, run_id)}

    def instance(self, dag_id: str, run_id: str, task_id: str):
        return next(row for row in api.task_states(self.env, dag_id, run_id) if row.task_id == task_id)

    def history(self, dag_id: str, run_id: str, task_id: str):
        with session_scope(self.env.readers) as session:
            return ti_state.get_task_history(session, TIKey(dag_id, task_id, run_id))

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        return api.log_path(self.env, dag_id, run_id, task_id, try_number).read_text()


@contextlib.contextmanager
def running_scheduler(nbflow_env) -> Iterator[Scheduler]:
    """`nbflow scheduler` for one test, started after the test wrote its DAGs; SIGTERM and a bounded wait at the end."""
    stderr = nbflow_env.home.parent / "scheduler.err"
    environment = make_env()
    process = start_nbflow_scheduler(stderr)
    try:
        yield Scheduler(process, stderr, environment)
    finally:
        stop_scheduler(process)
