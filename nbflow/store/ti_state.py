"""Task instance state changes: guarded compare-and-set updates, heartbeats, attempt history.

Two schedulers (or a scheduler and a worker) may act on the same task instance at once. Every
change here is one `UPDATE ... WHERE <key> AND state = <expected>`; the database applies the two
updates one after the other, so the second finds the state changed, matches no row, and its
caller learns (False) that it lost. On Postgres the second UPDATE waits for the first
transaction's row lock and re-checks the WHERE; on SQLite BEGIN IMMEDIATE serialises writers.
Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, extract, func, insert, literal, select, update
from sqlalchemy.orm import Session

from nbflow.exceptions import InvalidStateError
from nbflow.store._sql import ANY_STATE, check_states, rowcount, state_filter, ti_key_filter, ti_keys_filter
from nbflow.store.keys import TIKey
from nbflow.store.models import TaskInstanceHistoryORM, TaskInstanceORM, table_of
from nbflow.store.rows import TaskInstanceHistoryRow
from nbflow.store.states import ATTEMPT_END_STATES, HEARTBEAT_STATES, TI_STATES
from nbflow.store.types import UtcDateTime
from nbflow.utils.timezone import utcnow

TI = table_of(TaskInstanceORM)
HISTORY = table_of(TaskInstanceHistoryORM)

_KEY_COLUMNS = frozenset({"dag_id", "task_id", "run_id", "map_index"})
_SETTABLE = frozenset(c.name for c in TI.c) - _KEY_COLUMNS - {"state"}
_ENDED = ATTEMPT_END_STATES | {"upstream_failed", "removed"}
_HISTORY_COLUMNS = [c.name for c in HISTORY.c if c.name != "id"]


def set_task_state(session: Session, key: TIKey, state: str | None, *, expected_state: Any = ANY_STATE,
                   increment_try_number: bool = False, at: dt.datetime | None = None, **fields: Any) -> bool:
    """Set one task instance's state (and other columns) if it is in `expected_state`; whether it changed.

    `expected_state` is a state, None (no status yet), or a collection of them; left out, the
    update is unguarded. `fields` are other task_instance columns, e.g. `hostname=`, `pid=`,
    `next_retry_at=`, `queued_by_job_id=`. Unless given in `fields`, dates follow the state:
    queued sets queued_dttm; running sets start_date and last_heartbeat_at and clears
    end_date/duration; success, failed, skipped, upstream_failed, up_for_retry,
    up_for_reschedule and removed set end_date and duration (from start_date).
    `increment_try_number` adds one to try_number in the same statement (use it when an attempt starts).

    Reaching an attempt-ending state (success, failed, skipped, up_for_retry, up_for_reschedule)
    copies the attempt into task_instance_history when it had started.
    """
    changed = _guarded_update(session, ti_key_filter(TI, key), state, expected_state, increment_try_number,
                              at, fields, returning=False)
    return bool(changed)


def set_task_states(session: Session, keys: Collection[TIKey], state: str | None, *,
                    expected_state: Any = ANY_STATE, increment_try_number: bool = False,
                    at: dt.datetime | None = None, **fields: Any) -> list[TIKey]:
    """`set_task_state` for many instances in one statement; the keys that changed, sorted.

    For the scheduler's batches (scheduled → queued, None → upstream_failed): one round trip, and
    the returned keys are exactly the instances this caller won.
    """
    if not keys:
        return []
    return _guarded_update(session, ti_keys_filter(TI, keys), state, expected_state, increment_try_number,
                           at, fields, returning=True)


def heartbeat_task(session: Session, key: TIKey, *, at: dt.datetime | None = None) -> bool:
    """Record that the instance's process is alive; False when it is no longer running.

    False means the instance was cleared, marked failed by orphan detection, or finished
    elsewhere: the process should stop its work and not report a result.
    """
    stmt = (update(TI).where(ti_key_filter(TI, key), TI.c.state.in_(sorted(HEARTBEAT_STATES)))
            .values(last_heartbeat_at=at or utcnow()))
    return rowcount(session.execute(stmt)) == 1


def get_task_history(session: Session, key: TIKey) -> list[TaskInstanceHistoryRow]:
    """The instance's ended attempts, oldest first."""
    stmt = (select(HISTORY).where(HISTORY.c.dag_id == key.dag_id, HISTORY.c.task_id == key.task_id,
                                  HISTORY.c.run_id == key.run_id, HISTORY.c.map_index == key.map_index)
            .order_by(HISTORY.c.try_number, HISTORY.c.id))
    return [TaskInstanceHistoryRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def _guarded_update(session: Session, where: ColumnElement[bool], state: str | None, expected_state: Any,
                    increment_try_number: bool, at: dt.datetime | None, fields: dict[str, Any],
                    *, returning: bool) -> Any:
    check_states([state], TI_STATES)
    unknown = sorted(set(fields) - _SETTABLE)
    if unknown:
        raise InvalidStateError(f"task_instance has no settable column {', '.join(unknown)}; "
                                f"settable: {', '.join(sorted(_SETTABLE))}")
    now = at or utcnow()
    values = {**_implied_fields(session, state, now, fields), **fields, "state": state}
    values.setdefault("updated_at", now)
    if increment_try_number:
        values["try_number"] = TI.c.try_number + 1
    stmt = update(TI).where(where).values(**values)
    if expected_state is not ANY_STATE:
        stmt = stmt.where(state_filter(TI.c.state, expected_state, allowed=TI_STATES))
    if returning:
        stmt = stmt.returning(TI.c.dag_id, TI.c.task_id, TI.c.run_id, TI.c.map_index)
        changed = sorted(TIKey(*row) for row in session.execute(stmt))
        if changed and state in ATTEMPT_END_STATES:
            _record_attempts(session, ti_keys_filter(TI, changed))
        return changed
    count = rowcount(session.execute(stmt))
    if count and state in ATTEMPT_END_STATES:
        _record_attempts(session, where)
    return count


def _implied_fields(session: Session, state: str | None, now: dt.datetime, given: dict[str, Any]) -> dict[str, Any]:
    """Date columns implied by the new state (given fields win)."""
    if state == "queued":
        return {"queued_dttm": now}
    if state == "running":
        start = given.get("start_date", now)
        return {"start_date": start, "last_heartbeat_at": start, "end_date": None, "duration": None}
    if state in _ENDED:
        end = given.get("end_date", now)
        return {"end_date": end, "duration": _seconds_since_start(session, end)}
    return {}


def _seconds_since_start(session: Session, end: dt.datetime) -> ColumnElement[float]:
    """SQL for (end - start_date) in seconds, evaluated against the row's current start_date."""
    end_value = literal(end, UtcDateTime())
    if session.get_bind().dialect.name == "postgresql":
        return cast(extract("epoch", end_value - TI.c.start_date), Float)
    # SQLite: julianday resolves to ~50 µs at today's dates, finer than any duration we show.
    return cast((func.julianday(end_value) - func.julianday(TI.c.start_date)) * 86400.0, Float)


def _record_attempts(session: Session, where: ColumnElement[bool]) -> None:
    source = select(*(TI.c[name] for name in _HISTORY_COLUMNS)).where(where, TI.c.start_date.is_not(None))
    session.execute(insert(HISTORY).from_select(_HISTORY_COLUMNS, source))
