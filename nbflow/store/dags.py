"""DAG rows and import errors: what the DagBag found, and the scheduler's next-run bookkeeping.

Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from nbflow.store._sql import interval_bounds, rowcount, upsert
from nbflow.store.models import DagORM, ImportErrorORM, table_of
from nbflow.store.rows import DagRow, ImportErrorRow
from nbflow.utils.masking import masker
from nbflow.utils.timezone import utcnow

DAG = table_of(DagORM)
IMPORT_ERROR = table_of(ImportErrorORM)

# Columns a re-parse refreshes; is_paused and the next-run fields belong to users and the scheduler.
_PARSED_COLUMNS = ("fileloc", "schedule", "tags", "description", "owners", "max_active_runs",
                   "max_active_tasks", "last_parsed_time", "is_active", "has_import_errors")


def upsert_dag(session: Session, *, dag_id: str, fileloc: str | None, schedule: str | None = None,
               tags: Iterable[str] = (), description: str | None = None, owners: str | None = None,
               max_active_runs: int | None = None, max_active_tasks: int | None = None,
               is_paused_at_creation: bool = True, last_parsed_time: dt.datetime | None = None) -> DagRow:
    """Record a DAG the DagBag parsed: insert it (paused if `is_paused_at_creation`) or refresh it.

    A refresh marks the DAG active and free of import errors and leaves `is_paused` as the user set it.
    """
    values: dict[str, Any] = {
        "dag_id": dag_id, "fileloc": fileloc, "schedule": schedule, "tags": sorted(set(tags)),
        "description": description, "owners": owners, "max_active_runs": max_active_runs,
        "max_active_tasks": max_active_tasks, "last_parsed_time": last_parsed_time or utcnow(),
        "is_active": True, "has_import_errors": False, "is_paused": is_paused_at_creation,
    }
    upsert(session, DAG, values, conflict=["dag_id"], update=_PARSED_COLUMNS)
    return DagRow.from_mapping(session.execute(select(DAG).where(DAG.c.dag_id == dag_id)).mappings().one())


def get_dag_row(session: Session, dag_id: str) -> DagRow | None:
    """The DAG's row, or None if the DagBag never recorded it."""
    found = session.execute(select(DAG).where(DAG.c.dag_id == dag_id)).mappings().first()
    return DagRow.from_mapping(found) if found else None


def list_dags(session: Session, *, include_inactive: bool = False, paused: bool | None = None,
              dag_ids: Collection[str] | None = None) -> list[DagRow]:
    """DAG rows ordered by dag_id; by default only DAGs whose file still defines them."""
    stmt = select(DAG).order_by(DAG.c.dag_id)
    if not include_inactive:
        stmt = stmt.where(DAG.c.is_active.is_(True))
    if paused is not None:
        stmt = stmt.where(DAG.c.is_paused.is_(paused))
    if dag_ids is not None:
        stmt = stmt.where(DAG.c.dag_id.in_(list(dag_ids)))
    return [DagRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def set_paused(session: Session, dag_id: str, paused: bool) -> bool:
    """Pause or unpause a DAG; False when no such DAG is recorded."""
    result = session.execute(update(DAG).where(DAG.c.dag_id == dag_id).values(is_paused=paused))
    return rowcount(result) == 1


def set_next_dagrun(session: Session, dag_id: str, *, next_dagrun: dt.datetime | None,
                    data_interval: tuple[dt.datetime, dt.datetime] | None,
                    create_after: dt.datetime | None) -> bool:
    """Record when the DAG's next scheduled run is due (all None: no further run)."""
    start, end = interval_bounds(data_interval)
    result = session.execute(update(DAG).where(DAG.c.dag_id == dag_id).values(
        next_dagrun=next_dagrun, next_dagrun_data_interval_start=start,
        next_dagrun_data_interval_end=end, next_dagrun_create_after=create_after))
    return rowcount(result) == 1


def dags_due(session: Session, *, now: dt.datetime, limit: int = 100) -> list[DagRow]:
    """Active, unpaused DAGs whose next scheduled run may be created by `now`, most overdue first."""
    stmt = (select(DAG).where(DAG.c.is_active.is_(True), DAG.c.is_paused.is_(False),
                              DAG.c.next_dagrun_create_after.is_not(None),
                              DAG.c.next_dagrun_create_after <= now)
            .order_by(DAG.c.next_dagrun_create_after, DAG.c.dag_id).limit(limit))
    return [DagRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def deactivate_missing_dags(session: Session, *, seen_dag_ids: Collection[str],
                            filelocs: Collection[str] | None = None) -> list[str]:
    """Mark DAGs not seen in the last parse inactive (limited to `filelocs` when given); their ids."""
    stmt = select(DAG.c.dag_id).where(DAG.c.is_active.is_(True), DAG.c.dag_id.not_in(list(seen_dag_ids)))
    if filelocs is not None:
        stmt = stmt.where(DAG.c.fileloc.in_(list(filelocs)))
    gone = list(session.scalars(stmt))
    if gone:
        session.execute(update(DAG).where(DAG.c.dag_id.in_(gone)).values(is_active=False))
    return gone


def record_import_errors(session: Session, errors: Mapping[str, str], *,
                         filenames: Collection[str] | None = None, at: dt.datetime | None = None) -> None:
    """Replace the recorded import errors with `errors` ({filename: stacktrace}).

    With `filenames`, only errors of those files are replaced (the files just parsed); otherwise
    the whole previous set is. DAGs defined in a failing file get `has_import_errors`. A traceback is
    stored masked: a DAG file's exception may quote a secret it read, and the table is shown in the CLI.
    """
    clear = delete(IMPORT_ERROR)
    if filenames is not None:
        clear = clear.where(IMPORT_ERROR.c.filename.in_(list({*filenames, *errors})))
    session.execute(clear)
    stamp = at or utcnow()
    if errors:
        session.execute(insert(IMPORT_ERROR), [
            {"filename": name, "dag_id": None, "stacktrace": masker.redact(trace), "timestamp": stamp}
            for name, trace in sorted(errors.items())])
        session.execute(update(DAG).where(DAG.c.fileloc.in_(list(errors))).values(has_import_errors=True))


def list_import_errors(session: Session) -> list[ImportErrorRow]:
    """Recorded import errors ordered by file name."""
    stmt = select(IMPORT_ERROR).order_by(IMPORT_ERROR.c.filename, IMPORT_ERROR.c.id)
    return [ImportErrorRow.from_mapping(m) for m in session.execute(stmt).mappings()]

