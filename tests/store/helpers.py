"""Small builders shared by the store tests."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from nbflow.store.keys import TaskSpec, TIKey
from nbflow.store.rows import DagRunRow
from nbflow.store.runs import create_dag_run
from nbflow.store.task_instances import create_task_instances

UTC = dt.timezone.utc
DAY1 = dt.datetime(2025, 1, 1, tzinfo=UTC)


def day(n: int) -> dt.datetime:
    """Midnight UTC on 2025-01-n."""
    return DAY1 + dt.timedelta(days=n - 1)


def make_run(session: Session, dag_id: str = "etl", run_id: str = "manual__2025-01-02", *,
             logical_date: Any = ..., tasks: tuple[str, ...] = (), state: str = "running",
             run_type: str = "manual") -> DagRunRow:
    """A DAG run (logical date 2025-01-02 unless given, None allowed) with one task instance per task id."""
    logical = day(2) if logical_date is ... else logical_date
    interval = None if logical is None else (logical - dt.timedelta(days=1), logical)
    run = create_dag_run(session, dag_id=dag_id, run_id=run_id, run_type=run_type, logical_date=logical,
                         data_interval=interval, conf={}, state=state)
    create_task_instances(session, dag_id, run_id, [TaskSpec(task_id=t) for t in tasks])
    return run


def key(task_id: str, run_id: str = "manual__2025-01-02", dag_id: str = "etl", map_index: int = -1) -> TIKey:
    return TIKey(dag_id, task_id, run_id, map_index)
