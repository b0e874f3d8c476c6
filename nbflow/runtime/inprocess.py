"""Run a whole DAG run in this process, task after task: the engine of `nbflow dags test`."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.authoring.timetables import DataInterval
from nbflow.exceptions import NbflowException, ParamValidationError
from nbflow.runtime.expansion import expansion_of
from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_info import AttemptOutcome, DagRunInfo
from nbflow.runtime.run_state import RunState, TIState
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.task_services import InProcessTaskServices
from nbflow.runtime.xcom import MemoryXComStore, XComStore
from nbflow.utils.state import DagRunState, DagRunType, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A task instance started or ended; what `dags test` prints as it goes."""

    kind: str  # started | finished
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    duration: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    run: DagRunInfo
    state: str
    failed_task: str | None
    tasks: list[dict[str, Any]]
    duration: float
    error: str | None = None


def manual_interval(dag: "DAG", logical_date: datetime) -> DataInterval:
    """The data interval a manual run at `logical_date` covers: Airflow's
    `timetable.infer_manual_data_interval(run_after=logical_date)` (cron: the last complete interval
    ending at or before it; timedelta: the delta ending at it; None and @once: zero length at it)."""
    return dag.timetable.infer_manual_data_interval(logical_date)


def make_run_info(dag: "DAG", logical_date: datetime | None, conf: dict[str, Any] | None,
                  run_id: str | None = None, run_type: str = DagRunType.MANUAL) -> DagRunInfo:
    logical = logical_date or datetime.now(timezone.utc).replace(microsecond=0)
    interval = manual_interval(dag, logical)
    return DagRunInfo(dag_id=dag.dag_id, run_id=run_id or f"{run_type}__{logical.isoformat()}",
                      logical_date=logical, data_interval_start=interval.start, data_interval_end=interval.end,
                      run_type=run_type, conf=dict(conf or {}), start_date=datetime.now(timezone.utc))


def run_dag_in_process(dag: "DAG", *, run: DagRunInfo, log_folder: Path, task_ids: set[str] | None = None,
                       xcoms: XComStore | None = None, echo: TextIO | None = None,
                       on_event: Callable[[TaskEvent], None] | None = None,
                       max_xcom_size: int | None = None, sleep: Callable[[float], None] = time.sleep,
                       isolate: bool = False) -> RunResult:
    """Run every task (or `task_ids`) in dependency order until the run is over; with `isolate`, each
    attempt in a forked child of this process (see isolated.py)."""
    started = time.monotonic()
    xcoms = xcoms or MemoryXComStore()
    emit = on_event or (lambda event: None)
    try:
        params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
    except ParamValidationError as err:
        return RunResult(run, DagRunState.FAILED, None, [], time.monotonic() - started, error=str(err))
    state = RunState.fresh(dag, task_ids)
    services = InProcessTaskServices(log_folder=log_folder)
    while not state.finished:
        now = datetime.now(timezone.utc)
        ready = state.evaluate(now)
        if not ready:
            wake = state.next_retry_time()
            if wake is None:  # nothing can ever run again: remaining tasks are unreachable
                for ti in state.tis.values():
                    if ti.state is None:
                        ti.state = TaskInstanceState.UPSTREAM_FAILED
                break
            sleep(max((wake - now).total_seconds(), 0.0))
            continue
        for ti in ready:
            if state.needs_expansion(ti):
                _expand(dag, state, ti, run, params, xcoms)
                continue
            outcome = _run_one(dag, ti, run=run, params=params, log_folder=log_folder, xcoms=xcoms, echo=echo,
                               emit=emit, max_xcom_size=max_xcom_size, isolate=isolate, services=services)
            state.apply(ti, outcome, logical_date=run.logical_date, now=datetime.now(timezone.utc))
            emit(TaskEvent("finished", ti.task_id, ti.map_index, ti.state, outcome.try_number, outcome.duration,
                           outcome.error))
    run_state, failed_task = state.run_result()
    _dag_callback(dag, run_state, run, params, xcoms, failed_task)
    return RunResult(run, run_state, failed_task, state.summary_rows(), time.monotonic() - started)


def _run_one(dag: "DAG", ti: TIState, *, run: DagRunInfo, params: dict[str, Any], log_folder: Path,
             xcoms: XComStore, echo: TextIO | None, emit: Callable[[TaskEvent], None],
             max_xcom_size: int | None, isolate: bool = False,
             services: InProcessTaskServices | None = None) -> AttemptOutcome:
    task = dag.task_dict[ti.task_id]
    try_number = ti.try_number + 1
    ti.state = TaskInstanceState.RUNNING
    emit(TaskEvent("started", ti.task_id, ti.map_index, TaskInstanceState.RUNNING, try_number))
    if task.is_mapped:
        try:
            task = task.unmap(expansion_of(dag, ti.task_id, run, params, xcoms)[ti.map_index])
        except Exception as err:  # noqa: BLE001 - arguments one instance cannot take fail it, not the run
            error = f"{type(err).__name__}: {err}"
            path = attempt_log_path(log_folder, run.dag_id, run.run_id, ti.task_id, try_number, ti.map_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"[nbflow] map index {ti.map_index} could not be built from its arguments: {error}\n",
                            encoding="utf-8")
            return AttemptOutcome(state=TaskInstanceState.FAILED, try_number=try_number, duration=0.0, error=error,
                                  retryable=False, log_path=str(path))
    if services is not None:  # a sensor in reschedule mode reads its first poke from here
        services.poke_started(run.dag_id, ti.task_id, run.run_id, ti.map_index, try_number, datetime.now(timezone.utc))
    request = AttemptRequest(task=task, run=run, map_index=ti.map_index, try_number=try_number, params=params,
                             log_folder=log_folder, max_xcom_size=max_xcom_size, services=services)
    if isolate:
        from nbflow.runtime.isolated import run_attempt_in_child
        return run_attempt_in_child(request, xcoms, echo=echo)
    return run_attempt(request, xcoms, echo=echo)


def _expand(dag: "DAG", state: RunState, ti: TIState, run: DagRunInfo, params: dict[str, Any],
            xcoms: XComStore) -> None:
    """Turn a mapped task into one instance per element once its upstream XComs exist."""
    try:
        count = len(expansion_of(dag, ti.task_id, run, params, xcoms))
    except NbflowException as err:
        ti.state, ti.error = TaskInstanceState.FAILED, str(err)
        return
    state.expand(ti.task_id, count)


def _dag_callback(dag: "DAG", run_state: str, run: DagRunInfo, params: dict[str, Any], xcoms: XComStore,
                  failed_task: str | None) -> None:
    callback = dag.on_success_callback if run_state == DagRunState.SUCCESS else dag.on_failure_callback
    if not callback:
        return
    context = {"dag": dag, "dag_run": run, "run_id": run.run_id, "params": params,
               "reason": f"task {failed_task} failed" if failed_task else run_state}
    from nbflow.utils.masking import masked_stdio

    with masked_stdio():  # what the callback prints reaches the terminal masked, as task output does
        for fn in callback if isinstance(callback, (list, tuple)) else [callback]:
            try:
                fn(context)
            except Exception:  # noqa: BLE001 - a callback never changes the run's state
                import traceback
                traceback.print_exc()
