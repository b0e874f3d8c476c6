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

from nbflow.runtime.dag_source import KERNEL_PREFIX
from nbflow.runtime.environment import Environment

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.inprocess import RunResult, TaskEvent
    from nbflow.runtime.run_info import DagRunInfo
    from nbflow.runtime.dag_source import DagSource
    from nbflow.runtime.serialized_dag import SerializedDag
    from nbflow.store.catalog import ListedDag
    from nbflow.store.sqlite_catalog import SqliteCatalog


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


@dataclass(frozen=True, slots=True)
class DagCatalog:
    """The dags folder as the DAG processor sees it: serialized DAGs, import errors, pause flags."""

    dags: "dict[str, SerializedDag]"
    import_errors: dict[str, str]
    paused: dict[str, bool]


def _database_ready(env: Environment) -> bool:
    """Whether the metadata database exists and is at head (asked without Alembic: this is on every listing)."""
    from nbflow.store import session_scope
    from nbflow.store.revision import at_newest_revision, database_file_missing
    if database_file_missing(env.config.sql_alchemy_conn):
        return False
    with session_scope(env.readers) as session:
        return at_newest_revision(session)


def _sqlite_file(env: Environment) -> str | None:
    """The SQLite file this process reads with sqlite3 rather than SQLAlchemy (~0.3 s of imports saved on
    every listing), or None: other databases, and a Jupyter kernel (it refreshes in a spawned process)."""
    from nbflow.runtime.dag_processor import in_kernel
    from nbflow.store.sqlite_catalog import database_file
    return None if in_kernel() else database_file(env.config.sql_alchemy_conn)


def _parsed_without_database(env: Environment) -> DagCatalog:
    """Before `nbflow db init`: every file parsed, in children (in a kernel: its DagBag), nothing stored."""
    from nbflow.runtime import dag_processor
    from nbflow.runtime.serialized_dag import SerializedDag
    if dag_processor.in_kernel():
        bag = env.dagbag
        return DagCatalog({i: SerializedDag.from_dag(d) for i, d in bag.dags.items()}, dict(bag.import_errors), {})
    parsed = dag_processor.parse_folder(dag_processor.ProcessorSettings.from_config(env.config))
    return DagCatalog(parsed.dags, parsed.import_errors, {})


def _refreshed_sqlite(env: Environment, path: str) -> "SqliteCatalog | None":
    """The SQLite catalog brought up to date with the folder, or None before `db init` (or not at head)."""
    from nbflow.runtime import dag_processor
    from nbflow.store.sqlite_catalog import open_catalog
    store = open_catalog(path)
    if store is not None:
        try:
            dag_processor.refresh_catalog(store, dag_processor.ProcessorSettings.from_config(env.config),
                                          sources=kernel_sources(env))
        except BaseException:
            store.close()
            raise
    return store


def _inside(folder: str, dags: "dict[str, Any]", errors: dict[str, str]) -> "tuple[dict[str, Any], dict[str, str]]":
    """The folder's DAGs (and kernels' cells) and the folder's import errors: the database may know others."""
    return ({dag_id: dag for dag_id, dag in dags.items()
             if dag.fileloc.startswith(KERNEL_PREFIX) or _within(dag.fileloc, folder)},
            {path: error for path, error in errors.items() if _within(path, folder)})


