"""Run one queued task instance from the metadata database: claim it, run it, record how it ended.

`begin_attempt` and `finish_attempt` are what the local executor's worker runs around each forked
attempt (the sequential executor's worker too, with one slot); `execute_workload` does all three steps
in one process (`nbflow tasks run`).
"""
from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nbflow.exceptions import NbflowException
from nbflow.runtime.followups import queue_ready_downstream
from nbflow.runtime.readiness import skippable_states
from nbflow.runtime.retries import decide_after_failure
from nbflow.runtime import process_tree
from nbflow.runtime.attempt_process import StartedAttempt as StartedAttempt
from nbflow.runtime.attempt_process import run_started_attempt as run_started_attempt
from nbflow.runtime.run_info import AttemptOutcome, DagRunInfo
from nbflow.runtime.workload import Workload
from nbflow.runtime.xcom_db import DbXComStore
from nbflow.store import reschedules
from nbflow.store import runs as run_rows
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store import xcoms as xcom_rows
from nbflow.store.keys import TIKey
from nbflow.utils.state import LIVE_ATTEMPT_STATES, TI_ACTIVE_STATES, DagRunType
from nbflow.utils.state import TaskInstanceState as TI

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

EXIT_OK = 0
# Another process owns the instance (or it was cleared): nothing ran and nothing is left to do, so
# this is a success for the executor. Any non-zero code means the attempt's process died.
EXIT_NOT_CLAIMED = 0
# The attempt's DAG or task did not load in the worker (its file broke after its runs were queued). The
# worker claimed the instance, so the try counts, and wrote why in the attempt's log; the scheduler then
# fails or retries it by its tries like any attempt that died, instead of queuing it again (issue 14).
EXIT_DAG_NOT_LOADABLE = 4


def run_info_of(row: Any) -> DagRunInfo:
    return DagRunInfo(dag_id=row.dag_id, run_id=row.run_id, logical_date=row.logical_date or row.queued_at,
                      data_interval_start=row.data_interval_start or row.logical_date,
                      data_interval_end=row.data_interval_end or row.logical_date,
                      run_type=row.run_type, conf=dict(row.conf or {}), start_date=row.start_date)


_HOSTNAME = socket.gethostname()


def record_outcome(session: Session, dag: "DAG", key: TIKey, outcome: AttemptOutcome, *,
                   max_tries: int | None = None, logical_date: datetime | None = None,
                   now: datetime | None = None) -> str | None:
    """Write the attempt's end: success/skipped/failed/up_for_retry, and skips it asked for downstream.

    Whether a failure is retried, and when, is `retries.decide_after_failure`'s: `max_tries` is the
    instance's as claimed (None: the task's retries), `logical_date` seeds the backoff's jitter.

    The write lands only on this very attempt (state running, same try number). An attempt whose
    instance was cleared while it ran ("restarting") only hands the instance back to the
    scheduler (None); its result does not count. Returns the state written, or None.
    """
    state = outcome.state
    fields: dict[str, Any] = {}
    if state == TI.FAILED:
        decision = decide_after_failure(dag.task_dict[key.task_id], try_number=outcome.try_number,
                                        max_tries=max_tries, retryable=outcome.retryable,
                                        logical_date=logical_date, now=now or datetime.now(timezone.utc))
        state = decision.state
        if decision.next_retry_at is not None:
            fields["next_retry_at"] = decision.next_retry_at
    elif state == TI.UP_FOR_RESCHEDULE:
        fields["next_retry_at"] = _reschedule_date(outcome)
    if not ti_state.set_task_state(session, key, state, expected_state=TI.RUNNING,
                                   expected_try_number=outcome.try_number, **fields):
        ti_state.set_task_state(session, key, None, expected_state=TI.RESTARTING,
                                expected_try_number=outcome.try_number)
        return None
    if state == TI.SUCCESS and outcome.skip_task_ids:
        skip_tasks(session, key, outcome.skip_task_ids, ignore_trigger_rules=outcome.skip_ignores_trigger_rules)
    if state == TI.UP_FOR_RESCHEDULE:
        record_reschedule(session, key, outcome, fields["next_retry_at"])
    return state


