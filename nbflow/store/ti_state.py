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

from sqlalchemy import ColumnElement, Float, bindparam, cast, extract, func, insert, literal, select, update
from sqlalchemy.orm import Session

from nbflow.exceptions import InvalidStateError
from nbflow.store._prepared import key_params, key_where, prepared, same_run, tasks_params, tasks_where
from nbflow.store._sql import ANY_STATE, check_states, rowcount, state_filter, ti_keys_filter
from nbflow.store.keys import TIKey
from nbflow.store.models import TaskInstanceHistoryORM, TaskInstanceORM, table_of
from nbflow.store.rows import TaskInstanceHistoryRow
from nbflow.utils.state import ATTEMPT_END_STATES, HEARTBEAT_STATES, TI_STATES, TaskInstanceState
from nbflow.store.types import UtcDateTime
from nbflow.utils.timezone import utcnow

TI = table_of(TaskInstanceORM)
HISTORY = table_of(TaskInstanceHistoryORM)

_KEY_COLUMNS = frozenset({"dag_id", "task_id", "run_id", "map_index"})
_SETTABLE = frozenset(c.name for c in TI.c) - _KEY_COLUMNS - {"state"}
_ENDED = ATTEMPT_END_STATES | {TaskInstanceState.UPSTREAM_FAILED, TaskInstanceState.REMOVED}
_HISTORY_COLUMNS = [c.name for c in HISTORY.c if c.name != "id"]


def set_task_state(session: Session, key: TIKey, state: str | None, *, expected_state: Any = ANY_STATE,
                   increment_try_number: bool = False, at: dt.datetime | None = None,
                   expected_try_number: int | None = None, **fields: Any) -> bool:
    """Set one task instance's state (and other columns) if it is in `expected_state`; whether it changed.

    `expected_state` is a state, None (no status yet), or a collection of them; left out, the
    update is unguarded. `fields` are other task_instance columns, e.g. `hostname=`, `pid=`,
    `next_retry_at=`, `queued_by_job_id=`. Unless given in `fields`, dates follow the state:
    queued sets queued_dttm; running sets start_date and last_heartbeat_at and clears
    end_date/duration; success, failed, skipped, upstream_failed, up_for_retry,
    up_for_reschedule and removed set end_date and duration (from start_date).
    `increment_try_number` adds one to try_number in the same statement (use it when an attempt starts).
    `expected_try_number` also requires that try number: an attempt's end then never lands on a
    later attempt of the same instance (one started after the instance was cleared).

    Reaching an attempt-ending state (success, failed, skipped, up_for_retry, up_for_reschedule)
    copies the attempt into task_instance_history when it had started.
    """
    changed = _guarded_update(session, key, state, expected_state, increment_try_number, at, fields,
                              returning=False, try_number=expected_try_number)
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
    return _guarded_update(session, keys, state, expected_state, increment_try_number, at, fields,
                           returning=True)


def claim_task_instance(session: Session, key: TIKey, *, hostname: str, pid: int,
                        at: dt.datetime | None = None) -> int | None:
    """queued → running for the attempt that starts now; its try number, or None when not queued."""
    claimed = claim_attempt(session, key, hostname=hostname, pid=pid, at=at)
    return None if claimed is None else claimed[0]


def claim_attempt(session: Session, key: TIKey, *, hostname: str, pid: int, supervisor_pid: int | None = None,
                  at: dt.datetime | None = None) -> tuple[int, int] | None:
    """queued → running for the attempt that starts now: (try number, max tries), or None when not queued.

    `set_task_state(..., "running", expected_state="queued", increment_try_number=True)` in one
    statement that also returns the new try number (an attempt starts with exactly this) and how
    many tries the instance has (a cleared task gets its retries back on top of its past tries).
    `supervisor_pid`, the process that records the attempt's result (the local worker), is kept in
    external_executor_id: an attempt is only known dead once both it and its supervisor are gone.
    """
    stmt = prepared("ti_claim", lambda: update(TI).where(
        key_where(TI), TI.c.state == TaskInstanceState.QUEUED).values(
        state=TaskInstanceState.RUNNING, try_number=TI.c.try_number + 1, hostname=bindparam("v_hostname"),
        pid=bindparam("v_pid"), start_date=bindparam("v_now", type_=UtcDateTime()),
        last_heartbeat_at=bindparam("v_now", type_=UtcDateTime()), end_date=None, duration=None,
        external_executor_id=bindparam("v_supervisor"),
        updated_at=bindparam("v_now", type_=UtcDateTime())).returning(TI.c.try_number, TI.c.max_tries))
    row = session.execute(stmt, {**key_params(key), "v_hostname": hostname, "v_pid": pid,
                                 "v_supervisor": None if supervisor_pid is None else str(supervisor_pid),
                                 "v_now": at or utcnow()}).first()
    return None if row is None else (int(row[0]), int(row[1]))


