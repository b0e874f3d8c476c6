"""The dags folder as the DAG processor sees it, read without importing a DAG file in this process.

`catalog` parses changed files in child processes (and stores them, once the metadata database
exists), then reads back serialized DAGs, import errors and pause flags. Listings draw from it, and
so does every command that must find which file defines a DAG before it imports that one file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import DagNotFound, DagsFolderNotFound
from nbflow.runtime.dag_source import KERNEL_PREFIX

if TYPE_CHECKING:
    from nbflow.runtime.dag_source import DagSource
    from nbflow.runtime.environment import Environment
    from nbflow.runtime.serialized_dag import SerializedDag
    from nbflow.store.catalog import ListedDag
    from nbflow.store.sqlite_catalog import SqliteCatalog


@dataclass(frozen=True, slots=True)
class DagCatalog:
    """The dags folder as the DAG processor sees it: serialized DAGs, import errors, pause flags."""

    dags: "dict[str, SerializedDag]"
    import_errors: dict[str, str]
    paused: dict[str, bool]

    def find(self, dag_id: str, folder: Path) -> "SerializedDag":
        """The DAG `dag_id`; DagNotFound names the known ids or says why the file defining it failed."""
        if dag_id in self.dags:
            return self.dags[dag_id]
        from nbflow.runtime.file_parsing import definition_line
        if not folder.exists():
            raise DagsFolderNotFound(str(folder))
        for path, error in sorted(self.import_errors.items()):
            try:
                source = Path(path).read_bytes()
            except OSError:
                continue
            if definition_line(source, dag_id) is not None:
                raise DagNotFound(f"DAG {dag_id!r} could not be loaded: {error.splitlines()[0]}")
        known = ", ".join(sorted(self.dags)) or "none"
        hint = f"; {len(self.import_errors)} file(s) failed to import (nbflow dags list-import-errors)" \
            if self.import_errors else ""
        raise DagNotFound(f"DAG {dag_id!r} not found in {folder}; known: {known}{hint}")

    def importable(self, dag_id: str, folder: Path) -> "SerializedDag":
        """As `find`, and DagNotFound when the DAG's file fails to import now (its DAG is kept as last
        stored): the stored error, in one line naming the file, instead of importing it again."""
        dag = self.find(dag_id, folder)
        error = self.import_errors.get(dag.fileloc)
        if error:
            raise DagNotFound(f"DAG {dag_id!r} could not be loaded: {error.splitlines()[0]}")
        return dag


def _database_ready(env: "Environment") -> bool:
    """Whether the metadata database exists and is at head (asked without Alembic: this is on every listing)."""
    from nbflow.store import session_scope
    from nbflow.store.revision import at_newest_revision, database_file_missing
    if database_file_missing(env.config.sql_alchemy_conn):
        return False
    with session_scope(env.readers) as session:
        return at_newest_revision(session)


def _sqlite_file(env: "Environment") -> str | None:
    """The SQLite file this process reads with sqlite3 rather than SQLAlchemy (~0.3 s of imports saved on
    every listing), or None: other databases, and a Jupyter kernel (it refreshes in a spawned process)."""
    from nbflow.runtime.dag_processor import in_kernel
    from nbflow.store.sqlite_catalog import database_file
    return None if in_kernel() else database_file(env.config.sql_alchemy_conn)


def _parsed_without_database(env: "Environment", sources: "list[DagSource]", dag_id: str | None) -> DagCatalog:
    """Before `nbflow db init`: the files (and, in a kernel, its registered cells) parsed in children,
    nothing stored; a kernel, which must not fork, has a spawned process do it. Looking for `dag_id`,
    the files naming it come first and the others only when none defines it (`parse_folder`)."""
    from nbflow.runtime import dag_processor
    if dag_processor.in_kernel():
        parsed = dag_processor.parse_folder_in_subprocess(env.config, sources=sources, dag_id=dag_id)
    else:
        parsed = dag_processor.parse_folder(dag_processor.ProcessorSettings.from_config(env.config), dag_id=dag_id)
    return DagCatalog(parsed.dags, parsed.import_errors, {})


def _refreshed_sqlite(env: "Environment", path: str, sources: "list[DagSource]") -> "SqliteCatalog | None":
    """The SQLite catalog brought up to date with the folder, or None before `db init` (or not at head)."""
    from nbflow.runtime import dag_processor
    from nbflow.store.sqlite_catalog import open_catalog
    store = open_catalog(path)
    if store is not None:
        try:
            dag_processor.refresh_catalog(store, dag_processor.ProcessorSettings.from_config(env.config),
                                          sources=sources)
        except BaseException:
            store.close()
            raise
    return store


def _inside(folder: str, dags: "dict[str, Any]", errors: dict[str, str]) -> "tuple[dict[str, Any], dict[str, str]]":
    """The folder's DAGs (and kernels' cells) and the folder's import errors: the database may know others."""
    return ({dag_id: dag for dag_id, dag in dags.items()
             if dag.fileloc.startswith(KERNEL_PREFIX) or _within(dag.fileloc, folder)},
            {path: error for path, error in errors.items() if _within(path, folder)})


