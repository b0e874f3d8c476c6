"""Task instance rows: create them for a run, read them, clear them, find orphans.

State changes (compare-and-set, heartbeats, attempt history) live in `ti_state.py`. Every
function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from nbflow.exceptions import DagRunNotFound
from nbflow.store._prepared import key_params, key_where, prepared
from nbflow.store._sql import ANY_STATE, insert_for, rowcount, state_filter, ti_key_filter
from nbflow.store.keys import TaskSpec, TIKey
from nbflow.store.models import DagRunORM, TaskInstanceORM, table_of
from nbflow.store.rows import TaskInstanceRow
from nbflow.store.runs import set_dag_run_state
from nbflow.utils.state import LIVE_ATTEMPT_STATES, RUN_FINISHED_STATES, TI_STATES, DagRunState, TaskInstanceState
from nbflow.store.types import UtcDateTime
from nbflow.utils.timezone import utcnow

TI = table_of(TaskInstanceORM)
DAG_RUN = table_of(DagRunORM)
_ORDER = (TI.c.task_id, TI.c.map_index)


def create_task_instances(session: Session, dag_id: str, run_id: str, tasks: Iterable[TaskSpec], *,
                          skip_existing: bool = False, at: dt.datetime | None = None) -> int:
    """Insert one task instance (state None, try_number 0) per spec with one executemany; the spec count.

    Raises DagRunNotFound if the run does not exist. With `skip_existing`, specs whose instance
    exists already are ignored (for adding tasks that appeared in a re-parsed DAG).
    """
    _require_run(session, dag_id, run_id)
    now = at or utcnow()
    rows = [{"dag_id": dag_id, "task_id": spec.task_id, "run_id": run_id, "map_index": spec.map_index,
             "state": None, "try_number": 0, "max_tries": spec.max_tries, "pool": spec.pool,
             "pool_slots": spec.pool_slots, "priority_weight": spec.priority_weight, "operator": spec.operator,
             "queue": spec.queue, "updated_at": now} for spec in tasks]
    if not rows:
        return 0
    stmt = insert_for(session, TI).on_conflict_do_nothing() if skip_existing else insert(TI)
    session.execute(stmt, rows)
    return len(rows)


def get_task_instance(session: Session, key: TIKey) -> TaskInstanceRow | None:
    """One task instance, or None."""
    stmt = prepared("ti_get", lambda: select(TI).where(key_where(TI)))
    found = session.execute(stmt, key_params(key)).mappings().first()
    return TaskInstanceRow.from_mapping(found) if found else None


def get_task_instances(session: Session, dag_id: str, run_id: str, *, task_ids: Collection[str] | None = None,
                       state: Any = ANY_STATE) -> list[TaskInstanceRow]:
    """The run's task instances ordered by task_id and map index, optionally filtered."""
    stmt = select(TI).where(TI.c.dag_id == dag_id, TI.c.run_id == run_id).order_by(*_ORDER)
    if task_ids is not None:
        stmt = stmt.where(TI.c.task_id.in_(list(task_ids)))
    if state is not ANY_STATE:
        stmt = stmt.where(state_filter(TI.c.state, state, allowed=TI_STATES))
    return [TaskInstanceRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def get_task_states(session: Session, dag_id: str, run_id: str, *, task_ids: Collection[str] | None = None
                    ) -> list[tuple[str, int, str | None, int, Any]]:
    """(task_id, map_index, state, try_number, next_retry_at) of each instance (of `task_ids` only, when
    given): the scheduler's hot read."""
    stmt = prepared(("ti_states", task_ids is not None), lambda: _build_states(task_ids is not None))
    params: dict[str, Any] = {"k_dag_id": dag_id, "k_run_id": run_id}
    if task_ids is not None:
        params["k_task_ids"] = sorted(task_ids)
    return [tuple(row) for row in session.execute(stmt, params).all()]  # type: ignore[misc]


def _build_states(some_tasks: bool) -> Any:
    stmt = (select(TI.c.task_id, TI.c.map_index, TI.c.state, TI.c.try_number, TI.c.next_retry_at)
            .where(TI.c.dag_id == bindparam("k_dag_id"), TI.c.run_id == bindparam("k_run_id")))
    if some_tasks:
        stmt = stmt.where(TI.c.task_id.in_(bindparam("k_task_ids", expanding=True)))
    return stmt


def previous_task_state(session: Session, key: TIKey, *, before: dt.datetime) -> tuple[bool, bool, str | None]:
    """What depends_on_past looks at: (whether an earlier run exists, whether it has this task instance,
    that instance's state), for the latest run of the DAG with a logical date before `before`."""
    run = (select(DAG_RUN.c.run_id).where(DAG_RUN.c.dag_id == key.dag_id,
                                           DAG_RUN.c.logical_date < literal(before, UtcDateTime()))
           .order_by(DAG_RUN.c.logical_date.desc()).limit(1))
    run_id = session.scalar(run)
    if run_id is None:
        return False, False, None
    row = session.execute(select(TI.c.state).where(TI.c.dag_id == key.dag_id, TI.c.task_id == key.task_id,
                                                   TI.c.run_id == run_id, TI.c.map_index == key.map_index)).first()
    return True, row is not None, None if row is None else row[0]


def task_ran_before(session: Session, key: TIKey, *, before: dt.datetime) -> bool:
    """Whether this task has an instance in any run of the DAG with a logical date before `before`."""
    stmt = (select(TI.c.task_id).join(DAG_RUN, (DAG_RUN.c.dag_id == TI.c.dag_id) & (DAG_RUN.c.run_id == TI.c.run_id))
            .where(TI.c.dag_id == key.dag_id, TI.c.task_id == key.task_id,
                   DAG_RUN.c.logical_date < literal(before, UtcDateTime())).limit(1))
    return session.execute(stmt).first() is not None


def task_instances_in_state(session: Session, state: Any, *, dag_id: str | None = None,
                            limit: int | None = None) -> list[TaskInstanceRow]:
    """Task instances in `state` (a state, None, or a collection) across runs, highest priority first."""
    stmt = (select(TI).where(state_filter(TI.c.state, state, allowed=TI_STATES))
            .order_by(TI.c.priority_weight.desc(), TI.c.dag_id, TI.c.run_id, *_ORDER))
    if dag_id is not None:
        stmt = stmt.where(TI.c.dag_id == dag_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [TaskInstanceRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def count_task_instances(session: Session, state: Any, *, dag_id: str | None = None,
                         run_id: str | None = None) -> int:
    """How many task instances are in `state`, optionally in one DAG or one run (for max_active_tasks)."""
    wanted = tuple(sorted(state, key=lambda s: (s is not None, s or ""))) \
        if isinstance(state, (set, frozenset, list, tuple)) else (state,)
    stmt = prepared(("ti_count", wanted, dag_id is not None, run_id is not None),
                    lambda: _build_count(wanted, dag_id is not None, run_id is not None))
    return int(session.scalar(stmt, {"k_dag_id": dag_id, "k_run_id": run_id}) or 0)


def _build_count(state: tuple[str | None, ...], by_dag: bool, by_run: bool) -> Any:
    stmt = select(func.count()).select_from(TI).where(state_filter(TI.c.state, state, allowed=TI_STATES))
    if by_dag:
        stmt = stmt.where(TI.c.dag_id == bindparam("k_dag_id"))
    if by_run:
        stmt = stmt.where(TI.c.run_id == bindparam("k_run_id"))
    return stmt


def find_orphaned_task_instances(session: Session, *, older_than: dt.datetime | dt.timedelta,
                                 states: Collection[str] = LIVE_ATTEMPT_STATES,
                                 now: dt.datetime | None = None) -> list[TaskInstanceRow]:
    """Task instances in `states` whose process has not shown life since `older_than`.

    `older_than` is a cutoff time, or an age counted back from `now`. Life is the last heartbeat,
    else the start, else the time queued, else the last update, so an instance whose worker
    died before its first heartbeat is found too. "restarting" ones (cleared while running) whose
    process went silent are found too. The scheduler decides what to do with them.
    """
    cutoff = older_than if isinstance(older_than, dt.datetime) else (now or utcnow()) - older_than
    last_sign = func.coalesce(TI.c.last_heartbeat_at, TI.c.start_date, TI.c.queued_dttm, TI.c.updated_at,
                              type_=UtcDateTime())
    stmt = (select(TI).where(state_filter(TI.c.state, list(states), allowed=TI_STATES),
                             last_sign < literal(cutoff, UtcDateTime()))
            .order_by(TI.c.dag_id, TI.c.run_id, *_ORDER))
    return [TaskInstanceRow.from_mapping(m) for m in session.execute(stmt).mappings()]


def clear_task_instances(session: Session, dag_id: str, run_id: str, task_ids: Collection[str] | None = None, *,
                         retries: Mapping[str, int] | None = None, dag_run_state: str = DagRunState.QUEUED,
                         at: dt.datetime | None = None) -> int:
    """Reset task instances of a run (all of them when `task_ids` is None) so they run again.

    Each gets state None and keeps its try_number, so the next attempt is numbered after the
    last. An instance that is running becomes "restarting" instead: it is not scheduled again
    until its attempt has stopped (the attempt's heartbeat returns False, so its supervisor stops
    it, and its end, whatever it was, only turns "restarting" into None), so the same instance
    never runs twice at once. With `retries` ({task_id: retries}), max_tries becomes try_number
    + retries, giving a cleared task its retries back (Airflow's behaviour); without, max_tries
    is unchanged. A finished run goes back to `dag_run_state`; a queued or running run stays as
    it is. Returns how many task instances were cleared.
    """
    run_state = _require_run(session, dag_id, run_id)
    now = at or utcnow()
    reset = {"next_retry_at": None, "external_executor_id": None, "updated_at": now}
    where = [TI.c.dag_id == dag_id, TI.c.run_id == run_id]
    if task_ids is not None:
        where.append(TI.c.task_id.in_(list(task_ids)))
    groups: list[tuple[list[Any], dict[str, Any]]] = []
    if retries:
        by_retries: dict[int, list[str]] = defaultdict(list)
        for task_id, count in retries.items():
            if task_ids is None or task_id in task_ids:
                by_retries[count].append(task_id)
        for count, ids in by_retries.items():
            groups.append(([*where, TI.c.task_id.in_(ids)], {"max_tries": TI.c.try_number + count}))
        where = [*where, TI.c.task_id.not_in(list(retries))]
    groups.append((where, {}))
    cleared = 0
    for group_where, extra in groups:
        cleared += rowcount(session.execute(update(TI).where(
            *group_where, TI.c.state == TaskInstanceState.RUNNING).values(
            **reset, **extra, state=TaskInstanceState.RESTARTING)))
        cleared += rowcount(session.execute(update(TI).where(
            *group_where, or_(TI.c.state.is_(None), TI.c.state != TaskInstanceState.RESTARTING)).values(
            **reset, **extra, state=None)))
    if cleared:
        from nbflow.store.reschedules import delete_reschedules
        delete_reschedules(session, dag_id, run_id, None if task_ids is None else list(task_ids))
    if cleared and run_state in RUN_FINISHED_STATES:
        set_dag_run_state(session, dag_id, run_id, dag_run_state, at=now)
    return cleared


def _require_run(session: Session, dag_id: str, run_id: str) -> str:
    state = session.scalar(select(DAG_RUN.c.state).where(DAG_RUN.c.dag_id == dag_id, DAG_RUN.c.run_id == run_id))
    if state is None:
        raise DagRunNotFound(dag_id, run_id)
    return state