def catalog(env: Environment) -> DagCatalog:
    """The DAGs of the dags folder, parsed only in child processes (never in this one).

    With a database at head, changed files are parsed again and stored, then everything is read back
    (inside a Jupyter kernel, which must not fork, a spawned process refreshes). Before `nbflow db init`
    every file is parsed, in children, and nothing is stored. SQLite is read with sqlite3, other
    databases through SQLAlchemy; both store and return the same.
    """
    from nbflow.runtime import dag_processor
    from nbflow.runtime.serialized_dag import SerializedDag
    folder = os.path.abspath(env.config.dags_folder)
    path = _sqlite_file(env)
    if path is not None:
        sqlite_store = _refreshed_sqlite(env, path)
        if sqlite_store is None:
            return _parsed_without_database(env)
        with sqlite_store:
            dags = {row.dag_id: SerializedDag(row.data) for row in sqlite_store.serialized_dags()}
            errors = sqlite_store.import_errors()
            paused = sqlite_store.paused_flags()
        return DagCatalog(*_inside(folder, dags, errors), paused)
    if not _database_ready(env):
        return _parsed_without_database(env)
    if dag_processor.in_kernel():
        dag_processor.refresh_in_subprocess(env.config, sources=kernel_sources(env))
    else:
        dag_processor.refresh(env.sessions, dag_processor.ProcessorSettings.from_config(env.config),
                              sources=kernel_sources(env))
    from nbflow.store import dags as dag_rows
    from nbflow.store import serialized_dags as stored
    from nbflow.store import session_scope
    with session_scope(env.readers) as session:
        dags = {row.dag_id: SerializedDag(row.data) for row in stored.list_serialized_dags(session)}
        errors = stored.import_errors(session)
        paused = {row.dag_id: row.is_paused for row in dag_rows.list_dags(session, include_inactive=True)}
    return DagCatalog(*_inside(folder, dags, errors), paused)


def kernel_sources(env: Environment) -> "list[DagSource]":
    """DAG sources a kernel registered (cells): parsed by the DAG processor like files, from their text."""
    bag = env._dagbag  # only if this environment already holds one: building it would parse the folder here
    return list(getattr(bag, "sources", {}).values()) if bag is not None else []


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _listed(env: Environment) -> "tuple[list[ListedDag], dict[str, bool], int]":
    """The folder's DAGs as a listing shows them, the pause flags, the number of import errors.

    On SQLite only the listed fields are read (in SQL): decoding 500 serialized DAGs would cost more
    than the rest of an unchanged listing."""
    from nbflow.store.catalog import ListedDag
    path = _sqlite_file(env)
    sqlite_store = _refreshed_sqlite(env, path) if path is not None else None
    if sqlite_store is None:
        found = catalog(env)
        return ([ListedDag.from_data(found.dags[dag_id].data) for dag_id in sorted(found.dags)], found.paused,
                len(found.import_errors))
    folder = os.path.abspath(env.config.dags_folder)
    with sqlite_store:
        listed, errors = _inside(folder, {row.dag_id: row for row in sqlite_store.listed_dags()},
                                 sqlite_store.import_errors())
        paused = sqlite_store.paused_flags()
    return [listed[dag_id] for dag_id in sorted(listed)], paused, len(errors)


def list_dags(env: Environment) -> DagListing:
    """Every DAG of the dags folder, sorted by id, with its pause flag (recorded, else its default)."""
    listed, paused, error_count = _listed(env)
    folder = Path(os.path.abspath(env.config.dags_folder))
    default_paused = env.config.getboolean("core", "dags_are_paused_at_creation")
    rows = []
    for dag in listed:
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
    found = catalog(env)
    if dag_id in found.dags:
        return found.dags[dag_id]
    from nbflow.exceptions import DagNotFound, DagsFolderNotFound
    from nbflow.runtime.file_parsing import definition_line
    if not env.config.dags_folder.exists():
        raise DagsFolderNotFound(str(env.config.dags_folder))
    for path, error in sorted(found.import_errors.items()):
        try:
            source = Path(path).read_bytes()
        except OSError:
            continue
        if definition_line(source, dag_id) is not None:
            raise DagNotFound(f"DAG {dag_id!r} could not be loaded: {error.splitlines()[0]}")
    known = ", ".join(sorted(found.dags)) or "none"
    hint = f"; {len(found.import_errors)} file(s) failed to import (nbflow dags list-import-errors)" \
        if found.import_errors else ""
    raise DagNotFound(f"DAG {dag_id!r} not found in {env.config.dags_folder}; known: {known}{hint}")


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