def catalog(env: "Environment", *, cells: bool = True, dag_id: str | None = None) -> DagCatalog:
    """The DAGs of the dags folder, parsed only in child processes (never in this one).

    With a database at head, changed files are parsed again and stored, then everything is read back
    (inside a Jupyter kernel, which must not fork, a spawned process refreshes). Before `nbflow db init`
    every file (and, in a kernel, its registered cells) is parsed, in children, and nothing is stored;
    a caller looking for one DAG names it (`dag_id`): then the catalog may hold only the files that
    were needed to find it, or to say that no file defines it.
    SQLite is read with sqlite3, other databases through SQLAlchemy; both store and return the same.
    `cells=False` leaves the environment's kernel cells out of the refresh: a kernel's magics hold their
    own DAGs and ask only for the folder's.
    """
    from nbflow.runtime import dag_processor
    from nbflow.runtime.serialized_dag import SerializedDag
    folder = os.path.abspath(env.config.dags_folder)
    sources = kernel_sources(env) if cells else []
    path = _sqlite_file(env)
    if path is not None:
        sqlite_store = _refreshed_sqlite(env, path, sources)
        if sqlite_store is None:
            return _parsed_without_database(env, sources, dag_id)
        with sqlite_store:
            dags = {row.dag_id: SerializedDag(row.data) for row in sqlite_store.serialized_dags()}
            errors = sqlite_store.import_errors()
            paused = sqlite_store.paused_flags()
        return DagCatalog(*_inside(folder, dags, errors), paused)
    if not _database_ready(env):
        return _parsed_without_database(env, sources, dag_id)
    if dag_processor.in_kernel():
        dag_processor.refresh_in_subprocess(env.config, sources=sources)
    else:
        dag_processor.refresh(env.sessions, dag_processor.ProcessorSettings.from_config(env.config),
                              sources=sources)
    from nbflow.store import dags as dag_rows
    from nbflow.store import serialized_dags as stored
    from nbflow.store import session_scope
    with session_scope(env.readers) as session:
        dags = {row.dag_id: SerializedDag(row.data) for row in stored.list_serialized_dags(session)}
        errors = stored.import_errors(session)
        paused = {row.dag_id: row.is_paused for row in dag_rows.list_dags(session, include_inactive=True)}
    return DagCatalog(*_inside(folder, dags, errors), paused)


def listed(env: "Environment") -> "tuple[list[ListedDag], dict[str, bool], int]":
    """The folder's DAGs as a listing shows them, the pause flags, the number of import errors.

    On SQLite only the listed fields are read (in SQL): decoding 500 serialized DAGs would cost more
    than the rest of an unchanged listing."""
    from nbflow.store.catalog import ListedDag
    path = _sqlite_file(env)
    sqlite_store = _refreshed_sqlite(env, path, kernel_sources(env)) if path is not None else None
    if sqlite_store is None:
        found = catalog(env)
        return ([ListedDag.from_data(found.dags[dag_id].data) for dag_id in sorted(found.dags)], found.paused,
                len(found.import_errors))
    folder = os.path.abspath(env.config.dags_folder)
    with sqlite_store:
        rows, errors = _inside(folder, {row.dag_id: row for row in sqlite_store.listed_dags()},
                               sqlite_store.import_errors())
        paused = sqlite_store.paused_flags()
    return [rows[dag_id] for dag_id in sorted(rows)], paused, len(errors)


def kernel_sources(env: "Environment") -> "list[DagSource]":
    """DAG sources a kernel registered (cells): parsed by the DAG processor like files, from their text."""
    bag = env.held_dagbag  # only if this environment already holds one: building it would parse the folder here
    return list(getattr(bag, "sources", {}).values()) if bag is not None else []


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


__all__ = ["DagCatalog", "catalog", "kernel_sources", "listed"]