def _reschedule_date(outcome: AttemptOutcome) -> datetime:
    return datetime.fromtimestamp(outcome.reschedule_at or 0.0, timezone.utc)


def record_reschedule(session: Session, key: TIKey, outcome: AttemptOutcome, reschedule_date: datetime) -> None:
    """A sensor's poke ended up_for_reschedule: remember when it poked (its timeout counts from the first
    poke of this try) and give the try back, so the next poke runs as the same try (Airflow's rule)."""
    reschedules.add_reschedule(session, key, try_number=outcome.try_number, reschedule_date=reschedule_date)
    reschedules.give_back_try(session, key, outcome.try_number)


def skip_tasks(session: Session, source: TIKey, task_ids: tuple[str, ...], *, ignore_trigger_rules: bool) -> None:
    rows = ti_rows.get_task_instances(session, source.dag_id, source.run_id, task_ids=list(task_ids))
    ti_state.set_task_states(session, [r.key for r in rows], TI.SKIPPED,
                             expected_state=skippable_states(ignore_trigger_rules=ignore_trigger_rules))


def begin_attempt(session: Session, workload: Workload, *, pid: int | None = None,
                  runs: dict[tuple[str, str], DagRunInfo] | None = None,
                  upstream: Collection[str] = ()) -> StartedAttempt | None:
    """Claim the instance (queued → running) for process `pid` and read its run; None when someone else has it.

    `runs` caches what a run's tasks see of it (conf, dates: fixed once the run exists) for a
    caller that starts many attempts, such as the local executor's worker. The return values of
    the `upstream` tasks are read in the same transaction and come with the started attempt.
    """
    key = workload.key
    claimed = ti_state.claim_attempt(session, key, hostname=_HOSTNAME, pid=os.getpid() if pid is None else pid,
                                     supervisor_pid=os.getpid())
    if claimed is None:
        return None
    try_number, max_tries = claimed
    if try_number > 1:  # a retry (or a cleared task) starts without the last attempt's XComs
        xcom_rows.delete_xcoms_for(session, key)
    run = runs.get((key.dag_id, key.run_id)) if runs is not None else None
    if run is None:
        run_row = run_rows.get_dag_run(session, key.dag_id, key.run_id)
        if run_row is None:
            raise NbflowException(f"{key}: the DAG run vanished while starting")
        run = run_info_of(run_row)
        if runs is not None:
            if len(runs) >= 256:
                runs.clear()
            runs[(key.dag_id, key.run_id)] = run
    values = xcom_rows.get_values_of_tasks(session, key.dag_id, key.run_id, upstream) if upstream else {}
    return StartedAttempt(try_number, run, values, max_tries)


def finish_attempt(session: Session, dag: "DAG", workload: Workload, outcome: AttemptOutcome, *,
                   xcoms: Iterable[tuple[TIKey, str, str]] = (), followups: bool = False,
                   executor: str = "local", in_flight: frozenset[tuple[str, str, str]] = frozenset(),
                   max_tries: int | None = None, logical_date: datetime | None = None) -> list[Workload]:
    """Record how the attempt ended, with the XComs it pushed, in the caller's transaction.

    With `followups`, downstream tasks it made ready are queued in the same transaction (the
    mini-scheduler); their workloads are returned for the caller to start. `in_flight` names
    (dag_id, run_id, task_id) the caller knows are still running or queued.
    """
    final = record_outcome(session, dag, workload.key, outcome, max_tries=max_tries, logical_date=logical_date)
    if final is None:
        return []  # cleared while it ran: neither its result nor its XComs count
    for ti_key, name, value_json in xcoms:
        xcom_rows.set_xcom(session, ti_key, name, value_json)
    if followups and final in (TI.SUCCESS, TI.SKIPPED, TI.FAILED):
        return queue_ready_downstream(session, dag, workload.key, job_id=workload.queued_by_job_id,
                                      executor=executor, in_flight=in_flight)
    return []


