"""What interfaces (CLI, magics, web) call to act on DAGs and runs: one place, no SQL in interfaces."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nbflow.configuration import Config
from nbflow.exceptions import DagNotFound, NbflowException
from nbflow.runtime.dagruns import create_run, record_dags
from nbflow.runtime.inprocess import manual_interval
from nbflow.store import dags as dag_rows
from nbflow.store import make_engine, make_session_factory, session_scope
from nbflow.store import runs as run_rows
from nbflow.store import task_instances as ti_rows
from nbflow.store.rows import DagRunRow, TaskInstanceRow

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dagbag import DagBag


@dataclass
class Environment:
    """Config, database sessions and the DAG folder, built once per command or kernel."""

    config: Config
    sessions: Callable[[], Session]
    readers: Callable[[], Session]
    _dagbag: "DagBag | None" = None

    @classmethod
    def from_config(cls, config: Config) -> "Environment":
        engine = make_engine(config.sql_alchemy_conn)
        return cls(config=config, sessions=make_session_factory(engine),
                   readers=make_session_factory(engine, read_only=True))

    @property
    def dagbag(self) -> "DagBag":
        if self._dagbag is None:
            from nbflow.runtime.dagbag import DagBag
            self._dagbag = DagBag(self.config.dags_folder,
                                  import_timeout=self.config.getfloat("core", "dagbag_import_timeout"))
        return self._dagbag

    def get_dag(self, dag_id: str) -> "DAG":
        dag = self.dagbag.dags.get(dag_id)
        if dag is None:
            raise DagNotFound(f"DAG {dag_id!r} not found in {self.config.dags_folder}; "
                              f"known: {', '.join(sorted(self.dagbag.dags)) or 'none'}")
        return dag


def init_database(env: Environment) -> None:
    from nbflow.store.migrate import init_db
    init_db(env.config.sql_alchemy_conn)


def trigger_dag(env: Environment, dag_id: str, *, conf: dict[str, Any] | None = None, run_id: str | None = None,
                logical_date: datetime | None = None, run_type: str = "manual") -> DagRunRow:
    """Create a queued run of the DAG (the scheduler picks it up); params are checked now."""
    dag = env.get_dag(dag_id)
    dag.params.validate(conf or {}, where=f"DAG {dag_id!r}")
    if run_id is not None and not re.match(r"^[A-Za-z0-9_.:+\-]+$", run_id):
        raise NbflowException(f"run id {run_id!r} may only contain letters, digits and _ . : + -")
    logical = logical_date or datetime.now(timezone.utc)
    with session_scope(env.sessions) as session:
        if dag_rows.get_dag_row(session, dag_id) is None:
            record_dags(session, [dag], paused_at_creation=env.config.getboolean("core",
                                                                                 "dags_are_paused_at_creation"))
        return create_run(session, dag, run_type=run_type, logical_date=logical,
                          interval=manual_interval(dag, logical), conf=conf, run_id=run_id,
                          triggered_by="cli")


def set_paused(env: Environment, dag_id: str, paused: bool) -> None:
    dag = env.get_dag(dag_id)
    with session_scope(env.sessions) as session:
        if dag_rows.get_dag_row(session, dag_id) is None:
            record_dags(session, [dag], paused_at_creation=paused)
        dag_rows.set_paused(session, dag_id, paused)


def is_paused(env: Environment, dag_id: str) -> bool | None:
    """Whether the DAG is paused in the metadata database (None: not recorded there yet)."""
    with session_scope(env.readers) as session:
        row = dag_rows.get_dag_row(session, dag_id)
    return None if row is None else row.is_paused


def list_runs(env: Environment, dag_id: str, *, state: str | None = None, limit: int = 100) -> list[DagRunRow]:
    with session_scope(env.readers) as session:
        return run_rows.list_dag_runs(session, dag_id, state=state, limit=limit)


def get_run(env: Environment, dag_id: str, run_id: str) -> DagRunRow:
    with session_scope(env.readers) as session:
        row = run_rows.get_dag_run(session, dag_id, run_id)
    if row is None:
        raise NbflowException(f"DAG {dag_id!r} has no run {run_id!r}")
    return row


def task_states(env: Environment, dag_id: str, run_id: str) -> list[TaskInstanceRow]:
    get_run(env, dag_id, run_id)
    with session_scope(env.readers) as session:
        return ti_rows.get_task_instances(session, dag_id, run_id)


def clear_tasks(env: Environment, dag_id: str, run_id: str, task_ids: list[str], *,
                downstream: bool = True) -> int:
    """Reset tasks (and everything downstream of them) so the scheduler runs them again."""
    dag = env.get_dag(dag_id)
    for task_id in task_ids:
        dag.get_task(task_id)
    selected = dag.partial_subset(task_ids, include_downstream=downstream)
    retries = {t: dag.task_dict[t].retries for t in selected}
    get_run(env, dag_id, run_id)
    with session_scope(env.sessions) as session:
        return ti_rows.clear_task_instances(session, dag_id, run_id, sorted(selected), retries=retries)


def log_path(env: Environment, dag_id: str, run_id: str, task_id: str, try_number: int | None,
             map_index: int = -1) -> Path:
    from nbflow.runtime.logs import attempt_log_path
    if try_number is None:
        with session_scope(env.sessions) as session:
            from nbflow.store.keys import TIKey
            row = ti_rows.get_task_instance(session, TIKey(dag_id, task_id, run_id, map_index))
        if row is None:
            raise NbflowException(f"DAG {dag_id!r} run {run_id!r} has no task {task_id!r}")
        try_number = max(row.try_number, 1)
    return attempt_log_path(env.config.log_folder, dag_id, run_id, task_id, try_number, map_index)


def make_scheduler(env: Environment, *, executor: str | None = None) -> Any:
    """A Scheduler with the configured (or named) executor, settings read once from config."""
    import nbflow.runtime.executors.local  # noqa: F401 - registers "local"
    import nbflow.runtime.executors.sequential  # noqa: F401 - registers "sequential"
    from nbflow.runtime.attempt import execute_workload
    from nbflow.runtime.executors.base import executors
    from nbflow.runtime.scheduler import Scheduler, SchedulerSettings

    config = env.config
    name = executor or config.get("core", "executor")
    executor_cls = executors.get(name, where="core.executor")
    parallelism = 1 if name == "sequential" else config.getint("core", "parallelism")

    def run_workload(workload: Any) -> int:
        dag = env.get_dag(workload.dag_id)
        return execute_workload(workload, dag, session_factory=env.sessions, log_folder=config.log_folder,
                                max_xcom_size=config.getint("core", "max_xcom_size"),
                                heartbeat_sec=config.getfloat("scheduler", "task_heartbeat_sec"))

    settings = SchedulerSettings(
        parallelism=parallelism,
        heartbeat_sec=config.getfloat("scheduler", "heartbeat_sec"),
        orphan_timeout_sec=config.getfloat("scheduler", "orphan_timeout_sec"),
        paused_at_creation=config.getboolean("core", "dags_are_paused_at_creation"),
        parse_interval_sec=config.getfloat("scheduler", "parse_interval_sec"),
        min_loop_interval_sec=config.getfloat("scheduler", "min_loop_interval_sec"),
    )
    exec_settings = {"dags_folder": config.dags_folder, "run_workload": run_workload}
    return Scheduler(dagbag=env.dagbag, session_factory=env.sessions, read_session_factory=env.readers,
                     executor=executor_cls(parallelism=parallelism, settings=exec_settings), settings=settings)


def create_backfill(env: Environment, dag_id: str, *, start: datetime, end: datetime,
                    conf: dict[str, Any] | None = None) -> list[DagRunRow]:
    """One queued backfill run per schedule interval starting in [start, end] (existing runs are kept)."""
    dag = env.get_dag(dag_id)
    if not dag.timetable.periodic:
        raise NbflowException(f"DAG {dag_id!r} has schedule {dag.timetable.summary}; only a periodic schedule "
                              f"can be backfilled")
    dag.params.validate(conf or {}, where=f"DAG {dag_id!r}")
    created: list[DagRunRow] = []
    with session_scope(env.sessions) as session:
        if dag_rows.get_dag_row(session, dag_id) is None:
            record_dags(session, [dag], paused_at_creation=env.config.getboolean("core",
                                                                                 "dags_are_paused_at_creation"))
        for interval in dag.timetable.intervals_between(start, end):
            run_id = f"backfill__{interval.start.isoformat()}"
            existing = run_rows.get_dag_run(session, dag_id, run_id)
            created.append(existing or create_run(session, dag, run_type="backfill", logical_date=interval.start,
                                                  interval=interval, conf=conf, run_id=run_id,
                                                  triggered_by="backfill"))
    return created


def get_xcom_json(env: Environment, dag_id: str, task_id: str, *, run_id: str | None = None,
                  key: str = "return_value", map_index: int = -1) -> str | None:
    """The JSON of a task's XCom in `run_id`, or in the latest run that has it; NbflowException if none."""
    from nbflow.store import xcoms as xcom_rows
    from nbflow.store.keys import TIKey

    with session_scope(env.readers) as session:
        if run_id is not None:
            if run_rows.get_dag_run(session, dag_id, run_id) is None:
                raise NbflowException(f"DAG {dag_id!r} has no run {run_id!r}")
            runs = [run_id]
        else:
            runs = [row.run_id for row in run_rows.list_dag_runs(session, dag_id, limit=50)]
        for candidate in runs:
            row = xcom_rows.get_xcom(session, TIKey(dag_id, task_id, candidate, map_index), key)
            if row is not None:
                return row.value
    where = f"run {run_id!r}" if run_id else "any run"
    raise NbflowException(f"task {dag_id}.{task_id} has no XCom {key!r} in {where}")
