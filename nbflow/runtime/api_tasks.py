"""Single task instances: run one of a recorded run, test one without a database, read its log and XComs.

Part of the door `nbflow.runtime.api` (re-exported there). `run_task_instance` is what `nbflow tasks
run`, a notebook's `%%task --run` and a web "run" button share.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.exceptions import MapIndexError, NbflowException, NoDagRunYet, TaskInstanceNotFound, \
    TaskInstanceNotRunnable, XComNotFound
from nbflow.runtime.environment import Environment
from nbflow.utils.state import QUEUEABLE_STATES, SUCCESS_STATES, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.run_info import DagRunInfo
    from nbflow.runtime.xcom import XComStore
    from nbflow.store.keys import TIKey

XCOM_RETURN_KEY = "return_value"
_UNFINISHED = (TaskInstanceState.RUNNING, TaskInstanceState.QUEUED, None, TaskInstanceState.UP_FOR_RETRY,
               TaskInstanceState.UP_FOR_RESCHEDULE,
               TaskInstanceState.SCHEDULED)


def _label(task_id: str, map_index: int) -> str:
    return task_id + (f"[{map_index}]" if map_index >= 0 else "")


@dataclass(frozen=True, slots=True)
class TaskRunResult:
    """How running one recorded task instance ended: the state written to the database."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    state: str | None

    @property
    def key(self) -> "TIKey":
        from nbflow.store.keys import TIKey
        return TIKey(self.dag_id, self.task_id, self.run_id, self.map_index)

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCESS_STATES


@dataclass(frozen=True, slots=True)
class TaskTestResult:
    """How `run_task_test` ended: one attempt, in this process, recorded nowhere but its log."""

    task_id: str
    map_index: int
    state: str
    duration: float
    error: str | None
    log_path: str | None

    @property
    def label(self) -> str:
        return _label(self.task_id, self.map_index)


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Text of an attempt's log from `offset` on, secrets masked; `next_offset` continues it."""

    path: Path
    try_number: int
    text: str
    next_offset: int
    exists: bool


