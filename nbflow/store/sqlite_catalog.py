"""The DAG processor's tables (`dag_file`, `serialized_dag`, the `dag` pause flags) through stdlib sqlite3.

`nbflow dags list` runs once per command: on SQLite, importing SQLAlchemy's ORM alone costs it more than
the whole listing should (issue 14: <= 0.1 s with nothing changed). This module reads and writes the
same rows as `serialized_dags` and `dags` do through SQLAlchemy, in the same formats (JSON text from
`json.dumps`, naive UTC timestamps as SQLAlchemy writes them on SQLite, booleans as 0/1), so either
path can read what the other wrote; `tests/store/test_sqlite_catalog.py` holds them to that.
Only plain `sqlite:///path` URLs come here; anything else goes through SQLAlchemy.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Callable
from urllib.parse import quote

from typing import TYPE_CHECKING

from nbflow.store.catalog import CatalogWrites, ListedDag, StoredFile
from nbflow.store.revision import newest_revision

if TYPE_CHECKING:
    from nbflow.store.rows import SerializedDagRow

BUSY_TIMEOUT_S = 30.0  # as the engine's (nbflow.store.engine.SQLITE_BUSY_TIMEOUT_MS)
_UTC = dt.timezone.utc
_PREFIX = "sqlite:///"


def database_file(url: str) -> str | None:
    """The file of a plain `sqlite:///path` URL (relative or absolute), else None (SQLAlchemy's business)."""
    if not url.startswith(_PREFIX):
        return None
    path = url[len(_PREFIX):]
    # Query options, percent-escapes, in-memory and URI databases, `~`: SQLAlchemy reads them, not us.
    if not path or any(mark in path for mark in "?%#") or path.startswith(("~", ":memory:", "file:")):
        return None
    return path


def _stamp(value: dt.datetime) -> str:
    """A timestamp as SQLAlchemy's SQLite DATETIME stores a `UtcDateTime`: naive UTC, microseconds always."""
    value = value.astimezone(_UTC) if value.tzinfo is not None else value
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=_UTC)


def open_catalog(path: str) -> "SqliteCatalog | None":
    """The catalog in database file `path`, or None when the file is missing or not at the newest
    migration (the same test as `revision.at_newest_revision`; the caller then parses without storing)."""
    if not os.path.exists(path):
        return None
    try:
        # mode=rw: never create the file (a missing database means "before db init", not "empty").
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    catalog = SqliteCatalog(conn)
    if not catalog.at_newest_revision():
        conn.close()
        return None
    return catalog


