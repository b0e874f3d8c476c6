"""`python -m nbflow.runtime.callback_process LOG_PATH`: run one DAG's (or task's) callbacks in a process of its own.

The scheduler starts this process for each callback it decided (callbacks.py), so a callback that
segfaults, calls `os._exit` or hangs ends or blocks this process, never the scheduler. The request
(a `CallbackRequest` as JSON) comes on stdin. The DAG is loaded from its `DagSource` as `dags test`'s
child loads it; what the callbacks print or log goes to LOG_PATH through the attempt logs' masking
tee. Exit code: 0 when every callback returned, RAISED_EXIT_CODE when one raised (its traceback is
in the log), 2 when the DAG or the callback could not even be found.
"""
from __future__ import annotations

import faulthandler
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.runtime.callbacks import RAISED_EXIT_CODE, CallbackRequest, as_functions
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


def callback_context(dag: "DAG", request: CallbackRequest) -> dict[str, Any]:
    """What a DAG callback receives (Airflow's keys a run has), plus the task's for a task callback."""
    from nbflow.exceptions import NbflowException

    run = request.run
    context: dict[str, Any] = {
        "dag": dag, "dag_run": run, "run_id": run.run_id, "reason": request.reason,
        "logical_date": run.logical_date, "ds": run.logical_date.strftime("%Y-%m-%d"),
        "data_interval_start": run.data_interval_start, "data_interval_end": run.data_interval_end,
        "params": dict(dag.params), "conf": run.conf,
    }
    if request.task_id is not None:
        context.update(task=dag.task_dict[request.task_id], map_index=request.map_index,
                       exception=NbflowException(request.reason))
    return context


def run_callbacks(request: CallbackRequest) -> int:
    """Load the DAG, run each function of the requested callback in order; the process's exit code."""
    from nbflow.exceptions import NbflowException
    from nbflow.runtime.source_runner import load

    try:
        dag = load(request.source, request.dag_id)
        owner = dag if request.task_id is None else dag.task_dict[request.task_id]
    except (NbflowException, KeyError) as err:
        print(f"[nbflow] {request.what}: cannot load it from {request.source}: {err}")
        return 2
    failed = False
    for function in as_functions(getattr(owner, request.attribute, None)):
        try:
            function(callback_context(dag, request))
        except Exception:  # noqa: BLE001 - the next function still runs, as in the scheduler before
            failed = True
            print(f"[nbflow] {request.what}: {getattr(function, '__name__', function)!s} raised:")
            traceback.print_exc()
    if request.task_id is not None and request.attribute in _ALERT_STATES:
        _send_alert(dag, owner, request)
    return RAISED_EXIT_CODE if failed else 0


#: The task callback a dead attempt's outcome runs, and the state its alert e-mail names.
_ALERT_STATES = {"on_retry_callback": TaskInstanceState.UP_FOR_RETRY,
                 "on_failure_callback": TaskInstanceState.FAILED}


def _send_alert(dag: "DAG", task: Any, request: CallbackRequest) -> None:
    """The task's alert e-mail (alerts.py), which its attempt could not send itself; failures are one line."""
    from nbflow.notifications.alerts import send_alert, wants_email

    state = _ALERT_STATES[request.attribute]
    if not wants_email(task, state):
        return
    from nbflow.configuration import load_config
    from nbflow.runtime.logs import attempt_log_path

    config = load_config()
    context = callback_context(dag, request)
    if request.try_number is not None:
        context["try_number"] = request.try_number
        context["log_path"] = str(attempt_log_path(config.log_folder, request.dag_id, request.run.run_id,
                                                   request.task_id, request.try_number, request.map_index))
    send_alert(task, context, state, sys.stdout, config)


def main(argv: list[str]) -> int:
    from nbflow.runtime.logs import capture_to_log
    from nbflow.configuration import load_config
    from nbflow.secrets.known import apply_sensitive_words, register_environment_secrets

    apply_sensitive_words(load_config())
    register_environment_secrets()
    faulthandler.enable()  # a fatal signal dumps the Python stack to the scheduler's pipe (then the log)
    request = CallbackRequest.from_json(sys.stdin.read())
    with capture_to_log(Path(argv[0])):
        code = run_callbacks(request)
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
