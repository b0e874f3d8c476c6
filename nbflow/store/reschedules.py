"""Sensor reschedules (task_reschedule): record each one, read when the current try's first poke began.

A sensor in mode="reschedule" ends each poke as up_for_reschedule and gives its try back (the
try number does not grow), so the rows of its current try number say when its timeout started.
Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from nbflow.store.keys import TIKey
from nbflow.store.models import TaskInstanceORM, TaskRescheduleORM, table_of
from nbflow.store.rows import TaskRescheduleRow
from nbflow.store.types import UtcDateTime
from nbflow.utils.state import TaskInstanceState

RESCHEDULE = table_of(TaskRescheduleORM)
TI = table_of(TaskInstanceORM)


def _of(key: TIKey) -> list:
    return [RESCHEDULE.c.dag_id == key.dag_id, RESCHEDULE.c.task_id == key.task_id,
            RESCHEDULE.c.run_id == key.run_id, RESCHEDULE.c.map_index == key.map_index]


def add_reschedule(session: Session, key: TIKey, *, try_number: int, reschedule_date: dt.datetime,
                   start_date: dt.datetime | None = None, end_date: dt.datetime | None = None) -> None:
    """Record that attempt `try_number` of the instance poked, and pokes again at reschedule_date.

    The poke's start and end are the instance's own start_date and end_date unless given (its row
    has just been set up_for_reschedule, which stamped its end).
    """
    if start_date is not None and end_date is not None:
        session.execute(insert(RESCHEDULE).values(dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
                                                  map_index=key.map_index, try_number=try_number,
                                                  start_date=start_date, end_date=end_date,
                                                  reschedule_date=reschedule_date))
        return
    row = select(TI.c.dag_id, TI.c.task_id, TI.c.run_id, TI.c.map_index, literal(try_number),
                 func.coalesce(TI.c.start_date, TI.c.end_date), TI.c.end_date,
                 literal(reschedule_date, UtcDateTime())).where(
        TI.c.dag_id == key.dag_id, TI.c.task_id == key.task_id, TI.c.run_id == key.run_id,
        TI.c.map_index == key.map_index, TI.c.end_date.is_not(None))
    session.execute(insert(RESCHEDULE).from_select(
        ["dag_id", "task_id", "run_id", "map_index", "try_number", "start_date", "end_date", "reschedule_date"], row))


def give_back_try(session: Session, key: TIKey, try_number: int) -> None:
    """The rescheduled instance's next poke reuses try `try_number` (Airflow: a reschedule is not a try)."""
    session.execute(update(TI).where(
        TI.c.dag_id == key.dag_id, TI.c.task_id == key.task_id, TI.c.run_id == key.run_id,
        TI.c.map_index == key.map_index, TI.c.state == TaskInstanceState.UP_FOR_RESCHEDULE,
        TI.c.try_number == try_number).values(try_number=try_number - 1))


def first_poke_at(session: Session, key: TIKey, try_number: int) -> dt.datetime | None:
    """When the first poke of try `try_number` started (None: this is its first poke)."""
    return session.scalar(select(func.min(RESCHEDULE.c.start_date)).where(
        *_of(key), RESCHEDULE.c.try_number == try_number))


def count_reschedules(session: Session, key: TIKey, try_number: int) -> int:
    """How many times try `try_number` was rescheduled (the exponential backoff's exponent)."""
    return int(session.scalar(select(func.count()).select_from(RESCHEDULE).where(
        *_of(key), RESCHEDULE.c.try_number == try_number)) or 0)


def get_reschedules(session: Session, key: TIKey) -> list[TaskRescheduleRow]:
    """The instance's reschedules, oldest first."""
    stmt = select(RESCHEDULE).where(*_of(key)).order_by(RESCHEDULE.c.id)
    return [TaskRescheduleRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def delete_reschedules(session: Session, dag_id: str, run_id: str, task_ids: list[str] | None = None) -> None:
    """Forget the reschedules of cleared instances: their sensors' timeouts start again."""
    where = [RESCHEDULE.c.dag_id == dag_id, RESCHEDULE.c.run_id == run_id]
    if task_ids is not None:
        where.append(RESCHEDULE.c.task_id.in_(task_ids))
    session.execute(delete(RESCHEDULE).where(*where))
