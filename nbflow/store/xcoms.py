"""XCom rows: values tasks push, stored as JSON text the runtime's XCom backend wrote (encrypted when the
installed codec says so, see codec.py); every function here hands back the JSON text.

Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection

from typing import Any

from sqlalchemy import bindparam, delete, literal, select
from sqlalchemy.orm import Session

from nbflow.store._prepared import key_params, key_where, prepared
from nbflow.store._sql import insert_for, rowcount, ti_key_filter
from nbflow.store.codec import PREFIX, current_codec
from nbflow.store.keys import TIKey
from nbflow.store.models import DagRunORM, XComORM, table_of
from nbflow.store.rows import XComRow
from nbflow.store.types import UtcDateTime
from nbflow.utils.timezone import utcnow

XCOM = table_of(XComORM)
DAG_RUN = table_of(DagRunORM)

#: The key a task's return value is stored under (Airflow's XCOM_RETURN_KEY).
XCOM_RETURN_KEY = "return_value"


def set_xcom(session: Session, ti: TIKey, key: str, value_json: str, *, at: dt.datetime | None = None) -> None:
    """Store (or overwrite) the value `ti` pushed under `key`. The DAG run must exist."""
    dialect = session.get_bind().dialect.name
    stmt = prepared(("xcom_set", dialect), lambda: _build_set(session))
    session.execute(stmt, {**key_params(ti), "v_key": key, "v_value": current_codec().encode(value_json),
                           "v_timestamp": at or utcnow()})


def _build_set(session: Session) -> Any:
    run_pk = (select(DAG_RUN.c.id).where(DAG_RUN.c.dag_id == bindparam("k_dag_id"),
                                         DAG_RUN.c.run_id == bindparam("k_run_id")).scalar_subquery())
    stmt = insert_for(session, XCOM).values(
        dag_id=bindparam("k_dag_id"), task_id=bindparam("k_task_id"), run_id=bindparam("k_run_id"),
        map_index=bindparam("k_map_index"), key=bindparam("v_key"), value=bindparam("v_value"),
        timestamp=bindparam("v_timestamp", type_=UtcDateTime()), dag_run_id=run_pk)
    return stmt.on_conflict_do_update(index_elements=["dag_id", "task_id", "run_id", "map_index", "key"],
                                      set_={"value": stmt.excluded.value, "timestamp": stmt.excluded.timestamp})


def get_xcom(session: Session, ti: TIKey, key: str = XCOM_RETURN_KEY) -> XComRow | None:
    """The value `ti` pushed under `key` in its own run, or None."""
    stmt = prepared("xcom_get", lambda: select(XCOM).where(key_where(XCOM), XCOM.c.key == bindparam("v_key")))
    found = session.execute(stmt, {**key_params(ti), "v_key": key}).mappings().first()
    return _decoded(XComRow.from_mapping(found)) if found else None


def _decoded(row: XComRow) -> XComRow:
    if not row.value.startswith(PREFIX):
        return row
    ti = TIKey(row.dag_id, row.task_id, row.run_id, row.map_index)
    return dataclasses.replace(row, value=current_codec().decode(row.value, ti, row.key))


def get_values_of_tasks(session: Session, dag_id: str, run_id: str, task_ids: Collection[str],
                        key: str = XCOM_RETURN_KEY) -> dict[str, str]:
    """{task_id: value} of what these (unmapped) tasks of the run pushed under `key`; absent ones left out."""
    if not task_ids:
        return {}
    stmt = prepared("xcom_values_of_tasks", lambda: select(XCOM.c.task_id, XCOM.c.value).where(
        XCOM.c.dag_id == bindparam("k_dag_id"), XCOM.c.run_id == bindparam("k_run_id"), XCOM.c.map_index == -1,
        XCOM.c.key == bindparam("v_key"), XCOM.c.task_id.in_(bindparam("k_task_ids", expanding=True))))
    rows = session.execute(stmt, {"k_dag_id": dag_id, "k_run_id": run_id, "v_key": key,
                                  "k_task_ids": sorted(task_ids)}).all()
    codec = current_codec()
    return {task_id: codec.decode(value, TIKey(dag_id, task_id, run_id, -1), key) for task_id, value in rows}


def get_xcoms(session: Session, dag_id: str, run_id: str, task_ids: str | Collection[str] | None = None,
              key: str | None = XCOM_RETURN_KEY, map_indexes: int | Collection[int] | None = None,
              include_prior_dates: bool = False, logical_date: dt.datetime | None = None) -> list[XComRow]:
    """XComs matching the filters (None matches any task, key or map index).

    Without `include_prior_dates`: those of run `run_id`, ordered by task_id, map index, key.
    With it: those of every run of the DAG whose logical date is at or before `logical_date`
    (default: run `run_id`'s), newest run first and, within a run, latest pushed first — so
    the first row per task is what Airflow's `xcom_pull(include_prior_dates=True)` returns.
    """
    stmt = select(XCOM).where(XCOM.c.dag_id == dag_id)
    if task_ids is not None:
        stmt = stmt.where(XCOM.c.task_id.in_([task_ids] if isinstance(task_ids, str) else list(task_ids)))
    if key is not None:
        stmt = stmt.where(XCOM.c.key == key)
    if map_indexes is not None:
        stmt = stmt.where(XCOM.c.map_index.in_([map_indexes] if isinstance(map_indexes, int) else list(map_indexes)))
    if not include_prior_dates:
        stmt = stmt.where(XCOM.c.run_id == run_id).order_by(XCOM.c.task_id, XCOM.c.map_index, XCOM.c.key)
        return [_decoded(XComRow.from_mapping(m)) for m in session.execute(stmt).mappings()]
    if logical_date is None:
        logical_date = session.scalar(select(DAG_RUN.c.logical_date)
                                      .where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.run_id == run_id))
    run = DAG_RUN.alias("run")
    stmt = stmt.join(run, (run.c.dag_id == XCOM.c.dag_id) & (run.c.run_id == XCOM.c.run_id))
    if logical_date is None:  # a run without a logical date has no "prior" runs
        stmt = stmt.where(XCOM.c.run_id == run_id)
    else:
        stmt = stmt.where(run.c.logical_date <= literal(logical_date, UtcDateTime()))
    stmt = stmt.order_by(run.c.logical_date.desc(), XCOM.c.timestamp.desc(), XCOM.c.task_id, XCOM.c.map_index)
    return [_decoded(XComRow.from_mapping(m)) for m in session.execute(stmt).mappings()]


def delete_xcoms_for(session: Session, ti: TIKey) -> int:
    """Delete every XCom `ti` pushed (done when a new attempt starts); how many were deleted."""
    stmt = prepared("xcom_delete", lambda: delete(XCOM).where(key_where(XCOM)))
    return rowcount(session.execute(stmt, key_params(ti)))


def reencode_xcoms(session: Session, recode: "Callable[[XComRow], str | None]") -> int:
    """Rewrite each XCom's stored text as `recode(row)` returns it (None: leave it); how many changed.

    For key rotation: `recode` sees the row as stored (not decoded) and returns its new stored text."""
    changed = 0
    for found in session.execute(select(XCOM)).mappings().all():
        row = XComRow.from_mapping(found)
        new = recode(row)
        if new is not None and new != row.value:
            session.execute(XCOM.update().where(
                XCOM.c.dag_id == row.dag_id, XCOM.c.task_id == row.task_id, XCOM.c.run_id == row.run_id,
                XCOM.c.map_index == row.map_index, XCOM.c.key == row.key).values(value=new))
            changed += 1
    return changed
