"""The scheduler loop: create runs, pick ready task instances, hand them to the executor, record results.

All state lives in the metadata database, so a scheduler killed at any point resumes where it
stopped. The loop installs no signal handlers and keeps no process-wide state, so it can run in
a background thread (of a Jupyter kernel, say); `stop()` ends it cleanly from any thread.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nbflow.authoring.timetables import DataInterval
from nbflow.exceptions import NbflowException
from nbflow.notifications.alerts import wants_email
from nbflow.runtime import process_tree
from nbflow.runtime.attempt import (attempt_process_here, fail_dead_attempt, gone_with_its_supervisor,
                                    run_info_of)
from nbflow.runtime.callbacks import CallbackLimits, CallbackRequest, CallbackRunner, as_functions
from nbflow.runtime.dag_source import source_of
from nbflow.runtime.dagruns import create_run, record_dags, set_next_interval, task_specs, within_schedule
from nbflow.runtime.executors.base import BaseExecutor
from nbflow.runtime.expansion import expansion_of
from nbflow.runtime.expansion_process import count_mapped_instances
from nbflow.runtime.logs import note_death
from nbflow.runtime.priority import priority_weights
from nbflow.runtime.run_state import RunState
from nbflow.runtime.serialized_dag import SerializedDag
from nbflow.runtime.workload import Workload
from nbflow.runtime.xcom_db import DbXComStore
from nbflow.store import dags as dag_rows
from nbflow.store import jobs
from nbflow.store import mapping
from nbflow.store import pools
from nbflow.store import runs as run_rows
from nbflow.store import session_scope
from nbflow.store import task_instances as ti_rows
from nbflow.store import ti_state
from nbflow.store.keys import TIKey
from nbflow.utils.state import LIVE_ATTEMPT_STATES, QUEUEABLE_STATES, RUN_ACTIVE_STATES, SUCCESS_STATES, \
    TI_ACTIVE_STATES, TI_FINISHED_STATES, TI_STATES, TIMED_WAIT_STATES, DagRunState, DagRunType
from nbflow.utils.state import TaskInstanceState as TI

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.dagbag import DagBag
    from nbflow.runtime.serialized_dagbag import SerializedDagBag

log = logging.getLogger("nbflow.scheduler")
_UNFINISHED = tuple(sorted(TI_STATES - TI_FINISHED_STATES, key=lambda s: (s is not None, s or "")))


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Read once from config where the scheduler is built (STYLE §10)."""

    parallelism: int = 4
    heartbeat_sec: float = 1.0
    orphan_timeout_sec: float = 30.0
    paused_at_creation: bool = True
    parse_interval_sec: float = 2.0
    min_loop_interval_sec: float = 0.02
    callback_wait_sec: float = 60.0  # how long a stopping scheduler waits for callbacks still running
    callback_timeout: float = 60.0  # [scheduler] callback_timeout: a callback's process is killed after it
    log_folder: Path = Path("logs")  # where each run's callbacks.log goes


@dataclass(frozen=True, slots=True)
class LoopStats:
    seconds: float
    queued: int
    active_runs: int
    handing_over: float = 0.0  # of `seconds`, spent in `executor.queue` (the sequential one runs the attempt)


@dataclass
class _Plan:
    """What one turn decided from its snapshot, applied afterwards in one write transaction."""

    start_runs: list[Any] = field(default_factory=list)
    settled: dict[str, list[TIKey]] = field(default_factory=lambda: defaultdict(list))
    expand: list[tuple[Any, Any, Any]] = field(default_factory=list)
    finished: list[tuple[Any, Any, RunState]] = field(default_factory=list)
    candidates: list[tuple[int, TIKey, Any, int]] = field(default_factory=list)
    busy_per_run: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    timed_out: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.start_runs or self.settled or self.expand or self.finished or self.candidates
                    or self.timed_out)