def execute_workload(workload: Workload, dag: "DAG", *, session_factory: Callable[[], Session], log_folder: Path,
                     max_xcom_size: int | None = None, heartbeat_sec: float | None = None,
                     read_session_factory: Callable[[], Session] | None = None,
                     followups: Callable[[list[Workload]], None] | None = None) -> int:
    """Claim, run and record one attempt in this process; the process exit code to report.

    What `nbflow tasks run` calls (the local and sequential executors' worker does the three steps
    itself, around a forked child). With `followups`, downstream tasks this attempt
    made ready are queued in the transaction that records its result and handed to `followups`.
    With `heartbeat_sec`, a thread heartbeats the instance while it runs.
    """
    key = workload.key
    with session_scope(session_factory) as session:
        started = begin_attempt(session, workload)
    if started is None:
        return EXIT_NOT_CLAIMED
    xcoms = DbXComStore(session_factory, read_session_factory)
    stop = threading.Event()
    if heartbeat_sec:
        threading.Thread(target=_heartbeat, args=(session_factory, key, stop, heartbeat_sec), daemon=True).start()
    try:
        # This process outlives the attempt (a scheduler, `tasks run`): what the task started ends with it.
        with process_tree.owning_what_starts():
            outcome = run_started_attempt(workload, dag, started, xcoms, log_folder=log_folder,
                                          max_xcom_size=max_xcom_size)
    finally:
        stop.set()
    with session_scope(session_factory) as session:
        ready = finish_attempt(session, dag, workload, outcome, xcoms=xcoms.take_pending(),
                               followups=followups is not None, max_tries=started.max_tries,
                               logical_date=started.run.logical_date)
    if ready and followups is not None:
        followups(ready)
    return EXIT_OK


