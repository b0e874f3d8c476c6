"""DAG run rows: create, read, and move a run between states.

Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from nbflow.exceptions import DagRunAlreadyExists
from nbflow.store._prepared import prepared
from nbflow.store._sql import ANY_STATE, check_states, insert_for, interval_bounds, rowcount, state_filter
from nbflow.store.models import DagRunORM, table_of
from nbflow.store.rows import DagRunRow
from nbflow.utils.state import RUN_ACTIVE_STATES, RUN_FINISHED_STATES, RUN_STATES, RUN_TYPES, DagRunState, DagRunType
from nbflow.utils.timezone import utcnow

DAG_RUN = table_of(DagRunORM)


def create_dag_run(session: Session, *, dag_id: str, run_id: str, run_type: str, logical_date: dt.datetime | None,
                   data_interval: Any = None, conf: Mapping[str, Any] | None = None, state: str = DagRunState.QUEUED,
                   triggered_by: str | None = None, external_trigger: bool | None = None,
                   at: dt.datetime | None = None) -> DagRunRow:
    """Insert a DAG run; raises DagRunAlreadyExists if the DAG has a run with this run_id.

    `data_interval` is None, a (start, end) pair or an object with `.start`/`.end`.
    `external_trigger` defaults to True for every run type but "scheduled". The insert uses
    ON CONFLICT DO NOTHING rather than catching an IntegrityError, because on Postgres a failed
    statement would abort the caller's whole transaction.
    """
    check_states([run_type], RUN_TYPES, "run_type")
    check_states([state], RUN_STATES, "DAG run state")
    now = at or utcnow()
    start, end = interval_bounds(data_interval)
    values = {
        "dag_id": dag_id, "run_id": run_id, "run_type": run_type, "logical_date": logical_date,
        "data_interval_start": start, "data_interval_end": end, "state": state, "conf": dict(conf or {}),
        "queued_at": now, "start_date": now if state == DagRunState.RUNNING else None,
        "end_date": now if state in RUN_FINISHED_STATES else None, "triggered_by": triggered_by,
        "external_trigger": run_type != DagRunType.SCHEDULED if external_trigger is None else external_trigger,
        "updated_at": now,
    }
    stmt = (insert_for(session, DAG_RUN).values(**values)
            .on_conflict_do_nothing(index_elements=["dag_id", "run_id"]).returning(*DAG_RUN.c))
    created = session.execute(stmt).mappings().first()
    if created is None:
        raise DagRunAlreadyExists(dag_id, run_id)
    return DagRunRow.from_mapping(created)


def get_dag_run(session: Session, dag_id: str, run_id: str) -> DagRunRow | None:
    """The run, or None."""
    stmt = prepared("run_get", lambda: select(DAG_RUN).where(DAG_RUN.c.dag_id == bindparam("k_dag_id"),
                                                             DAG_RUN.c.run_id == bindparam("k_run_id")))
    found = session.execute(stmt, {"k_dag_id": dag_id, "k_run_id": run_id}).mappings().first()
    return DagRunRow.from_mapping(found) if found else None


def list_dag_runs(session: Session, dag_id: str | None = None, state: str | Collection[str] | None = None,
                  limit: int | None = 100, *, run_type: str | None = None,
                  newest_first: bool = True) -> list[DagRunRow]:
    """Runs of one DAG (or all DAGs when `dag_id` is None), by logical date then creation order."""
    states = None if state is None else tuple(sorted([state] if isinstance(state, str) else state))
    shape = (dag_id is not None, states, run_type is not None, newest_first, limit is not None)
    stmt = prepared(("run_list", shape), lambda: _build_list(*shape))
    params = {"k_dag_id": dag_id, "k_run_type": run_type, "k_limit": limit}
    return [DagRunRow.from_mapping(m) for m in session.execute(stmt, params).mappings().all()]


def _build_list(by_dag: bool, states: tuple[str, ...] | None, by_type: bool, newest_first: bool,
                limited: bool) -> Any:
    stmt = select(DAG_RUN)
    if by_dag:
        stmt = stmt.where(DAG_RUN.c.dag_id == bindparam("k_dag_id"))
    if states is not None:
        stmt = stmt.where(state_filter(DAG_RUN.c.state, states, allowed=RUN_STATES))
    if by_type:
        stmt = stmt.where(DAG_RUN.c.run_type == bindparam("k_run_type"))
    if newest_first:
        stmt = stmt.order_by(DAG_RUN.c.logical_date.desc().nulls_last(), DAG_RUN.c.id.desc())
    else:
        stmt = stmt.order_by(DAG_RUN.c.logical_date.asc().nulls_last(), DAG_RUN.c.id.asc())
    if limited:
        stmt = stmt.limit(bindparam("k_limit"))
    return stmt


def set_dag_run_state(session: Session, dag_id: str, run_id: str, state: str, *, expected_state: Any = ANY_STATE,
                      failed_task: str | None = None, at: dt.datetime | None = None) -> bool:
    """Move a run to `state`; with `expected_state`, only if it is in that state now (compare-and-set).

    Dates follow the state: running sets start_date (if unset); success/failed set end_date;
    queued clears start, end and the last scheduling decision (a cleared run starts afresh).
    Returns whether the run changed.
    """
    check_states([state], RUN_STATES, "DAG run state")
    now = at or utcnow()
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state == DagRunState.RUNNING:
        values.update(start_date=func.coalesce(DAG_RUN.c.start_date, now), end_date=None, failed_task=None)
    elif state == DagRunState.QUEUED:
        values.update(queued_at=now, start_date=None, end_date=None, last_scheduling_decision=None,
                      failed_task=None)
    else:
        values.update(end_date=now, failed_task=failed_task)
    stmt = update(DAG_RUN).where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.run_id == run_id).values(**values)
    if expected_state is not ANY_STATE:
        stmt = stmt.where(state_filter(DAG_RUN.c.state, expected_state, allowed=RUN_STATES))
    return rowcount(session.execute(stmt)) == 1


def set_last_scheduling_decision(session: Session, dag_id: str, run_id: str, at: dt.datetime | None = None) -> None:
    """Record when the scheduler last examined this run (for fair ordering across runs)."""
    session.execute(update(DAG_RUN).where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.run_id == run_id)
                    .values(last_scheduling_decision=at or utcnow()))


def count_active_runs(session: Session, dag_id: str, *, only_running: bool = False) -> int:
    """How many runs of the DAG are queued or running (only running with `only_running`)."""
    states = [DagRunState.RUNNING] if only_running else sorted(RUN_ACTIVE_STATES)
    stmt = select(func.count()).select_from(DAG_RUN).where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.state.in_(states))
    return int(session.scalar(stmt) or 0)


def delete_dag_run(session: Session, dag_id: str, run_id: str) -> bool:
    """Delete a run with its task instances, attempt history and XComs (foreign keys cascade)."""
    result = session.execute(delete(DAG_RUN).where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.run_id == run_id))
    return rowcount(result) == 1
