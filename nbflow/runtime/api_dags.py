"""DAGs as the dags folder defines them: list, find, report broken files, test-run one in this process.

Part of the door `nbflow.runtime.api` (re-exported there); none of these needs a running scheduler,
and only `list_dags` reads the metadata database (for pause flags, when it exists).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.runtime.environment import Environment

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.inprocess import RunResult, TaskEvent
    from nbflow.runtime.run_info import DagRunInfo


@dataclass(frozen=True, slots=True)
class DagSummary:
    """One DAG of the dags folder as a listing shows it; `file` is relative to the dags folder."""

    dag_id: str
    file: str
    fileloc: str
    schedule: str | None
    tags: tuple[str, ...]
    paused: bool


@dataclass(frozen=True, slots=True)
class ImportErrorEntry:
    """A DAG file that failed to load: `file` relative to the dags folder, `error` with its traceback."""

    file: str
    path: str
    error: str

    @property
    def summary(self) -> str:
        """The error's first line: `file:line: Type: message`."""
        return self.error.splitlines()[0] if self.error else ""


@dataclass(frozen=True, slots=True)
class DagListing:
    """The DAGs of one dags folder, and how many of its files failed to load."""

    folder: Path
    dags: tuple[DagSummary, ...]
    import_error_count: int


def _relative(path: str, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return path


def _paused_flags(env: Environment) -> dict[str, bool]:
    """Pause flags recorded in the metadata database; none when it does not exist (yet)."""
    from nbflow.runtime.api_db import check_database
    status = check_database(env)
    if not (status.reachable and status.at_head):
        return {}
    from nbflow.store import dags as dag_rows
    from nbflow.store import session_scope
    with session_scope(env.readers) as session:
        return {row.dag_id: row.is_paused for row in dag_rows.list_dags(session, include_inactive=True)}


def list_dags(env: Environment) -> DagListing:
    """Every DAG of the dags folder, sorted by id, with its pause flag (recorded, else its default)."""
    bag = env.dagbag
    paused = _paused_flags(env)
    default_paused = env.config.getboolean("core", "dags_are_paused_at_creation")
    rows = []
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        rows.append(DagSummary(
            dag_id=dag_id, file=_relative(dag.fileloc, bag.dag_folder), fileloc=dag.fileloc,
            schedule=None if dag.schedule is None else dag.timetable.summary, tags=tuple(dag.tags),
            paused=paused.get(dag_id, default_paused if dag.is_paused_upon_creation is None
                              else dag.is_paused_upon_creation)))
    return DagListing(folder=bag.dag_folder, dags=tuple(rows), import_error_count=len(bag.import_errors))


def list_import_errors(env: Environment) -> list[ImportErrorEntry]:
    """The dags folder's files that failed to load, by path; a secret an exception quotes is masked."""
    from nbflow.utils.masking import masker
    bag = env.dagbag
    return [ImportErrorEntry(file=_relative(path, bag.dag_folder), path=path, error=masker.redact(error))
            for path, error in sorted(bag.import_errors.items())]


def get_dag(env: Environment, dag_id: str) -> "DAG":
    """The DAG `dag_id` (to draw or inspect); DagNotFound names the known ids or why its file failed."""
    return env.get_dag(dag_id)


def new_test_run(env: Environment, dag_id: str, *, logical_date: datetime | None = None,
                 conf: dict[str, Any] | None = None) -> "DagRunInfo":
    """The run `run_dag_test` will execute (made first, so a caller can name it before it starts)."""
    from nbflow.runtime.inprocess import make_run_info
    return make_run_info(env.get_dag(dag_id), logical_date, conf)


def run_dag_test(env: Environment, run: "DagRunInfo", *, task_ids: set[str] | None = None,
                 echo: TextIO | None = None, on_event: "Callable[[TaskEvent], None] | None" = None) -> "RunResult":
    """Run every task (or `task_ids`) of `run` in this process, in dependency order; no database.

    Task output is copied to `echo`; `on_event` hears each task instance start and finish.
    """
    from nbflow.runtime.inprocess import run_dag_in_process
    dag = env.get_dag(run.dag_id)
    return run_dag_in_process(dag, run=run, log_folder=env.config.log_folder, task_ids=task_ids, echo=echo,
                              on_event=on_event, max_xcom_size=env.config.getint("core", "max_xcom_size"))