class SqliteCatalog:
    """One sqlite3 connection to the metadata database, for the DAG processor's tables only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("PRAGMA synchronous=NORMAL")  # the engine's settings (journal_mode=WAL is in the file)
        conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "SqliteCatalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def at_newest_revision(self) -> bool:
        """Whether the database records the newest migration; never raises."""
        try:
            found = [row[0] for row in self.conn.execute("SELECT version_num FROM alembic_version")]
        except sqlite3.Error:
            return False
        return found == [newest_revision()]

    # -- reads ------------------------------------------------------------------------------------

    def dag_files(self) -> dict[str, StoredFile]:
        """Every file the DAG processor recorded, by path."""
        rows = self.conn.execute("SELECT path, mtime, size, hash, parsed_at, import_error FROM dag_file")
        return {path: StoredFile(path, mtime, size, digest, _when(parsed_at), error)
                for path, mtime, size, digest, parsed_at, error in rows}

    def owners(self) -> dict[str, str]:
        """Which file each stored DAG came from, by dag_id."""
        return dict(self.conn.execute("SELECT dag_id, fileloc FROM serialized_dag"))

    def listed_dags(self) -> list[ListedDag]:
        """What a listing shows of every stored DAG, by dag_id, extracted in SQL (no DAG is decoded here)."""
        # One json_extract with several paths parses each document once and answers a JSON array.
        rows = self.conn.execute(
            "SELECT dag_id, json_extract(data, '$.fileloc', '$.timetable.summary', '$.tags', "
            "'$.is_paused_upon_creation') FROM serialized_dag ORDER BY dag_id")
        listed = []
        for dag_id, fields in rows:
            fileloc, schedule, tags, paused = json.loads(fields)
            listed.append(ListedDag(dag_id, fileloc, schedule, tuple(tags), None if paused is None else bool(paused)))
        return listed

    def serialized_dags(self) -> list[SerializedDagRow]:
        """Every stored DAG, by dag_id, with its JSON form decoded."""
        from nbflow.store.rows import SerializedDagRow  # not at the top: a listing never needs it
        rows = self.conn.execute(
            "SELECT dag_id, fileloc, source_hash, data, updated_at FROM serialized_dag ORDER BY dag_id")
        return [SerializedDagRow(dag_id, fileloc, digest, json.loads(data), _when(updated))
                for dag_id, fileloc, digest, data, updated in rows]

    def import_errors(self) -> dict[str, str]:
        """The import error of every recorded file that has one, by path."""
        return dict(self.conn.execute(
            "SELECT path, import_error FROM dag_file WHERE import_error IS NOT NULL ORDER BY path"))

    def paused_flags(self) -> dict[str, bool]:
        """The pause flag of every `dag` row (active or not), by dag_id."""
        return {dag_id: bool(paused) for dag_id, paused in self.conn.execute("SELECT dag_id, is_paused FROM dag")}

    # -- writes -----------------------------------------------------------------------------------

    def update(self, decide: Callable[[dict[str, str]], CatalogWrites]) -> None:
        """One write transaction (BEGIN IMMEDIATE, as every nbflow writer on SQLite): read the owners,
        let `decide` say what to write, write it all with executemany."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            writes = decide(self.owners())
            if writes:
                _apply(conn, writes)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _apply(conn: sqlite3.Connection, writes: CatalogWrites) -> None:
    """`serialized_dags.apply_catalog_writes` in SQL, one statement per step (see `CatalogWrites`)."""
    at = _stamp(writes.at)
    if writes.touched:
        conn.executemany("UPDATE dag_file SET mtime = ?, size = ? WHERE path = ?",
                         [(mtime, size, path) for path, mtime, size in writes.touched])
    if writes.removed:
        gone = json.dumps(list(writes.removed))
        conn.execute("DELETE FROM dag_file WHERE path IN (SELECT value FROM json_each(?))", (gone,))
        conn.execute("DELETE FROM serialized_dag WHERE fileloc IN (SELECT value FROM json_each(?))", (gone,))
        conn.execute("UPDATE dag SET is_active = 0 WHERE is_active IS 1 "
                     "AND fileloc IN (SELECT value FROM json_each(?))", (gone,))
    if writes.replaced:
        conn.executemany(
            "INSERT INTO serialized_dag (dag_id, fileloc, source_hash, data, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (dag_id) DO UPDATE SET fileloc = excluded.fileloc, source_hash = excluded.source_hash, "
            "data = excluded.data, updated_at = excluded.updated_at",
            [(dag_id, file.path, file.source_hash, text, at)
             for file in writes.replaced for dag_id, text in zip(file.dag_ids, file.texts)])
        kept = [(file.path, json.dumps(list(file.dag_ids))) for file in writes.replaced]
        conn.executemany("DELETE FROM serialized_dag WHERE fileloc = ? "
                         "AND dag_id NOT IN (SELECT value FROM json_each(?))", kept)
    if writes.records:
        conn.executemany(
            "INSERT INTO dag_file (path, mtime, size, hash, parsed_at, import_error) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET mtime = excluded.mtime, size = excluded.size, hash = excluded.hash, "
            "import_error = excluded.import_error, parsed_at = excluded.parsed_at",
            [(r.path, r.mtime, r.size, r.hash, at, r.import_error) for r in writes.records])
    if writes.replaced:
        conn.executemany("UPDATE dag SET is_active = 0 WHERE is_active IS 1 AND fileloc = ? "
                         "AND dag_id NOT IN (SELECT value FROM json_each(?))", kept)


__all__ = ["SqliteCatalog", "database_file", "open_catalog"]