@dataclass(frozen=True, slots=True)
class XComEntry:
    """One XCom a task instance pushed; `value` is the stored JSON decoded back into Python."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    key: str
    value: Any
    timestamp: dt.datetime | None


# -- running --------------------------------------------------------------------------------------------

def run_task_instance(env: Environment, dag_id: str, task_id: str, run_id: str, *,
                      map_index: int = -1) -> TaskRunResult:
    """Queue one task instance of an existing run and run its next attempt here, recording the result.

    Only an instance that has not run (or waits for a retry) can be run; TaskInstanceNotRunnable says
    to clear it first. Output goes to the attempt's log file.
    """
    from nbflow.runtime.api import get_run
    from nbflow.runtime.attempt import execute_workload
    from nbflow.runtime.workload import Workload
    from nbflow.store import session_scope, ti_state
    from nbflow.store import task_instances as ti_rows
    from nbflow.store.keys import TIKey

    conf = env.config
    dag = env.get_dag(dag_id)
    dag.get_task(task_id)
    get_run(env, dag_id, run_id)
    key = TIKey(dag_id, task_id, run_id, map_index)
    with session_scope(env.sessions) as session:
        row = ti_rows.get_task_instance(session, key)
        if row is None:
            raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index)
        if row.state != TaskInstanceState.QUEUED and not ti_state.set_task_state(
                session, key, TaskInstanceState.QUEUED, expected_state=QUEUEABLE_STATES):
            raise TaskInstanceNotRunnable(dag_id, run_id, task_id, row.state)
    workload = Workload(dag_id, task_id, run_id, map_index, row.try_number + 1, dag.fileloc)
    execute_workload(workload, dag, session_factory=env.sessions, log_folder=conf.log_folder,
                     max_xcom_size=conf.getint("core", "max_xcom_size"),
                     heartbeat_sec=conf.getfloat("scheduler", "task_heartbeat_sec"), read_session_factory=env.readers)
    with session_scope(env.readers) as session:
        final = ti_rows.get_task_instance(session, key)
    return TaskRunResult(dag_id, task_id, run_id, map_index, final.try_number if final else workload.try_number,
                         final.state if final else None)


def _mapped_kwargs(dag: "DAG", task: Any, run: "DagRunInfo", params: dict[str, Any], xcoms: "XComStore",
                   map_index: int | None) -> dict[str, Any]:
    """The arguments of instance `map_index` of a mapped task, when its input needs no upstream task."""
    from nbflow.runtime.task_instance import RuntimeTaskInstance
    ti = RuntimeTaskInstance(task=task, run=run, map_index=-1, try_number=1, max_tries=0, xcoms=xcoms)
    try:
        expansion = task.expansion({"ti": ti, "params": params, "dag_run": run, "run_id": run.run_id})
    except NbflowException as err:
        raise MapIndexError(f"task {task.task_id!r} is mapped over an upstream task's output, which `tasks test` "
                            f"does not run ({err}); use `nbflow dags test {dag.dag_id}` instead") from None
    if map_index is None or not 0 <= map_index < len(expansion):
        given = "" if map_index is None else f"--map-index {map_index} is out of range; "
        raise MapIndexError(f"task {task.task_id!r} is mapped into {len(expansion)} instance(s); {given}"
                            f"pass --map-index N with N from 0 to {len(expansion) - 1}")
    return expansion[map_index]


def run_task_test(env: Environment, dag_id: str, task_id: str, *, logical_date: dt.datetime | None = None,
                  conf: dict[str, Any] | None = None, map_index: int | None = None,
                  echo: TextIO | None = None) -> TaskTestResult:
    """Run one attempt of one task in this process, ignoring its dependencies (upstream XComs are absent).

    Nothing is written to the metadata database; a mapped task needs `map_index`.
    """
    from nbflow.runtime.inprocess import make_run_info
    from nbflow.runtime.task_runner import AttemptRequest, run_attempt
    from nbflow.runtime.task_services import InProcessTaskServices
    from nbflow.runtime.xcom import MemoryXComStore

    dag = env.get_dag(dag_id)
    task = dag.get_task(task_id)
    run = make_run_info(dag, logical_date, conf)
    params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
    xcoms = MemoryXComStore()
    index = -1
    if task.is_mapped:
        kwargs = _mapped_kwargs(dag, task, run, params, xcoms, map_index)
        index = map_index if map_index is not None else -1
        task = task.unmap(kwargs)
    elif map_index is not None:
        raise MapIndexError(f"task {task.task_id!r} is not mapped; leave out --map-index")
    # As under `dags test`: a sensor remembers its poke, a triggered DAG runs here; no database is written.
    services = InProcessTaskServices(env, log_folder=env.config.log_folder)
    request = AttemptRequest(task=task, run=run, map_index=index, try_number=1, params=params,
                             log_folder=env.config.log_folder, max_xcom_size=env.config.getint("core", "max_xcom_size"),
                             services=services)
    services.poke_started(run.dag_id, task.task_id, run.run_id, index, 1, dt.datetime.now(dt.timezone.utc))
    outcome = run_attempt(request, xcoms, echo=echo)
    return TaskTestResult(task_id=task.task_id, map_index=index, state=outcome.state, duration=outcome.duration,
                          error=outcome.error, log_path=outcome.log_path)


# -- reading --------------------------------------------------------------------------------------------

def read_log(env: Environment, dag_id: str, run_id: str, task_id: str, *, try_number: int | None = None,
             map_index: int = -1, offset: int = 0) -> LogChunk:
    """The attempt's log text from byte `offset` on, with every known secret masked.

    `try_number=None` means the instance's latest attempt (the chunk says which, to read on from);
    a log that does not exist yet reads as empty (`exists=False`), so a caller can poll until the
    attempt starts.
    """
    from nbflow.runtime.api import get_run
    from nbflow.runtime.logs import attempt_log_path
    from nbflow.utils.masking import masker
    get_run(env, dag_id, run_id)
    if try_number is None:
        try_number = latest_try(env, dag_id, run_id, task_id, map_index)
    path = attempt_log_path(env.config.log_folder, dag_id, run_id, task_id, try_number, map_index)
    if not path.exists():
        return LogChunk(path, try_number, "", offset, False)
    with path.open(encoding="utf-8", errors="replace") as file:
        file.seek(offset)
        text = file.read()
        next_offset = file.tell()
    return LogChunk(path, try_number, masker.redact(text), next_offset, True)


def latest_try(env: Environment, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> int:
    """The try number of the instance's latest attempt (1 before it first ran)."""
    from nbflow.store import session_scope
    from nbflow.store import task_instances as ti_rows
    from nbflow.store.keys import TIKey
    with session_scope(env.readers) as session:
        row = ti_rows.get_task_instance(session, TIKey(dag_id, task_id, run_id, map_index))
    if row is None:
        raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index)
    return max(row.try_number, 1)


