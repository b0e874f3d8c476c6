"""What runs inside an attempt process: take the start over the socket, run the task, send the outcome.

Nothing here touches the metadata database, and nothing imports SQLAlchemy: the fork server that
forks attempt processes imports only this side of nbflow, so each fork copies half the page
tables, and each attempt process tears down half as much when it ends.
"""
from __future__ import annotations

import select
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.runtime.attempt_channel import AttemptChannel, ChannelXComStore, outcome_message, read_start
from nbflow.runtime.dag_source import load_dag
from nbflow.runtime.expansion import expansion_of
from nbflow.runtime.inprocess import make_run_info
from nbflow.runtime.run_info import AttemptOutcome, DagRunInfo
from nbflow.runtime.task_runner import AttemptRequest, run_attempt
from nbflow.runtime.workload import Workload
from nbflow.runtime.xcom import MemoryXComStore, XComStore
from nbflow.store.keys import TIKey
from nbflow.utils.masking import masker
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG


def preload() -> None:
    """Import and build once what every attempt needs, so processes forked afterwards start with it."""
    import jinja2.nativetypes  # noqa: F401
    import jinja2.sandbox  # noqa: F401

    import nbflow.operators.bash  # noqa: F401 - registers @task.bash
    import nbflow.operators.cell  # noqa: F401 - `%%task` cells
    import nbflow.operators.python  # noqa: F401 - registers @task and its Python kinds
    from nbflow.authoring.templating import make_template_env
    make_template_env(None).from_string("{{ 1 }}").render()
    import nbflow.runtime.notebook_dags  # noqa: F401 - builds kernel cells that workloads carry
    from nbflow.configuration import load_config
    from nbflow.secrets.known import apply_sensitive_words, register_environment_secrets
    apply_sensitive_words(load_config())
    register_environment_secrets()  # every forked attempt starts knowing them


@dataclass(frozen=True, slots=True)
class StartedAttempt:
    """A claimed attempt: its try number and what its task sees of the run."""

    try_number: int
    run: DagRunInfo
    upstream_values: dict[str, str] = field(default_factory=dict)  # {task_id: return value JSON}, read at claim
    max_tries: int | None = None  # the instance's (a cleared task has its retries on top of its past tries)


def run_started_attempt(workload: Workload, dag: "DAG", started: StartedAttempt, xcoms: XComStore, *,
                        log_folder: Path, max_xcom_size: int | None = None) -> AttemptOutcome:
    """Run the task of a claimed attempt in this process; never raises for task errors."""
    key, run = workload.key, started.run
    try:
        task = dag.task_dict[key.task_id]
        params = dag.params.validate(run.conf, where=f"DAG {dag.dag_id!r}")
        if task.is_mapped:
            task = task.unmap(expansion_of(dag, key.task_id, run, params, xcoms)[key.map_index])
        request = AttemptRequest(task=task, run=run, map_index=key.map_index, try_number=started.try_number,
                                 params=params, log_folder=log_folder, max_xcom_size=max_xcom_size,
                                 max_tries=started.max_tries)
        return run_attempt(request, xcoms)
    except Exception as err:  # noqa: BLE001 - a failure to even start the attempt fails it
        return could_not_start(workload, started.try_number, f"{type(err).__name__}: {err}", log_folder)


def could_not_start(workload: Workload, try_number: int, error: str, log_folder: Path, *,
                    retryable: bool = False) -> AttemptOutcome:
    """The failed outcome of an attempt whose task never ran, with the reason in its log file.

    `retryable` when another try could go differently (a DAG file that may be fixed meanwhile)."""
    path = note_not_started(workload, try_number, error, log_folder)
    return AttemptOutcome(state=TaskInstanceState.FAILED, try_number=try_number, duration=0.0,
                          error=masker.redact(error),
                          retryable=retryable, log_path=str(path))


def note_not_started(workload: Workload, try_number: int, error: str, log_folder: Path) -> Path:
    """Write the one line that says why attempt `try_number` never ran its task; the log's path. Never raises."""
    from nbflow.runtime.logs import attempt_log_path

    key = workload.key
    path = attempt_log_path(log_folder, key.dag_id, key.run_id, key.task_id, try_number, key.map_index)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"[nbflow] {key} try {try_number}: could not start the attempt: {masker.redact(error)}\n")
    except OSError:
        pass  # the outcome (or the scheduler's log) still carries the error
    return path


@dataclass
class AttemptHost:
    """What an attempt process finds in the process it was forked from."""

    dags: dict[str, "DAG"]
    log_folder: Path
    max_xcom_size: int | None
    rehearsal: "Rehearsal | None" = None


def attempt_main(sock: socket.socket, host: AttemptHost, *, before_run: Any = None) -> int:
    """Wait for the attempt, run its task, send the outcome back; the process's exit code.

    `before_run(workload)` runs once the attempt is known (the worker hands a notebook kernel over).
    """
    channel = AttemptChannel(sock)
    if host.rehearsal is not None and not select.select([sock], [], [], 0)[0]:
        host.rehearsal.run()  # nothing to run yet: do the first-touch work off the attempt's clock
    message = channel.receive()
    if message is None:
        return 0  # discarded before use
    workload, try_number, run, upstream_values, max_tries = read_start(message)
    if before_run is not None:
        before_run(workload)
    try:
        dag = load_dag(workload.source, workload.dag_id, host.dags)
    except Exception as err:  # noqa: BLE001 - kernel cells that do not build fail this attempt only
        channel.send(outcome_message(could_not_start(workload, try_number, str(err), host.log_folder), []))
        return 0
    if dag is None:  # its file broke, and this process was forked from a parse made after that
        error = (f"DAG {workload.dag_id!r} did not load from {workload.fileloc} in this process; "
                 f"`nbflow dags list-import-errors` says why")
        channel.send(outcome_message(could_not_start(workload, try_number, error, host.log_folder,
                                                     retryable=True), []))  # its retries decide (issue 14)
        return 0
    xcoms = ChannelXComStore(channel, known={(TIKey(workload.dag_id, task_id, workload.run_id, -1), "return_value"): value
                                             for task_id, value in upstream_values.items()})
    outcome = run_started_attempt(workload, dag, StartedAttempt(try_number, run, max_tries=max_tries), xcoms,
                                  log_folder=host.log_folder, max_xcom_size=host.max_xcom_size)
    channel.send(outcome_message(outcome, xcoms.take_pending()))
    return 0


class Rehearsal:
    """A no-op attempt for a waiting attempt process to run.

    After fork every page written for the first time is copied (a page fault of several
    microseconds here); an attempt process writes some four hundred of them. A process that
    rehearses pays for most of them before its attempt arrives instead of during it.
    """

    def __init__(self, folder: Path) -> None:
        """`folder` takes the rehearsals' logs: one fixed place, overwritten, so nothing piles up."""
        from nbflow.authoring.dag import DAG
        from nbflow.operators.python import PythonOperator

        with DAG("__nbflow_rehearsal__", schedule=None) as dag:
            PythonOperator(task_id="noop", python_callable=lambda: None)
        self.dag = dag
        self.workload = Workload(dag.dag_id, "noop", "rehearsal", -1, 1, "")
        self.started = StartedAttempt(1, make_run_info(dag, None, None))
        self.folder = folder

    def run(self) -> None:
        try:
            outcome = run_started_attempt(self.workload, self.dag, self.started, MemoryXComStore(),
                                          log_folder=self.folder)
            outcome_message(outcome, [(self.workload.key, "return_value", "1")])
        except Exception:  # noqa: BLE001 - only a speed-up
            pass
