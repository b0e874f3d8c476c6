"""Serialized DAGs and the DAG processor's file table (`serialized_dag`, `dag_file`).

The DAG processor writes here after parsing files in child processes; the scheduler and the read-only
commands read. Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from nbflow.store._sql import upsert_many
from nbflow.store.catalog import CatalogWrites, StoredFile
from nbflow.store.models import DagFileORM, SerializedDagORM, table_of
from nbflow.store.rows import DagFileRow, SerializedDagRow

SERIALIZED_DAG = table_of(SerializedDagORM)
DAG_FILE = table_of(DagFileORM)


def dag_files(session: Session) -> dict[str, DagFileRow]:
    """Every file the DAG processor recorded, by path."""
    return {m["path"]: DagFileRow.from_mapping(m) for m in session.execute(select(DAG_FILE)).mappings()}




def forget_dag_files(session: Session, paths: Collection[str]) -> None:
    """Drop files that are gone, and the DAGs they defined."""
    if not paths:
        return
    session.execute(delete(DAG_FILE).where(DAG_FILE.c.path.in_(list(paths))))
    session.execute(delete(SERIALIZED_DAG).where(SERIALIZED_DAG.c.fileloc.in_(list(paths))))



def owners(session: Session) -> dict[str, str]:
    """Which file each stored DAG came from, by dag_id."""
    return {dag_id: path for dag_id, path in session.execute(select(SERIALIZED_DAG.c.dag_id, SERIALIZED_DAG.c.fileloc)).all()}


def list_serialized_dags(session: Session, dag_ids: Collection[str] | None = None) -> list[SerializedDagRow]:
    """Stored DAGs ordered by dag_id (all, or those in `dag_ids`)."""
    stmt = select(SERIALIZED_DAG).order_by(SERIALIZED_DAG.c.dag_id)
    if dag_ids is not None:
        stmt = stmt.where(SERIALIZED_DAG.c.dag_id.in_(list(dag_ids)))
    return [SerializedDagRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def get_serialized_dag(session: Session, dag_id: str) -> SerializedDagRow | None:
    """The stored DAG `dag_id`, or None."""
    found = session.execute(select(SERIALIZED_DAG).where(SERIALIZED_DAG.c.dag_id == dag_id)).mappings().first()
    return SerializedDagRow.from_mapping(found) if found else None


def import_errors(session: Session) -> dict[str, str]:
    """The import error of every recorded file that has one, by path."""
    stmt = select(DAG_FILE.c.path, DAG_FILE.c.import_error).where(DAG_FILE.c.import_error.is_not(None))
    return {path: error for path, error in session.execute(stmt.order_by(DAG_FILE.c.path)).all()}


def import_error_of(session: Session, path: str) -> str | None:
    """The import error recorded for the file at `path`, or None (it imports cleanly, or was never parsed)."""
    return session.execute(select(DAG_FILE.c.import_error).where(DAG_FILE.c.path == path)).scalar()


def apply_catalog_writes(session: Session, writes: CatalogWrites) -> None:
    """Apply one refresh's writes (in `CatalogWrites`' order), a statement per step rather than per file;
    `sqlite_catalog` does the same with sqlite3."""
    from nbflow.store.dags import DAG
    at = writes.at
    if writes.touched:
        stmt = DAG_FILE.update().where(DAG_FILE.c.path == bindparam("b_path")).values(
            mtime=bindparam("b_mtime"), size=bindparam("b_size"))
        session.execute(stmt, [{"b_path": path, "b_mtime": mtime, "b_size": size}
                               for path, mtime, size in writes.touched])
    if writes.removed:
        forget_dag_files(session, writes.removed)
        for chunk in _chunks(writes.removed):
            session.execute(update(DAG).where(DAG.c.is_active.is_(True), DAG.c.fileloc.in_(chunk))
                            .values(is_active=False))
    if writes.replaced:
        rows = [{"dag_id": dag_id, "fileloc": file.path, "source_hash": file.source_hash, "data": data,
                 "updated_at": at} for file in writes.replaced for dag_id, data in zip(file.dag_ids, file.dags)]
        if rows:
            upsert_many(session, SERIALIZED_DAG, rows, conflict=["dag_id"],
                        update=("fileloc", "source_hash", "data", "updated_at"))
        kept = {file.path: set(file.dag_ids) for file in writes.replaced}
        _delete_not_kept(session, SERIALIZED_DAG, kept, delete(SERIALIZED_DAG), active_only=False)
    if writes.records:
        upsert_many(session, DAG_FILE, [{"path": r.path, "mtime": r.mtime, "size": r.size, "hash": r.hash,
                                         "import_error": r.import_error, "parsed_at": at} for r in writes.records],
                    conflict=["path"], update=("mtime", "size", "hash", "import_error", "parsed_at"))
    if writes.replaced:
        _delete_not_kept(session, DAG, {file.path: set(file.dag_ids) for file in writes.replaced},
                         update(DAG).values(is_active=False), active_only=True)


def _chunks(items: Collection[str], size: int = 500) -> Iterable[list[str]]:
    """`items` in lists of at most `size` (SQLite caps the parameters of one statement)."""
    listed = list(items)
    for start in range(0, len(listed), size):
        yield listed[start:start + size]


def _delete_not_kept(session: Session, table: Any, kept: dict[str, set[str]], action: Any, *,
                     active_only: bool) -> None:
    """Run `action` (a DELETE or an UPDATE of `table`) on the rows of each file in `kept` whose dag_id that
    file no longer defines: the rows are found first, then hit by dag_id in one statement per chunk."""
    stale: list[str] = []
    for chunk in _chunks(kept):
        stmt = select(table.c.dag_id, table.c.fileloc).where(table.c.fileloc.in_(chunk))
        if active_only:
            stmt = stmt.where(table.c.is_active.is_(True))
        stale.extend(dag_id for dag_id, fileloc in session.execute(stmt).all() if dag_id not in kept[fileloc])
    for chunk in _chunks(stale):
        session.execute(action.where(table.c.dag_id.in_(chunk)))


@dataclass(frozen=True, slots=True)
class SessionCatalog:
    """The DAG processor's tables through SQLAlchemy sessions (any database URL)."""

    sessions: Callable[[], Session]

    def dag_files(self) -> dict[str, StoredFile]:
        from nbflow.store.engine import session_scope
        with session_scope(self.sessions) as session:
            return {path: StoredFile(row.path, row.mtime, row.size, row.hash, row.parsed_at, row.import_error)
                    for path, row in dag_files(session).items()}

    def update(self, decide: Callable[[dict[str, str]], CatalogWrites]) -> None:
        from nbflow.store.engine import session_scope
        with session_scope(self.sessions) as session:
            writes = decide(owners(session))
            if writes:
                apply_catalog_writes(session, writes)
