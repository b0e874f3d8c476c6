"""One attempt of one task instance: render, execute under a timeout, push XComs, run callbacks."""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.authoring.context import running_task
from nbflow.exceptions import NbflowRescheduleException, NbflowSkipException, NbflowTaskTimeout, XComError
from nbflow.runtime.context import build_context
from nbflow.runtime.logs import DEATH_MARK, attempt_log_path, capture_to_log
from nbflow.secrets.known import register_environment_secrets
from nbflow.utils.masking import masker
from nbflow.runtime.retries import is_retryable, tries_allowed, will_retry
from nbflow.runtime.run_info import AttemptOutcome, DagRunInfo
from nbflow.runtime.task_instance import XCOM_RETURN_KEY, RuntimeTaskInstance
from nbflow.runtime.xcom import XComStore
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator


@dataclass(frozen=True, slots=True)
class AttemptRequest:
    task: "BaseOperator"
    run: DagRunInfo
    map_index: int
    try_number: int
    params: dict[str, Any]
    log_folder: Path
    max_xcom_size: int | None = None
    max_tries: int | None = None  # the instance's, when it differs from the task's retries (a cleared task)
    services: Any = None  # what `ti.nbflow_services` is (operators/services.py); None: the metadata database's

    @property
    def tries_allowed(self) -> int:
        return tries_allowed(self.task, self.max_tries)


_NO_TIMEOUT = contextlib.nullcontext()


