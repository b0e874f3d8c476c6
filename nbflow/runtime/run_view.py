"""What a live view of one DAG shows, read in one go: its runs, one run's task instances, a log tail.

The notebook widget polls it (and the web pages will): plain frozen values, cheap to compare, so a
viewer sends on only what changed. Runs started anywhere show, since all of it comes from the database.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from nbflow.runtime.logs import attempt_log_path
from nbflow.store import dags as dag_rows
from nbflow.store import runs as run_rows
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.utils.masking import masker
from nbflow.utils.state import TaskInstanceState

LOG_TAIL_BYTES = 16_384
RUNS_SHOWN = 25


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    state: str
    logical_date: datetime | None
    run_type: str


@dataclass(frozen=True, slots=True)
class TaskView:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start_date: datetime | None
    duration: float | None
    next_retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunView:
    """One DAG as its viewer sees it now; `run_id` is the run shown (the chosen one, else the latest)."""

    dag_id: str
    paused: bool | None  # None: the database has no row for the DAG yet
    runs: tuple[RunSummary, ...]
    run_id: str | None
    tasks: tuple[TaskView, ...]
    log_task: str | None = None
    log_try: int | None = None
    log: str = ""

    @property
    def states(self) -> dict[str, str | None]:
        """task_id → state of the shown run (a mapped task: its worst-looking instance's state)."""
        out: dict[str, str | None] = {}
        for task in self.tasks:
            if task.map_index < 0 or out.get(task.task_id) in (None, TaskInstanceState.SUCCESS):
                out[task.task_id] = task.state
        return out


def read_run_view(sessions: Callable[[], Session], log_folder: Path, dag_id: str, *, run_id: str | None = None,
                  log_task: str | None = None, log_bytes: int = LOG_TAIL_BYTES) -> RunView:
    """The DAG's recent runs, the chosen (or latest) run's task instances and `log_task`'s current log."""
    with session_scope(sessions) as session:
        row = dag_rows.get_dag_row(session, dag_id)
        runs = tuple(RunSummary(r.run_id, r.state, r.logical_date, r.run_type)
                     for r in run_rows.list_dag_runs(session, dag_id, limit=RUNS_SHOWN))
        chosen_exists = run_id is not None and (any(r.run_id == run_id for r in runs)
                                                or run_rows.get_dag_run(session, dag_id, run_id) is not None)
        shown = run_id if chosen_exists else (runs[0].run_id if runs else None)
        tasks = tuple(TaskView(t.task_id, t.map_index, t.state, t.try_number, t.start_date, t.duration,
                               t.next_retry_at)
                      for t in ti_rows.get_task_instances(session, dag_id, shown)) if shown else ()
    log, log_try = "", None
    if shown and log_task:
        current = [t for t in tasks if t.task_id == log_task]
        if current:
            log_try = max(current[0].try_number, 1)
            log = read_log_tail(attempt_log_path(log_folder, dag_id, shown, log_task, log_try,
                                                 current[0].map_index), log_bytes)
    return RunView(dag_id, row.is_paused if row else None, runs, shown, tasks, log_task, log_try, log)


def read_log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last `limit` bytes of a log, from a line start, secrets masked; empty when there is none yet."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(max(size - limit, 0))
            data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]
    return masker.redact(text)


__all__ = ["RunSummary", "RunView", "TaskView", "read_log_tail", "read_run_view"]
