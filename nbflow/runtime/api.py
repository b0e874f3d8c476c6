"""The one door into the runtime: every use case an interface (CLI, magics, widgets, web) performs.

Each is a typed function taking an `Environment` (config, sessions, the dags folder) and explicit
parameters, returning frozen rows; errors are the narrowest `nbflow.exceptions` class, naming what
is missing. Interfaces never query the store or run a task themselves, so they all behave alike.
Runs, task instances, triggers and the scheduler live here; DAG listings in `api_dags`, single task
instances, logs and XComs in `api_tasks`, the schema in `api_db`, all re-exported below.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbflow.exceptions import DagRunNotFound, NbflowException
from nbflow.runtime.api_dags import DagListing as DagListing
from nbflow.runtime.api_dags import DagSummary as DagSummary
from nbflow.runtime.api_dags import ImportErrorEntry as ImportErrorEntry
from nbflow.runtime.api_dags import TaskSummary as TaskSummary
from nbflow.runtime.api_dags import dag_structure as dag_structure
from nbflow.runtime.api_dags import get_dag as get_dag
from nbflow.runtime.api_dags import get_serialized_dag as get_serialized_dag
from nbflow.runtime.api_dags import list_tasks as list_tasks
from nbflow.runtime.api_dags import list_dags as list_dags
from nbflow.runtime.api_dags import list_import_errors as list_import_errors
from nbflow.runtime.api_dags import new_test_run as new_test_run
from nbflow.runtime.api_dags import run_dag_test as run_dag_test
from nbflow.runtime.api_db import FernetKeyStatus as FernetKeyStatus
from nbflow.runtime.api_db import FernetRotation as FernetRotation
from nbflow.runtime.api_db import check_database as check_database
from nbflow.runtime.api_db import database_url as database_url
from nbflow.runtime.api_db import ensure_fernet_key as ensure_fernet_key
from nbflow.runtime.api_db import init_database as init_database
from nbflow.runtime.api_db import require_database as require_database
from nbflow.runtime.api_db import reset_database as reset_database
from nbflow.runtime.api_db import rotate_fernet_key as rotate_fernet_key
from nbflow.runtime.api_db import upgrade_database as upgrade_database
from nbflow.runtime.api_tasks import LogChunk as LogChunk
from nbflow.runtime.api_tasks import TaskRunResult as TaskRunResult
from nbflow.runtime.api_tasks import TaskTestResult as TaskTestResult
from nbflow.runtime.api_secrets import register_secrets as register_secrets
from nbflow.runtime.api_tasks import XComEntry as XComEntry
from nbflow.runtime.api_tasks import attempt_ended as attempt_ended
from nbflow.runtime.api_tasks import get_xcom as get_xcom
from nbflow.runtime.api_tasks import read_log as read_log
from nbflow.runtime.api_tasks import run_task_instance as run_task_instance
from nbflow.runtime.api_tasks import run_task_test as run_task_test
from nbflow.runtime.dagruns import create_run, record_dags
from nbflow.runtime.environment import Environment as Environment
from nbflow.runtime.inprocess import manual_interval
from nbflow.store import dags as dag_rows
from nbflow.store import runs as run_rows
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.store.rows import DagRunRow, TaskInstanceRow
from nbflow.utils.state import DagRunType


def trigger_dag(env: Environment, dag_id: str, *, conf: dict[str, Any] | None = None, run_id: str | None = None,
                logical_date: datetime | None = None, run_type: str = DagRunType.MANUAL) -> DagRunRow:
    """Create a queued run of the DAG (the scheduler picks it up); params are checked now.

    The DAG is read as the DAG processor stored it (a kernel's cell DAGs: as the kernel holds them); its
    file is imported only in a child process, and only when the DAG has Params to check the conf against.
    """
    dag: Any = dag_structure(env, dag_id)
    _check_params(env, dag, conf)
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


def _check_params(env: Environment, dag: Any, conf: dict[str, Any] | None) -> None:
    """ParamValidationError unless `conf` passes the DAG's Params: checked by the DAG itself when it is
    loaded here, else (a serialized DAG) in a child process that loads its file."""
    from nbflow.runtime.serialized_dag import SerializedDag
    if not isinstance(dag, SerializedDag):
        dag.params.validate(conf or {}, where=f"DAG {dag.dag_id!r}")
    elif dag.params:
        from nbflow.runtime.expansion_process import check_params_in_child
        check_params_in_child(dag.source, dag.dag_id, conf or {},
                              timeout=env.config.getfloat("core", "dagbag_import_timeout"))


def set_paused(env: Environment, dag_id: str, paused: bool) -> None:
    """Pause (the scheduler creates and runs none of its runs) or unpause a DAG; its file is not imported here."""
    dag = dag_structure(env, dag_id)
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
    """The DAG's runs, newest first; DagNotFound when neither the database nor the dags folder knows the DAG."""
    with session_scope(env.readers) as session:
        runs = run_rows.list_dag_runs(session, dag_id, state=state, limit=limit)
        known = bool(runs) or dag_rows.get_dag_row(session, dag_id) is not None
    if not known:
        dag_structure(env, dag_id)  # looked up only for a DAG the database has never seen; raises DagNotFound
    return runs


def get_run(env: Environment, dag_id: str, run_id: str) -> DagRunRow:
    """The run `run_id` of the DAG; DagRunNotFound names both."""
    with session_scope(env.readers) as session:
        row = run_rows.get_dag_run(session, dag_id, run_id)
    if row is None:
        raise DagRunNotFound(dag_id, run_id)
    return row


def find_run(env: Environment, dag_id: str, *, run_id: str, logical_date: datetime | None = None) -> DagRunRow | None:
    """The run `run_id`, else the (newest) run at `logical_date`, else None: for a reference that may be either."""
    with session_scope(env.readers) as session:
        row = run_rows.get_dag_run(session, dag_id, run_id)
        if row is not None or logical_date is None:
            return row
        runs = run_rows.list_dag_runs(session, dag_id, limit=None)
    return next((run for run in runs if run.logical_date == logical_date), None)


def task_states(env: Environment, dag_id: str, run_id: str) -> list[TaskInstanceRow]:
    """Every task instance of the run (what `tasks states-for-dag-run` shows)."""
    get_run(env, dag_id, run_id)
    with session_scope(env.readers) as session:
        return ti_rows.get_task_instances(session, dag_id, run_id)


def clear_tasks(env: Environment, dag_id: str, run_id: str, task_ids: list[str], *,
                downstream: bool = True) -> int:
    """Reset tasks (and everything downstream of them) so the scheduler runs them again.

    A cleared ExternalTaskMarker also clears its target task (and what is downstream of it) in the
    other DAG's run, recursively; the count includes those instances. The selection reads the DAGs as
    the DAG processor stored them; only rendering a marker's target runs DAG code, in a child process.
    """
    from nbflow.runtime.attempt import run_info_of
    from nbflow.runtime.cross_dag_clear import external_clears, marker_targets_of
    from nbflow.runtime.api_dags import dag_finder
    timeout = env.config.getfloat("core", "dagbag_import_timeout")
    find = dag_finder(env)
    dag = find(dag_id)
    for task_id in task_ids:
        dag.get_task(task_id)
    selected = dag.partial_subset(task_ids, include_downstream=downstream)
    run = get_run(env, dag_id, run_id)
    with session_scope(env.sessions) as session:
        # ExternalTaskMarkers among them clear their targets in other DAGs too (cross_dag_clear.py).
        reached = external_clears(session, find, dag, run_info_of(run), sorted(selected),
                                  markers=lambda d, r, ids: marker_targets_of(d, r, ids, timeout=timeout))
        cleared = 0
        for target_dag, target_run, target_tasks in [(dag, run_id, sorted(selected)),
                                                     *((find(t.dag_id), t.run_id, list(t.task_ids))
                                                       for t in reached)]:
            retries = {t: target_dag.task_dict[t].retries for t in target_tasks}
            cleared += ti_rows.clear_task_instances(session, target_dag.dag_id, target_run, target_tasks,
                                                    retries=retries)
        return cleared


def log_path(env: Environment, dag_id: str, run_id: str, task_id: str, try_number: int | None,
             map_index: int = -1) -> Path:
    """Where attempt `try_number` (None: the latest) of the task instance writes its log."""
    from nbflow.runtime.api_tasks import latest_try
    from nbflow.runtime.logs import attempt_log_path
    if try_number is None:
        try_number = latest_try(env, dag_id, run_id, task_id, map_index)
    return attempt_log_path(env.config.log_folder, dag_id, run_id, task_id, try_number, map_index)


def make_scheduler(env: Environment, *, executor: str | None = None) -> Any:
    """A Scheduler with the configured (or named) executor, settings read once from config."""
    from nbflow.runtime.executors.factory import build_executor
    from nbflow.runtime.scheduler import Scheduler, SchedulerSettings

    config = env.config
    # No `run_workload`: every built-in executor runs attempts outside this process (issue 14).
    built = build_executor(config, name=executor)
    settings = SchedulerSettings(
        parallelism=built.parallelism,
        heartbeat_sec=config.getfloat("scheduler", "heartbeat_sec"),
        orphan_timeout_sec=config.getfloat("scheduler", "orphan_timeout_sec"),
        paused_at_creation=config.getboolean("core", "dags_are_paused_at_creation"),
        # how often the DAG processor runs in the loop; `[scheduler] parse_interval_sec` is the older name
        parse_interval_sec=min(config.getfloat("scheduler", "parse_interval_sec"),
                               config.getfloat("dag_processor", "refresh_interval")),
        min_loop_interval_sec=config.getfloat("scheduler", "min_loop_interval_sec"),
        callback_timeout=config.getfloat("scheduler", "callback_timeout"),
        log_folder=config.log_folder,
    )
    # The scheduler decides from serialized DAGs: DAG files are parsed only in the DAG processor's children.
    from nbflow.runtime.dag_processor import ProcessorSettings
    from nbflow.runtime.serialized_dagbag import SerializedDagBag
    from nbflow.runtime.api_dags import kernel_sources
    dagbag = SerializedDagBag(env.sessions, ProcessorSettings.from_config(config), sources=lambda: kernel_sources(env),
                              config=config)
    return Scheduler(dagbag=dagbag, session_factory=env.sessions, read_session_factory=env.readers,
                     executor=built, settings=settings)


def create_backfill(env: Environment, dag_id: str, *, start: datetime, end: datetime,
                    conf: dict[str, Any] | None = None) -> list[DagRunRow]:
    """One queued backfill run per schedule interval starting in [start, end] (existing runs are kept).

    Decided from the DAG as the DAG processor stored it (as the scheduler decides); Params, if any, are
    checked in a child process, so no DAG file is imported here.
    """
    dag: Any = dag_structure(env, dag_id)
    if not dag.timetable.periodic:
        raise NbflowException(f"DAG {dag_id!r} has schedule {dag.timetable.summary}; only a periodic schedule "
                              f"can be backfilled")
    _check_params(env, dag, conf)
    created: list[DagRunRow] = []
    with session_scope(env.sessions) as session:
        if dag_rows.get_dag_row(session, dag_id) is None:
            record_dags(session, [dag], paused_at_creation=env.config.getboolean("core",
                                                                                 "dags_are_paused_at_creation"))
        for interval in dag.timetable.intervals_between(start, end):
            run_id = f"backfill__{interval.start.isoformat()}"
            existing = run_rows.get_dag_run(session, dag_id, run_id)
            created.append(existing or create_run(session, dag, run_type=DagRunType.BACKFILL,
                                                  logical_date=interval.start, interval=interval, conf=conf,
                                                  run_id=run_id, triggered_by="backfill"))
    return created