def _timeout(seconds: float | None, task_id: str) -> contextlib.AbstractContextManager[None]:
    """SIGALRM-based timeout; only possible in the main thread (elsewhere the executor enforces it)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        return _NO_TIMEOUT  # most tasks have none: no generator to build and unwind
    return _alarm(seconds, task_id)


@contextlib.contextmanager
def _alarm(seconds: float, task_id: str) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise NbflowTaskTimeout(f"task {task_id!r} timed out after {seconds:g} s (execution_timeout)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_callbacks(callbacks: Any, context: dict[str, Any], log: Any) -> None:
    if not callbacks:
        return
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        try:
            callback(context)
        except Exception:  # noqa: BLE001 - a callback's failure never changes the task's state
            log.write(f"callback {getattr(callback, '__name__', callback)!r} failed:\n{traceback.format_exc()}")


def _on_kill(task: "BaseOperator", log: Any) -> None:
    try:
        task.on_kill()
    except Exception:  # noqa: BLE001 - the attempt has failed already; say why cleanup did not work
        log.write(f"[nbflow] on_kill failed:\n{traceback.format_exc()}")


def task_params(task: "BaseOperator", run_params: dict[str, Any], conf: dict[str, Any]) -> dict[str, Any]:
    """The run's params plus the task's own (`params=` on the operator or in default_args): the task's
    win over the DAG's, the run's conf wins over both, as in Airflow; each checked against its schema."""
    if not task.params:
        return run_params
    own = task.params.validate({k: v for k, v in conf.items() if k in task.params}, where=f"task {task.task_id!r}")
    return {**run_params, **own}


def run_attempt(request: AttemptRequest, xcoms: XComStore, *, echo: TextIO | None = None) -> AttemptOutcome:
    """Run one attempt in this process and say how it ended; never raises for task errors."""
    task = request.task
    ti = RuntimeTaskInstance(task=task, run=request.run, map_index=request.map_index,
                             try_number=request.try_number, max_tries=request.tries_allowed,
                             xcoms=xcoms, max_xcom_size=request.max_xcom_size)
    if request.services is not None:
        ti.nbflow_services = request.services
    path = attempt_log_path(request.log_folder, request.run.dag_id, request.run.run_id, task.task_id,
                            request.try_number, request.map_index)
    started = time.monotonic()
    register_environment_secrets()  # `echo $NBFLOW_VAR_API_KEY` never asks the chain; mask it all the same
    with capture_to_log(path, echo=echo) as log:
        log.write(f"[nbflow] {ti.key} try {request.try_number} of {task.retries + 1} "
                  f"({task.task_type})\n")
        context = build_context(task=task, run=request.run, ti=ti, params=request.params)
        outcome_state, error, retryable = _run_task(request, ti, context, xcoms, log)
        duration = time.monotonic() - started
        ti.state = _end_state(outcome_state, retryable, request.try_number, request.tries_allowed)
        ti.log_path = str(path)
        _call_callbacks(_end_callbacks(task, ti.state), context, log)
        if task.email and outcome_state == TaskInstanceState.FAILED:
            from nbflow.notifications.alerts import send_alert
            send_alert(task, context, ti.state, log)
        log.write(f"[nbflow] {outcome_state} after {duration:.3f} s\n")
        if isinstance(context.get("exception"), NbflowTaskTimeout):
            timeout = ti.task.execution_timeout.total_seconds() if ti.task.execution_timeout else 0
            log.write(f"{DEATH_MARK}execution timeout after {timeout:g} s\n")
    return AttemptOutcome(state=outcome_state, try_number=request.try_number, duration=duration,
                          error=masker.redact(error) if error else error,
                          retryable=retryable, skip_task_ids=tuple(ti.skip_requests),
                          skip_ignores_trigger_rules=ti.skip_ignores_trigger_rules, log_path=str(path),
                          reschedule_at=ti.next_poke_at.timestamp() if ti.next_poke_at else None)


def _run_task(request: AttemptRequest, ti: RuntimeTaskInstance, context: dict[str, Any], xcoms: XComStore,
              log: TextIO) -> tuple[str, str | None, bool]:
    """Render, execute and push the result of a copy of the task: (state, error, retryable)."""
    task = request.task
    work = task
    try:
        xcoms.clear(ti.key)
        context["params"] = task_params(task, request.params, request.run.conf)
        work = task.prepare_for_execution()
        context["task"] = work
        ti.task = work
        work.render_template_fields(context)
        _call_callbacks(work.on_execute_callback, context, log)
        with _timeout(work.execution_timeout.total_seconds() if work.execution_timeout else None,
                      task.task_id), running_task(context):
            work.pre_execute(context)
            result = work.execute(context)
            work.post_execute(context, result)
        if work.do_xcom_push and result is not None:
            _push_result(ti, work, result)
    except NbflowSkipException as err:
        log.write(f"[nbflow] task skipped: {err}\n")
        return TaskInstanceState.SKIPPED, None, True
    except NbflowRescheduleException as err:  # a sensor in reschedule mode: poke again later, slot freed
        ti.next_poke_at = err.reschedule_date
        log.write(f"[nbflow] {err}\n")
        return TaskInstanceState.UP_FOR_RESCHEDULE, None, True
    except Exception as err:  # noqa: BLE001 - any task error ends the attempt, never the runner
        error = f"{type(err).__name__}: {err}"
        if isinstance(err, NbflowTaskTimeout):  # raised inside execute: let the task stop what it started
            _on_kill(work, log)
        context["exception"] = err
        log.write(traceback.format_exc())
        log.write(f"[nbflow] task failed: {error}\n")
        return TaskInstanceState.FAILED, error, is_retryable(err)
    return TaskInstanceState.SUCCESS, None, True


def _end_state(state: str, retryable: bool, try_number: int, max_tries: int) -> str:
    """How the attempt ends for callbacks and alerts: success, skipped, up_for_retry or failed.

    Retry or failure by the rule the recorder of this outcome applies (retries.py), so the callback
    that runs always matches the state the instance ends in.
    """
    if state == TaskInstanceState.FAILED and will_retry(try_number=try_number, max_tries=max_tries,
                                                       retryable=retryable):
        return TaskInstanceState.UP_FOR_RETRY
    return state


def _end_callbacks(task: "BaseOperator", end_state: str) -> Any:
    """The callbacks for how the attempt ended (`_end_state`)."""
    if end_state == TaskInstanceState.UP_FOR_RESCHEDULE:
        return None  # a sensor waiting for its next poke has not ended
    return {TaskInstanceState.SUCCESS: task.on_success_callback, TaskInstanceState.SKIPPED: task.on_skipped_callback,
            TaskInstanceState.UP_FOR_RETRY: task.on_retry_callback}.get(end_state, task.on_failure_callback)


def _push_result(ti: RuntimeTaskInstance, task: "BaseOperator", result: Any) -> None:
    if task.multiple_outputs:
        if not isinstance(result, dict):
            raise XComError(f"task {task.task_id!r} has multiple_outputs=True but returned "
                            f"{type(result).__name__}, not a dict")
        for key, value in result.items():
            if not isinstance(key, str):
                raise XComError(f"task {task.task_id!r}: multiple_outputs keys must be strings, got {key!r}")
            ti.xcom_push(key, value)
    ti.xcom_push(XCOM_RETURN_KEY, result)