def _heartbeat(session_factory: Callable[[], Session], key: TIKey, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            with session_scope(session_factory) as session:
                ti_state.heartbeat_task(session, key)
        except Exception:  # noqa: BLE001 - a missed heartbeat is retried next time
            continue


def fail_dead_attempt(session: Session, dag: "DAG | None", key: TIKey, try_number: int, reason: str,
                      *, job_id: int | None = None) -> str | None:
    """An attempt's process died without recording a result: fail it, or retry it if tries remain.

    So does an attempt the worker claimed but could not run because its DAG did not load
    (EXIT_DAG_NOT_LOADABLE): its try counts, as Airflow's "DAG not found" in a worker.

    With `job_id`, an instance still queued (its process died before claiming it) goes back to the
    scheduler only if that job queued it.
    """
    row = ti_rows.get_task_instance(session, key)
    if row is None or row.state not in (TI.RUNNING, TI.QUEUED, TI.RESTARTING) or (
            row.state in LIVE_ATTEMPT_STATES and row.try_number != try_number):
        return None
    if row.state == TI.RESTARTING:  # cleared while it ran: now that it has stopped, it runs again
        ti_state.set_task_state(session, key, None, expected_state=TI.RESTARTING, expected_try_number=try_number)
        return None
    if row.state == TI.QUEUED:  # never started: back to the scheduler
        if job_id is None or row.queued_by_job_id == job_id:
            ti_state.set_task_state(session, key, None, expected_state=TI.QUEUED)
        return None
    # The process died: nothing says retrying cannot help, so only the tries left decide.
    task = dag.task_dict.get(key.task_id) if dag is not None else None
    run = run_rows.get_dag_run(session, key.dag_id, key.run_id) \
        if task is not None and row.try_number <= row.max_tries else None
    decision = decide_after_failure(task, try_number=row.try_number, max_tries=row.max_tries,
                                    logical_date=run.logical_date if run else None, now=datetime.now(timezone.utc))
    fields = {"next_retry_at": decision.next_retry_at} if decision.next_retry_at is not None else {}
    ti_state.set_task_state(session, key, decision.state, expected_state=TI.RUNNING, expected_try_number=try_number,
                            **fields)
    return decision.state


def gone_with_its_supervisor(row: Any) -> bool:
    """An attempt of this machine whose process and supervisor (which may still hold its result) both died."""
    supervisor = row.external_executor_id
    return (row.hostname == _HOSTNAME and bool(row.pid) and bool(supervisor) and supervisor.isdigit()
            and not _process_exists(row.pid) and not _process_exists(int(supervisor)))


def attempt_process_here(row: Any) -> bool:
    """Whether the attempt's own process (a group leader made for it, never this process) runs on this machine."""
    pid = row.pid
    if row.hostname != _HOSTNAME or not pid or pid == os.getpid() or not _process_exists(pid):
        return False
    try:
        return os.getpgid(pid) == pid  # an attempt process leads its group; a reused pid most likely does not
    except OSError:
        return False


def _process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a dead attempt needs no heartbeat timeout)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def warm_up_statements(session_factory: Callable[[], Session]) -> None:
    """Walk one attempt's whole life on a throw-away run, then roll it all back.

    Compiling SQL is most of the cost of a statement's first use; done here, when the warm worker
    starts, its first attempts find each statement shape in SQLAlchemy's cache. Nothing is kept.
    """
    from datetime import datetime, timezone

    from nbflow.store.keys import TaskSpec

    ghost = TIKey("__warm_up__", "up", "__warm_up__", -1)
    down = TIKey("__warm_up__", "down", "__warm_up__", -1)
    now = datetime.now(timezone.utc)
    session = session_factory()
    try:
        run_rows.create_dag_run(session, dag_id=ghost.dag_id, run_id=ghost.run_id, run_type=DagRunType.MANUAL,
                                logical_date=now, data_interval=(now, now))
        ti_rows.create_task_instances(session, ghost.dag_id, ghost.run_id,
                                      [TaskSpec(task_id="up"), TaskSpec(task_id="down")])
        ti_state.set_task_state(session, ghost, TI.QUEUED, expected_state=None)
        ti_state.claim_task_instance(session, ghost, hostname=_HOSTNAME, pid=0)
        xcom_rows.delete_xcoms_for(session, ghost)
        run_rows.get_dag_run(session, ghost.dag_id, ghost.run_id)
        ti_rows.get_task_instance(session, ghost)
        xcom_rows.set_xcom(session, ghost, "return_value", "1")
        xcom_rows.get_xcom(session, ghost, "return_value")
        xcom_rows.get_xcoms(session, ghost.dag_id, ghost.run_id, ghost.task_id, "return_value")
        ti_state.heartbeat_task(session, ghost)
        for state in (TI.UP_FOR_RETRY, TI.FAILED, TI.SKIPPED, TI.SUCCESS):
            ti_state.set_task_state(session, ghost, state,
                                    expected_state=(TI.RUNNING, TI.UP_FOR_RETRY, TI.FAILED, TI.SKIPPED))
        ti_state.set_task_state(session, ghost, TI.SUCCESS, expected_state=TI.RUNNING)
        ti_rows.get_task_states(session, ghost.dag_id, ghost.run_id, task_ids=["up", "down"])
        ti_rows.count_task_instances(session, TI_ACTIVE_STATES, dag_id=ghost.dag_id)
        ti_state.set_task_states(session, [down], TI.QUEUED, expected_state=None, queued_by_job_id=None,
                                 executor="local")
        ti_state.set_task_states(session, [down], TI.SKIPPED, expected_state=None)
    finally:
        session.rollback()
        session.close()