def heartbeat_task(session: Session, key: TIKey, *, try_number: int | None = None,
                   at: dt.datetime | None = None) -> bool:
    """Record that the instance's process is alive; False when it is no longer running (this try).

    False means the instance was cleared, marked failed by orphan detection, or finished
    elsewhere: the process should stop its work and not report a result.
    """
    guarded = try_number is not None

    def build() -> Any:
        stmt = update(TI).where(key_where(TI), TI.c.state.in_(sorted(HEARTBEAT_STATES)))
        if guarded:
            stmt = stmt.where(TI.c.try_number == bindparam("k_try_number"))
        return stmt.values(last_heartbeat_at=bindparam("v_at", type_=UtcDateTime()))
    stmt = prepared(("ti_heartbeat", guarded), build)
    params = {**key_params(key), "v_at": at or utcnow()}
    if guarded:
        params["k_try_number"] = try_number
    return rowcount(session.execute(stmt, params)) == 1


def get_task_history(session: Session, key: TIKey) -> list[TaskInstanceHistoryRow]:
    """The instance's ended attempts, oldest first."""
    stmt = (select(HISTORY).where(HISTORY.c.dag_id == key.dag_id, HISTORY.c.task_id == key.task_id,
                                  HISTORY.c.run_id == key.run_id, HISTORY.c.map_index == key.map_index)
            .order_by(HISTORY.c.try_number, HISTORY.c.id))
    return [TaskInstanceHistoryRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def _guarded_update(session: Session, target: TIKey | Collection[TIKey], state: str | None, expected_state: Any,
                    increment_try_number: bool, at: dt.datetime | None, fields: dict[str, Any],
                    *, returning: bool, try_number: int | None = None) -> Any:
    """One UPDATE of one instance (`target` a key) or many (a collection); see `set_task_state`.

    The statement's shape (state, columns, expected states, dialect) is built once per process
    (`_prepared`); only parameters change between calls, which keeps an attempt's writes cheap.
    """
    check_states([state], TI_STATES)
    unknown = sorted(set(fields) - _SETTABLE)
    if unknown:
        raise InvalidStateError(f"task_instance has no settable column {', '.join(unknown)}; "
                                f"settable: {', '.join(sorted(_SETTABLE))}")
    now = at or utcnow()
    values = {**_implied_fields(state, now, fields), **fields, "state": state}
    values.setdefault("updated_at", now)
    expected = ANY_STATE if expected_state is ANY_STATE else _state_signature(expected_state)
    dialect = session.get_bind().dialect.name
    if isinstance(target, TIKey):
        where_kind, params = ("one" if try_number is None else "one_try"), key_params(target)
        if try_number is not None:
            params["k_try_number"] = try_number
    else:
        keys = list(target)
        if not same_run(keys):
            return _guarded_update_any(session, keys, expected, increment_try_number, values, dialect, state)
        where_kind, params = "many", tasks_params(keys)
    columns = tuple(sorted(f"{name}{_COMPUTED if value is _DURATION else ''}" for name, value in values.items()))
    stmt = prepared(("ti_update", where_kind, dialect, columns, expected, increment_try_number, returning),
                    lambda: _build_update(where_kind, dialect, columns, expected, increment_try_number, returning))
    params.update({f"v_{name}": value for name, value in values.items() if value is not _DURATION})
    if returning:
        changed = sorted(TIKey(*row) for row in session.execute(stmt, params))
        if changed and state in ATTEMPT_END_STATES:
            _record_attempts(session, "many", tasks_params(changed) if same_run(changed) else None, changed)
        return changed
    count = rowcount(session.execute(stmt, params))
    if count and state in ATTEMPT_END_STATES:
        if where_kind == "one_try":
            where_kind, params = "one", {name: v for name, v in params.items() if name != "k_try_number"}
        _record_attempts(session, where_kind, params, None)
    return count


# Placeholder for "duration follows from end_date and the row's start_date" (computed in SQL).
_DURATION: Any = object()
_COMPUTED = ":sql"  # marks such a column in a statement's cache key


def _state_signature(expected: Any) -> tuple[str | None, ...]:
    wanted = set(expected) if isinstance(expected, (set, frozenset, list, tuple)) else {expected}
    check_states(wanted, TI_STATES)
    return tuple(sorted(wanted, key=lambda s: (s is not None, s or "")))


def _build_update(where_kind: str, dialect: str, columns: tuple[str, ...], expected: Any, increment: bool,
                  returning: bool) -> Any:
    values: dict[str, Any] = {}
    for name in columns:
        if name.endswith(_COMPUTED):
            values[name.removesuffix(_COMPUTED)] = _seconds_since_start(dialect)
        else:
            values[name] = bindparam(f"v_{name}", type_=TI.c[name].type)
    if increment:
        values["try_number"] = TI.c.try_number + 1
    stmt = update(TI).where(key_where(TI) if where_kind in ("one", "one_try") else tasks_where(TI)).values(values)
    if where_kind == "one_try":
        stmt = stmt.where(TI.c.try_number == bindparam("k_try_number"))
    if expected is not ANY_STATE:
        stmt = stmt.where(state_filter(TI.c.state, expected, allowed=TI_STATES))
    if returning:
        stmt = stmt.returning(TI.c.dag_id, TI.c.task_id, TI.c.run_id, TI.c.map_index)
    return stmt


def _guarded_update_any(session: Session, keys: list[TIKey], expected: Any, increment: bool,
                        values: dict[str, Any], dialect: str, state: str | None) -> list[TIKey]:
    """Instances of several runs or map indexes: one statement built for this call (rare)."""
    set_ = {name: (_seconds_since_start(dialect, literal(values["end_date"], UtcDateTime()))
                   if value is _DURATION else value) for name, value in values.items()}
    if increment:
        set_["try_number"] = TI.c.try_number + 1
    stmt = update(TI).where(ti_keys_filter(TI, keys)).values(**set_)
    if expected is not ANY_STATE:
        stmt = stmt.where(state_filter(TI.c.state, expected, allowed=TI_STATES))
    stmt = stmt.returning(TI.c.dag_id, TI.c.task_id, TI.c.run_id, TI.c.map_index)
    changed = sorted(TIKey(*row) for row in session.execute(stmt))
    if changed and state in ATTEMPT_END_STATES:
        _record_attempts(session, "many", tasks_params(changed) if same_run(changed) else None, changed)
    return changed


def _implied_fields(state: str | None, now: dt.datetime, given: dict[str, Any]) -> dict[str, Any]:
    """Date columns implied by the new state (given fields win)."""
    if state == TaskInstanceState.QUEUED:
        return {"queued_dttm": now}
    if state == TaskInstanceState.RUNNING:
        start = given.get("start_date", now)
        return {"start_date": start, "last_heartbeat_at": start, "end_date": None, "duration": None}
    if state in _ENDED:
        return {"end_date": given.get("end_date", now), "duration": _DURATION}
    return {}


def _seconds_since_start(dialect: str, end_value: Any = None) -> ColumnElement[float]:
    """SQL for (end - start_date) in seconds, evaluated against the row's current start_date."""
    if end_value is None:
        end_value = bindparam("v_end_date", type_=UtcDateTime())
    if dialect == "postgresql":
        return cast(extract("epoch", end_value - TI.c.start_date), Float)
    # SQLite: julianday resolves to ~50 µs at today's dates, finer than any duration we show.
    return cast((func.julianday(end_value) - func.julianday(TI.c.start_date)) * 86400.0, Float)


def _record_attempts(session: Session, where_kind: str, params: dict[str, Any] | None,
                     keys: list[TIKey] | None) -> None:
    if params is None:  # keys of several runs
        assert keys is not None
        source = select(*(TI.c[name] for name in _HISTORY_COLUMNS)).where(ti_keys_filter(TI, keys),
                                                                           TI.c.start_date.is_not(None))
        session.execute(insert(HISTORY).from_select(_HISTORY_COLUMNS, source))
        return
    stmt = prepared(("ti_history", where_kind), lambda: insert(HISTORY).from_select(
        _HISTORY_COLUMNS, select(*(TI.c[name] for name in _HISTORY_COLUMNS)).where(
            key_where(TI) if where_kind == "one" else tasks_where(TI), TI.c.start_date.is_not(None))))
    session.execute(stmt, params)