class Scheduler:
    """Drives DAG runs to completion through an executor; see the module docstring."""

    def __init__(self, *, dagbag: "DagBag | SerializedDagBag", session_factory: Callable[[], Session], executor: BaseExecutor,
                 settings: SchedulerSettings, read_session_factory: Callable[[], Session] | None = None) -> None:
        self.dagbag = dagbag
        self.sessions = session_factory
        self.readers = read_session_factory or session_factory
        self.executor = executor
        self.settings = settings
        self.job_id: int | None = None
        self._stop = threading.Event()
        self._last_parse = 0.0
        self._last_orphan_check = 0.0
        self._last_periodic = 0.0
        self._unpaused: set[str] = set()
        self._reported_errors: dict[str, str] = {}  # file -> error text already logged
        self._missing_pools: set[tuple[str, str]] = set()  # (dag_id, pool) already warned about
        # Per active run: the DAG object, the instance states and the ready task ids of the last turn.
        self._memo: dict[tuple[str, str], tuple[Any, dict[tuple[str, int], str | None], set[str]]] = {}
        self.loop_stats: list[LoopStats] = []
        self.callbacks = CallbackRunner(CallbackLimits(settings.log_folder, settings.callback_timeout))
        self._decided_callbacks: list[CallbackRequest] = []  # handed to `callbacks` once their transaction committed
        self.on_loop: Callable[[LoopStats], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end after the current turn (safe from any thread or signal handler)."""
        self._stop.set()
        self.executor.wakeup.set()

    def request_parse(self) -> None:
        """Read the DAGs again on the next turn, and start that turn now (a kernel defined a DAG)."""
        self._last_parse = 0.0
        self.executor.wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, num_runs: int | None = None, until_idle: bool = False) -> None:
        """Loop until stopped, `num_runs` turns, or (with `until_idle`) no run is active."""
        self._sync_dags(force=True)  # before the executor's worker starts: it imports only files parsed good
        self.executor.start()
        with session_scope(self.sessions) as session:
            self.job_id = jobs.start_job(session, "scheduler", hostname=socket.gethostname(), pid=os.getpid()).id
        turns = 0
        try:
            self._adopt_or_reset_orphans(startup=True)
            stats = None
            while not self._stop.is_set():
                stats = self.run_once()
                turns += 1
                if num_runs is not None and turns >= num_runs:
                    break
                if until_idle and self._idle(stats):
                    self._last_periodic = 0.0  # one more look for runs that became due meanwhile
                    if self._idle(self.run_once()):
                        break
                self.executor.wakeup.wait(self.settings.heartbeat_sec)
                # Ending attempts queue their own downstream work (followups.py) and the executor
                # holds a backlog, so a burst of them needs one turn, not one each: let the burst
                # gather for a moment, and at least as long as the turn took, so that a big run's
                # turns never take more than about half a core from its attempts (an attempt the
                # executor ran while taking it is not the scheduler's work).
                if not self._stop.is_set() and stats is not None:
                    self._stop.wait(max(self.settings.min_loop_interval_sec, stats.seconds - stats.handing_over))
                self.executor.wakeup.clear()
        finally:
            self.executor.end(wait=True)
            self._process_events()
            self._hand_over_callbacks()
            if not self.callbacks.drain(timeout=self.settings.callback_wait_sec):
                log.warning("callbacks still running after %s s; stopping without them (killed)",
                            self.settings.callback_wait_sec)
                self.callbacks.abandon()
            with session_scope(self.sessions) as session:
                jobs.end_job(session, self.job_id)

    def _hand_over_callbacks(self) -> None:
        decided, self._decided_callbacks = self._decided_callbacks, []
        for callback in decided:
            self.callbacks.submit(callback)

    def _idle(self, stats: LoopStats) -> bool:
        return stats.active_runs == 0 and stats.queued == 0 and self.executor.running_count == 0

    def run_once(self) -> LoopStats:
        """One turn: parse if due, create runs, handle ended attempts, queue what is ready."""
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        self._sync_dags()
        self._process_events()
        if time.monotonic() - self._last_orphan_check > self.settings.orphan_timeout_sec / 2:
            self._adopt_or_reset_orphans(startup=False)
        periodic = time.monotonic() - self._last_periodic >= self.settings.heartbeat_sec
        if periodic:  # once per heartbeat, not on every ended attempt
            self._last_periodic = time.monotonic()
            with session_scope(self.sessions) as session:
                self._create_scheduled_runs(session, now)
                jobs.heartbeat_job(session, self.job_id)
                self._unpaused = {d.dag_id for d in dag_rows.list_dags(session, paused=False)}
        workloads, active = self._schedule(now)
        handing = time.perf_counter()
        for workload in workloads:
            self.executor.queue(workload)
        handing = time.perf_counter() - handing
        self._hand_over_callbacks()
        stats = LoopStats(time.perf_counter() - started, len(workloads), active, handing)
        self.loop_stats.append(stats)
        if self.on_loop is not None:
            self.on_loop(stats)
        return stats

    # -- DAG files ------------------------------------------------------------------------------
    def _sync_dags(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_parse < self.settings.parse_interval_sec:
            return
        self._last_parse = time.monotonic()
        changed = self.dagbag.refresh()
        if not changed and not force:
            return
        with session_scope(self.sessions) as session:
            record_dags(session, self.dagbag.dags.values(), paused_at_creation=self.settings.paused_at_creation)
            dag_rows.record_import_errors(session, self.dagbag.import_errors)
        self._last_periodic = 0.0  # read pause flags and due runs of the new DAGs on this turn
        self._report_import_errors()

    def _report_import_errors(self) -> None:
        """Say once when a DAG file breaks or is mended, instead of on every parse."""
        errors = self.dagbag.import_errors
        for path, error in sorted(errors.items()):
            if self._reported_errors.get(path) != error:
                kept = sorted(dag_id for dag_id, where in self.dagbag.kept.items() if where == path)
                log.warning("broken DAG file: %s%s", (error.splitlines() or [path])[0],
                            f"; {', '.join(kept)} go on as last loaded" if kept else "")
        for path in sorted(set(self._reported_errors) - set(errors)):
            log.info("DAG file %s imports again", path)
        self._reported_errors = dict(errors)

    def _create_scheduled_runs(self, session: Session, now: datetime) -> None:
        """Every due interval of every unpaused DAG gets its run, up to max_active_runs (catchup included)."""
        for row in dag_rows.dags_due(session, now=now):
            dag = self.dagbag.dags.get(row.dag_id)
            if dag is None or row.next_dagrun is None:
                continue
            active = run_rows.count_active_runs(session, dag.dag_id)
            # Without catchup a scheduler that was down runs only the latest missed interval; never
            # one that starts after end_date.
            interval = within_schedule(dag, DataInterval(row.next_dagrun_data_interval_start,
                                                         row.next_dagrun_data_interval_end), now=now)
            if interval is None:
                dag_rows.set_next_dagrun(session, dag.dag_id, next_dagrun=None, data_interval=None,
                                         create_after=None)
            while interval is not None and interval.end <= now and active < dag.max_active_runs:
                run_id = f"scheduled__{interval.start.isoformat()}"
                if run_rows.get_dag_run(session, dag.dag_id, run_id) is None:
                    create_run(session, dag, run_type=DagRunType.SCHEDULED, logical_date=interval.start,
                               interval=interval, run_id=run_id, triggered_by="scheduler")
                    active += 1
                interval = set_next_interval(session, dag, after=interval, now=now)

    # -- task instances -------------------------------------------------------------------------
    def _schedule(self, now: datetime) -> tuple[list[Workload], int]:
        """Decide from a read snapshot (no write lock held), then apply in one short write transaction.

        Every write is a compare-and-set, so a decision made on a slightly old snapshot can only lose
        a race (another scheduler got there first), never run something twice.
        """
        with session_scope(self.readers) as session:
            active_runs = run_rows.list_dag_runs(session, state=RUN_ACTIVE_STATES, limit=None)
            snapshots = {(run.dag_id, run.run_id): ti_rows.get_task_states(session, run.dag_id, run.run_id)
                         for run in active_runs if run.dag_id in self.dagbag.dags
                         and (run.dag_id in self._unpaused or run.run_type == DagRunType.BACKFILL)}
        plan = _Plan()
        self._memo = {key: value for key, value in self._memo.items() if key in snapshots}
        plan.timed_out = [(self.dagbag.dags[run.dag_id], run) for run in active_runs if (run.dag_id, run.run_id)
                          in snapshots and _timed_out(self.dagbag.dags[run.dag_id], run, now)]
        ending = {(run.dag_id, run.run_id) for _, run in plan.timed_out}
        running_per_dag: dict[str, int] = defaultdict(int)
        for run in active_runs:
            if run.state == DagRunState.RUNNING and (run.dag_id, run.run_id) not in ending:
                running_per_dag[run.dag_id] += 1
        for run_key, rows in snapshots.items():  # max_active_tasks counts per run (Airflow 3, PR #42953)
            for _task_id, _map_index, ti_state_now, _try, _retry_at in rows:
                if ti_state_now in TI_ACTIVE_STATES:
                    plan.busy_per_run[run_key] += 1
        for run in sorted(active_runs, key=lambda r: (r.logical_date or r.queued_at or now)):
            rows = snapshots.get((run.dag_id, run.run_id))
            if rows is None or (run.dag_id, run.run_id) in ending:
                continue
            dag = self.dagbag.dags[run.dag_id]
            if run.state == DagRunState.QUEUED:
                if running_per_dag[run.dag_id] >= dag.max_active_runs:
                    continue
                plan.start_runs.append(run)
                running_per_dag[run.dag_id] += 1
            self._plan_run(plan, dag, run, rows, now)
        if any(c[2].task_dict[c[1].task_id].depends_on_past for c in plan.candidates):
            with session_scope(self.readers) as session:
                plan.candidates = [c for c in plan.candidates if self._past_allows(session, c[1], c[2], active_runs)]
        if plan.empty:
            return [], len(active_runs)
        with session_scope(self.sessions) as session:
            for run in plan.start_runs:
                run_rows.set_dag_run_state(session, run.dag_id, run.run_id, DagRunState.RUNNING,
                                           expected_state=DagRunState.QUEUED)
            for new_state, keys in plan.settled.items():
                ti_state.set_task_states(session, keys, new_state, expected_state=None)
            for dag, run, task in plan.expand:
                self._expand(session, dag, run, task)
            for dag, run, state in plan.finished:
                self._finish_run(session, dag, run, state)
            for dag, run in plan.timed_out:
                self._time_out_run(session, dag, run, now)
            workloads = self._queue(session, plan.candidates, plan.busy_per_run)
        if plan.expand or plan.finished or plan.timed_out:
            self.executor.wakeup.set()  # schedule new mapped instances, or notice the end, on the next turn
        return workloads, len(active_runs)

    def _past_allows(self, session: Session, key: TIKey, dag: "DAG", runs: list[Any]) -> bool:
        """depends_on_past as Airflow's PrevDagrunDep: the task's instance in the previous run succeeded or was
        skipped; the DAG's first run never waits; a task newer than the previous run waits unless
        ignore_first_depends_on_past and it never ran before."""
        task = dag.task_dict[key.task_id]
        if not task.depends_on_past:
            return True
        run = next(r for r in runs if r.dag_id == key.dag_id and r.run_id == key.run_id)
        if run.logical_date is None:
            return True
        run_exists, ti_exists, previous = ti_rows.previous_task_state(session, key, before=run.logical_date)
        if not run_exists:  # the DAG's first run
            return True
        if not ti_exists:  # the task is newer than the previous run (Airflow's PrevDagrunDep)
            return task.ignore_first_depends_on_past and not ti_rows.task_ran_before(session, key,
                                                                                      before=run.logical_date)
        return previous in SUCCESS_STATES

    def _plan_run(self, plan: "_Plan", dag: "DAG", run: Any, rows: list[Any], now: datetime) -> None:
        tasks = dag.task_dict
        before = {(row[0], row[1]): row[2] for row in rows if row[0] in tasks}
        look, known_ready = self._tasks_to_look_at(dag, run, before)
        if look is not None and not look and not TIMED_WAIT_STATES.intersection(before.values()) \
                and not all(st in TI_FINISHED_STATES for st in before.values()):
            self._memo[(run.dag_id, run.run_id)] = (dag, before, set())  # nothing changed that matters
            return
        state = RunState.of_rows(dag, rows)
        ready = state.evaluate(now, only=look, known_ready=known_ready)
        self._memo[(run.dag_id, run.run_id)] = (dag, before, {ti.task_id for ti in ready})
        for k, ti in state.tis.items():
            if ti.state != before.get(k):
                plan.settled[ti.state].append(TIKey(run.dag_id, ti.task_id, run.run_id, ti.map_index))
        if state.finished:
            plan.finished.append((dag, run, state))
            return
        weights = priority_weights(dag)
        for ti in ready:
            if state.needs_expansion(ti):
                plan.expand.append((dag, run, dag.task_dict[ti.task_id]))
                continue
            plan.candidates.append((weights[ti.task_id], TIKey(run.dag_id, ti.task_id, run.run_id, ti.map_index),
                                    dag, ti.try_number))

    def _tasks_to_look_at(self, dag: "DAG", run: Any, states: dict[tuple[str, int], str | None]
                          ) -> tuple[set[str] | None, set[str]]:
        """(tasks whose readiness may have changed since the last turn, tasks still ready without a look).

        The first: changed instances (cleared, expanded), those downstream of them, and those found
        ready but not queued; None (look at everything) for a run not seen before or whose DAG was
        re-parsed. The second: tasks ready last turn none of whose upstream changed since — a wide
        run has hundreds of these while its tasks wait for slots, and deciding again costs.
        """
        memo = self._memo.get((run.dag_id, run.run_id))
        if memo is None or memo[0] is not dag:
            return None, set()
        _, previous, was_ready = memo
        changed = {key[0] for key, state in states.items() if previous.get(key, "<new>") != state}
        changed |= {key[0] for key in previous if key not in states}
        touched: set[str] = set()
        for task_id in changed:
            task = dag.task_dict.get(task_id)
            if task is not None:
                touched.add(task_id)
                touched |= task.downstream_task_ids
        return touched | was_ready, was_ready - touched

    def _expand(self, session: Session, dag: "DAG", run: Any, task: Any) -> None:
        info = run_info_of(run)
        try:
            if isinstance(dag, SerializedDag):  # no user object here: the DAG file is loaded in a child
                count = count_mapped_instances(source_of(dag), dag.dag_id, task.task_id, info, self.sessions,
                                               timeout=self.settings.callback_timeout)
            else:
                params = dag.params.validate(info.conf, where=f"DAG {dag.dag_id!r}")
                count = len(expansion_of(dag, task.task_id, info, params, DbXComStore(self.sessions)))
        except NbflowException as err:
            log.warning("%s.%s: cannot expand mapped task: %s", dag.dag_id, task.task_id, err)
            ti_state.set_task_state(session, TIKey(dag.dag_id, task.task_id, run.run_id, -1), TI.FAILED,
                                    expected_state=None)
            return
        spec = next(s for s in task_specs(dag) if s.task_id == task.task_id)
        mapping.expand_task_instances(session, dag.dag_id, run.run_id, spec, count)

    def _queue(self, session: Session, candidates: list[tuple[int, TIKey, "DAG", int]],
               busy_per_run: dict[tuple[str, str], int]) -> list[Workload]:
        if not candidates:
            return []
        slots = self.executor.open_slots()
        if slots <= 0:
            return []
        pools.lock_pools(session)
        in_use = pools.pool_slots_in_use(session)
        pool_sizes = {p.pool: p.slots for p in pools.list_pools(session)}
        per_run = defaultdict(int, busy_per_run)
        chosen: list[tuple[TIKey, "DAG", int]] = []
        for priority, key, dag, try_number in sorted(candidates, key=lambda c: -c[0]):
            if len(chosen) >= slots:
                break
            task = dag.task_dict[key.task_id]
            if per_run[(key.dag_id, key.run_id)] >= dag.max_active_tasks:
                continue
            if task.pool not in pool_sizes:  # as in Airflow, never scheduled until the pool exists
                self._warn_missing_pool(key, task.pool)
                continue
            size = pool_sizes[task.pool]
            if size >= 0 and in_use.get(task.pool, 0) + task.pool_slots > size:
                continue
            per_run[(key.dag_id, key.run_id)] += 1
            in_use[task.pool] = in_use.get(task.pool, 0) + task.pool_slots
            chosen.append((key, dag, try_number))
        won = set(ti_state.set_task_states(session, [k for k, _, _ in chosen], TI.QUEUED,
                                           expected_state=QUEUEABLE_STATES,
                                           queued_by_job_id=self.job_id, executor=self.executor.name))
        workloads = []
        for key, dag, try_number in chosen:
            if key not in won:
                continue
            task = dag.task_dict[key.task_id]
            timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
            workloads.append(Workload(key.dag_id, key.task_id, key.run_id, key.map_index, try_number + 1,
                                      source_of(dag), self.job_id, timeout))
        return workloads

    def _warn_missing_pool(self, key: TIKey, pool: str) -> None:
        if (key.dag_id, pool) in self._missing_pools:
            return
        self._missing_pools.add((key.dag_id, pool))
        log.warning("DAG %s: task %s uses pool %r, which does not exist; its instances are not scheduled "
                    "until the pool is created (or the task's pool is changed)", key.dag_id, key.task_id, pool)

    def _finish_run(self, session: Session, dag: "DAG", run: Any, state: RunState) -> None:
        result, failed_task = state.run_result()
        if not run_rows.set_dag_run_state(session, run.dag_id, run.run_id, result, expected_state=DagRunState.RUNNING,
                                          failed_task=failed_task):
            return
        took = f" in {(datetime.now(timezone.utc) - run.start_date).total_seconds():.2f} s" if run.start_date else ""
        log.info("DAG run %s %s: %s%s%s", run.dag_id, run.run_id, result, took,
                 f" (task {failed_task} failed; `nbflow tasks logs {run.dag_id} {run.run_id} {failed_task}`)"
                 if failed_task else "")
        self._dag_callback(dag, run, result, f"task {failed_task} failed" if failed_task else result)

    def _time_out_run(self, session: Session, dag: "DAG", run: Any, now: datetime) -> None:
        """dagrun_timeout passed: the run fails and its unfinished instances, running ones too, are skipped.

        As in Airflow's scheduler. An attempt still running goes on until it ends, but its result is
        not recorded (its instance is no longer running), and the failure callback's reason is Airflow's
        "timed_out".
        """
        if not run_rows.set_dag_run_state(session, run.dag_id, run.run_id, DagRunState.FAILED,
                                          expected_state=DagRunState.RUNNING):
            return
        unfinished = [TIKey(run.dag_id, task_id, run.run_id, map_index)
                      for task_id, map_index, state, _try, _retry_at in ti_rows.get_task_states(
                          session, run.dag_id, run.run_id) if state not in TI_FINISHED_STATES]
        ti_state.set_task_states(session, unfinished, TI.SKIPPED, expected_state=_UNFINISHED)
        log.warning("DAG run %s %s: failed, timed out after %s (dagrun_timeout %s); %d unfinished task "
                    "instance(s) skipped", run.dag_id, run.run_id, now - run.start_date, dag.dagrun_timeout,
                    len(unfinished))
        self._dag_callback(dag, run, DagRunState.FAILED, "timed_out")

    def _dag_callback(self, dag: "DAG", run: Any, result: str, reason: str) -> None:
        """Run after this turn's transactions commit, in a child process (see callbacks.py)."""
        attribute = "on_success_callback" if result == DagRunState.SUCCESS else "on_failure_callback"
        if as_functions(getattr(dag, attribute)):
            self._decided_callbacks.append(CallbackRequest(source_of(dag), dag.dag_id, run_info_of(run), attribute,
                                                           reason, f"DAG {dag.dag_id}: {result} callback"))

    # -- ended attempts and orphans ---------------------------------------------------------------
    def _process_events(self) -> None:
        for event in self.executor.drain_events():
            if event.exit_code == 0:  # the attempt recorded its own result (or had nothing to do)
                continue
            dag = self.dagbag.dags.get(event.key.dag_id)
            reason = event.message or f"attempt process exited with code {event.exit_code}"
            with session_scope(self.sessions) as session:
                outcome = fail_dead_attempt(session, dag, event.key, event.try_number, reason, job_id=self.job_id)
                if outcome:
                    log.warning("%s: %s; now %s", event.key, reason, outcome)
                    if not event.noted:
                        self._note_death(event.key, event.try_number, reason)
                    self._dead_attempt_callbacks(session, dag, event.key, outcome, reason, event.try_number)

    def _dead_attempt_callbacks(self, session: Session, dag: "DAG | None", key: TIKey, outcome: str,
                                reason: str, try_number: int | None = None) -> None:
        """The attempt could not run its own callbacks: on_retry/on_failure (and its alert e-mail) run in a child
        of ours instead."""
        task = dag.task_dict.get(key.task_id) if dag is not None else None
        if task is None:
            return
        attribute = "on_retry_callback" if outcome == TI.UP_FOR_RETRY else "on_failure_callback"
        if not as_functions(getattr(task, attribute)) and not wants_email(task, outcome):
            return  # the common case: no callback, so no need to read the run
        run = run_rows.get_dag_run(session, key.dag_id, key.run_id)
        if run is not None:
            self._decided_callbacks.append(CallbackRequest(source_of(dag), key.dag_id, run_info_of(run), attribute,
                                                           reason, f"{key}: {outcome} callback",
                                                           task_id=key.task_id, map_index=key.map_index,
                                                           try_number=try_number))

    def _adopt_or_reset_orphans(self, *, startup: bool) -> None:
        """Queued work of dead schedulers goes back to the queue; silent running attempts fail or retry."""
        self._last_orphan_check = time.monotonic()
        grace = timedelta(seconds=max(self.settings.heartbeat_sec * 5, 5.0))
        with session_scope(self.sessions) as session:
            alive = {j.id for j in jobs.alive_jobs(session, "scheduler", grace=grace)} | {self.job_id}
            for row in ti_rows.task_instances_in_state(session, TI.QUEUED):
                if row.queued_by_job_id not in alive:
                    ti_state.set_task_state(session, row.key, None, expected_state=TI.QUEUED)
            silent = ti_rows.find_orphaned_task_instances(
                session, older_than=timedelta(seconds=self.settings.orphan_timeout_sec))
            gone = [row for row in ti_rows.task_instances_in_state(session, LIVE_ATTEMPT_STATES)
                    if gone_with_its_supervisor(row)]
            seen: set[TIKey] = set()
            silent_keys = {r.key for r in silent}
            for row, reason in [*((r, "its process on this machine is gone") for r in gone),
                                *((r, "no heartbeat from the attempt's process") for r in silent)]:
                if row.key in seen or self.executor.is_running(row.key):
                    continue
                seen.add(row.key)
                dag = self.dagbag.dags.get(row.dag_id)
                if row.key in silent_keys:
                    reason = self._heartbeat_lost(row)
                outcome = fail_dead_attempt(session, dag, row.key, row.try_number, reason)
                if outcome:
                    log.warning("%s try %s: %s; now %s", row.key, row.try_number, reason, outcome)
                    self._note_death(row.key, row.try_number, reason)
                    self._dead_attempt_callbacks(session, dag, row.key, outcome, reason, row.try_number)

    def _note_death(self, key: TIKey, try_number: int, reason: str) -> None:
        note_death(self.settings.log_folder, key.dag_id, key.run_id, key.task_id, try_number, key.map_index,
                   reason)

    @staticmethod
    def _heartbeat_lost(row: Any) -> str:
        """A silent attempt still running on this machine is stopped with all it started: its retry must not
        run alongside it. The reason to record, saying whether it was killed."""
        if not attempt_process_here(row):
            return "heartbeat lost"
        killed = process_tree.kill_tree(row.pid)
        log.warning("%s try %s: heartbeat lost; killed its process group (%d process(es))", row.key,
                    row.try_number, len(killed))
        return "heartbeat lost (its process was killed)"


def _timed_out(dag: "DAG", run: Any, now: datetime) -> bool:
    """Whether the running run has been running longer than its DAG's dagrun_timeout."""
    return (run.state == DagRunState.RUNNING and dag.dagrun_timeout is not None and run.start_date is not None
            and run.start_date < now - dag.dagrun_timeout)
