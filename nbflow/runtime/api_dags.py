"""DAGs as the dags folder defines them: list, find, report broken files, test-run one in this process.

Part of the door `nbflow.runtime.api` (re-exported there); none of these needs a running scheduler,
and the listings never import a DAG file in this process: they read what the DAG processor stored
(`catalog`), parsing changed files in child processes first.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.runtime.dag_catalog import catalog as catalog
from nbflow.runtime.dag_catalog import kernel_sources as kernel_sources
from nbflow.runtime.dag_catalog import listed
from nbflow.runtime.environment import Environment

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.inprocess import RunResult, TaskEvent
    from nbflow.runtime.run_info import DagRunInfo
    from nbflow.runtime.serialized_dag import SerializedDag


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
    prefix = os.path.join(folder, "")
    if path.startswith(prefix):  # the usual case, without relpath's normalising (~10 ms for 500 DAGs)
        rest = path[len(prefix):]
        if rest and os.path.normpath(rest) == rest:
            return rest
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive on Windows
        return path


def list_dags(env: Environment) -> DagListing:
    """Every DAG of the dags folder, sorted by id, with its pause flag (recorded, else its default)."""
    rows_listed, paused, error_count = listed(env)
    folder = Path(os.path.abspath(env.config.dags_folder))
    default_paused = env.config.getboolean("core", "dags_are_paused_at_creation")
    rows = []
    for dag in rows_listed:
        rows.append(DagSummary(
            dag_id=dag.dag_id, file=_relative(dag.fileloc, folder), fileloc=dag.fileloc,
            schedule=dag.schedule, tags=dag.tags,
            paused=paused.get(dag.dag_id, default_paused if dag.is_paused_upon_creation is None
                              else dag.is_paused_upon_creation)))
    return DagListing(folder=folder, dags=tuple(rows), import_error_count=error_count)


def list_import_errors(env: Environment) -> list[ImportErrorEntry]:
    """The dags folder's files that failed to load, by path; a secret an exception quotes is masked."""
    from nbflow.utils.masking import masker
    folder = Path(os.path.abspath(env.config.dags_folder))
    return [ImportErrorEntry(file=_relative(path, folder), path=path, error=masker.redact(error))
            for path, error in sorted(catalog(env).import_errors.items())]


def get_serialized_dag(env: Environment, dag_id: str) -> "SerializedDag":
    """The DAG `dag_id` as stored by the DAG processor (to draw or list its tasks), its file never
    imported here; DagNotFound names the known ids or says why the file defining it failed."""
    return catalog(env, dag_id=dag_id).find(dag_id, env.config.dags_folder)


def dag_structure(env: Environment, dag_id: str) -> "DAG | SerializedDag":
    """The DAG for use cases that run none of its code (trigger, pause, clear, backfill, existence checks):
    as the DAG processor stored it, its file never imported here (a Jupyter kernel included: a spawned
    processor parses there). An environment that already holds the DAG in process (a kernel's cells)
    answers from it."""
    held = env.held_dagbag
    if held is not None and dag_id in held.dags:
        return held.dags[dag_id]
    return get_serialized_dag(env, dag_id)


def dag_finder(env: Environment) -> "Callable[[str], DAG | SerializedDag]":
    """`dag_structure` for several DAGs with one look at the dags folder, taken now: for use cases that
    look DAGs up while they hold a write transaction (the DAG processor stores what it parses)."""
    found = catalog(env)
    held = env.held_dagbag

    def find(dag_id: str) -> "DAG | SerializedDag":
        if held is not None and dag_id in held.dags:
            return held.dags[dag_id]
        return found.find(dag_id, env.config.dags_folder)

    return find


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """One task of a DAG as `tasks list` shows it."""

    task_id: str
    operator: str
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    trigger_rule: str
    retries: int
    pool: str
    is_mapped: bool


def list_tasks(env: Environment, dag_id: str) -> list[TaskSummary]:
    """The tasks of DAG `dag_id`, in the order the DAG defines them (from the stored DAG)."""
    dag = get_serialized_dag(env, dag_id)
    return [TaskSummary(task.task_id, task.operator_name, tuple(sorted(task.upstream_task_ids)),
                        tuple(sorted(task.downstream_task_ids)), task.trigger_rule, task.retries, task.pool,
                        task.is_mapped) for task in dag.tasks]


def get_dag(env: Environment, dag_id: str) -> "DAG":
    """The DAG `dag_id` with its code, to run it here: only the file defining it is imported in this
    process (Environment.get_dag); DagNotFound names the known ids or why its file failed."""
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