def attempt_ended(env: Environment, dag_id: str, run_id: str, task_id: str, *, try_number: int | None = None,
                  map_index: int = -1) -> bool:
    """Whether attempt `try_number` (None: the current one) is over, so its log will not grow."""
    from nbflow.store import session_scope
    from nbflow.store import task_instances as ti_rows
    from nbflow.store.keys import TIKey
    with session_scope(env.readers) as session:
        row = ti_rows.get_task_instance(session, TIKey(dag_id, task_id, run_id, map_index))
    if row is None:
        return True
    if try_number is not None and row.try_number > try_number:
        return True
    return row.state not in _UNFINISHED


def get_xcom(env: Environment, dag_id: str, task_id: str, run_id: str | None = None, *, map_index: int = -1,
             key: str = XCOM_RETURN_KEY, masked: bool = True) -> XComEntry:
    """What task instance `task_id` (of run `run_id`, default the DAG's latest run) pushed under `key`.

    For display, `masked` (the default) replaces every known secret in the value (and the value of every
    sensitively named field) with ***; code that feeds the value to another task passes masked=False.

    Errors name what is missing: the DAG (DagNotFound), its runs (NoDagRunYet, DagRunNotFound),
    the task instance (TaskInstanceNotFound), or the value (XComNotFound).
    """
    from nbflow.runtime.api import get_run
    from nbflow.store import runs as run_rows
    from nbflow.store import session_scope
    from nbflow.store import task_instances as ti_rows
    from nbflow.store import xcoms as xcom_rows
    from nbflow.store.keys import TIKey
    from nbflow.utils.serialization import deserialize

    if run_id is None:
        with session_scope(env.readers) as session:
            latest = run_rows.list_dag_runs(session, dag_id, limit=1)
        if not latest:
            from nbflow.runtime.api_dags import dag_structure
            dag_structure(env, dag_id)  # DagNotFound, naming the known DAGs
            raise NoDagRunYet(dag_id)
        run_id = latest[0].run_id
    else:
        get_run(env, dag_id, run_id)
    ti_key = TIKey(dag_id, task_id, run_id, map_index)
    with session_scope(env.readers) as session:
        row = xcom_rows.get_xcom(session, ti_key, key)
        if row is None and ti_rows.get_task_instance(session, ti_key) is None:
            raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index)
    if row is None:
        raise XComNotFound(dag_id, run_id, task_id, map_index, key)
    value = deserialize(row.value)
    if masked:
        from nbflow.runtime.api_secrets import register_secrets
        from nbflow.utils.masking import masker
        register_secrets(env)
        value = masker.redact_value(value)
    return XComEntry(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index, key=key,
                     value=value, timestamp=row.timestamp)
