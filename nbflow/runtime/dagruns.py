"""Creating DAG runs (scheduled, manual, backfill) with their task instances, and recording DAGs."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nbflow.authoring.timetables import DataInterval
from nbflow.runtime.priority import priority_weights
from nbflow.store import dags as dag_rows
from nbflow.store import runs as run_rows
from nbflow.store import task_instances as ti_rows
from nbflow.store.keys import TaskSpec
from nbflow.store.rows import DagRunRow

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


def task_specs(dag: "DAG") -> list[TaskSpec]:
    """One instance per task; a mapped task starts as one placeholder (map index -1) until expanded."""
    weights = priority_weights(dag)
    return [TaskSpec(task_id=t.task_id, map_index=-1, max_tries=t.retries, pool=t.pool, pool_slots=t.pool_slots,
                     priority_weight=weights[t.task_id], operator=t.operator_name, queue=t.queue)
            for t in dag.tasks]


def create_run(session: Session, dag: "DAG", *, run_type: str, logical_date: datetime, interval: DataInterval,
               conf: dict[str, Any] | None = None, run_id: str | None = None,
               triggered_by: str | None = None) -> DagRunRow:
    """A queued DAG run and its task instances, in the caller's transaction."""
    run_id = run_id or f"{run_type}__{logical_date.isoformat()}"
    row = run_rows.create_dag_run(session, dag_id=dag.dag_id, run_id=run_id, run_type=run_type,
                                  logical_date=logical_date, data_interval=(interval.start, interval.end),
                                  conf=conf or {}, triggered_by=triggered_by)
    ti_rows.create_task_instances(session, dag.dag_id, run_id, task_specs(dag))
    return row


def record_dags(session: Session, dags: Iterable["DAG"], *, paused_at_creation: bool) -> None:
    """Insert or refresh DAG rows; a new DAG gets its first scheduled interval."""
    for dag in dags:
        existing = dag_rows.get_dag_row(session, dag.dag_id)
        paused = paused_at_creation if dag.is_paused_upon_creation is None else dag.is_paused_upon_creation
        dag_rows.upsert_dag(session, dag_id=dag.dag_id, fileloc=dag.fileloc, schedule=dag.timetable.summary,
                            tags=dag.tags, description=dag.description, owners=dag.owner,
                            max_active_runs=dag.max_active_runs, max_active_tasks=dag.max_active_tasks,
                            is_paused_at_creation=paused)
        if existing is None or existing.schedule != dag.timetable.summary:  # new, or its schedule changed
            set_next_interval(session, dag, after=None)


def set_next_interval(session: Session, dag: "DAG", *, after: DataInterval | None,
                      now: datetime | None = None) -> DataInterval | None:
    """Store when the DAG's next scheduled run is due (its interval's end), or that none is."""
    nxt = dag.timetable.next_after(after, start_date=dag.start_date)
    if nxt is not None:
        nxt = within_schedule(dag, nxt, now=now or datetime.now(timezone.utc))
    if nxt is None:
        dag_rows.set_next_dagrun(session, dag.dag_id, next_dagrun=None, data_interval=None, create_after=None)
        return None
    dag_rows.set_next_dagrun(session, dag.dag_id, next_dagrun=nxt.start, data_interval=(nxt.start, nxt.end),
                             create_after=nxt.end)
    return nxt


def within_schedule(dag: "DAG", interval: DataInterval, *, now: datetime) -> DataInterval | None:
    """The interval to run instead of `interval`: without catchup the latest complete one at `now` if
    that is later (Airflow's skip to latest); None when it starts after the DAG's end_date."""
    if not dag.catchup and dag.timetable.periodic:
        interval = dag.timetable.skip_to_latest(interval, now=now)
    if dag.end_date is not None and interval.start > dag.end_date:
        return None
    return interval
