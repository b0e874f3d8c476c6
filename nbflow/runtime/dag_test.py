"""Test-run a DAG without a scheduler and say how each task ended: `dag.test()` and `%dag test`.

`dag.test()` (Airflow 2.5+) runs here, in the caller's process; `%dag test` runs it in a process of its
own (see source_runner.py) with each attempt forked from that process, so the kernel never runs a task.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbflow.runtime.inprocess import RunResult, TaskEvent, make_run_info, run_dag_in_process
from nbflow.runtime.run_info import DagRunInfo
from nbflow.runtime.logs import attempt_log_path
from nbflow.utils.masking import masker
from nbflow.utils.state import DagRunState, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

LOG_TAIL_LINES = 40


class TaskLines:
    """One line per finished task instance (`task  state  duration  try N`), then the failed one's log."""

    def __init__(self, dag: "DAG", out: TextIO, log_folder: Path, run_id: str) -> None:
        self.width = max((len(task_id) for task_id in dag.task_dict), default=10) + 4
        self.out, self.log_folder, self.run_id, self.dag_id = out, log_folder, run_id, dag.dag_id
        self.failed: list[TaskEvent] = []

    def __call__(self, event: TaskEvent) -> None:
        if event.kind != "finished":
            return
        label = f"{event.task_id}[{event.map_index}]" if event.map_index >= 0 else event.task_id
        duration = f"{event.duration:7.3f} s" if event.duration is not None else ""
        self.out.write(f"{label:<{self.width}} {event.state or '':<16} {duration:>10}  try {event.try_number}\n")
        self.out.flush()
        if event.state == TaskInstanceState.FAILED:
            self.failed.append(event)
            self.show_log(event)

    def show_log(self, event: TaskEvent) -> None:
        path = attempt_log_path(self.log_folder, self.dag_id, self.run_id, event.task_id, event.try_number,
                                event.map_index)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = [f"(no log at {path})"]
        shown = lines[-LOG_TAIL_LINES:]
        self.out.write(f"--- log of {event.task_id}, try {event.try_number} ({path}) ---\n")
        if len(lines) > len(shown):
            self.out.write(f"... {len(lines) - len(shown)} earlier line(s)\n")
        for line in shown:
            self.out.write(masker.redact(line) + "\n")
        self.out.write("---\n")
        self.out.flush()


def test_dag(dag: "DAG", *, logical_date: datetime | None = None, run_conf: dict[str, Any] | None = None,
             log_folder: Path | None = None, out: TextIO | None = None, isolate: bool = False,
             echo_logs: bool = False, max_xcom_size: int | None = None,
             on_run: Callable[[DagRunInfo], None] | None = None,
             on_event: Callable[[TaskEvent], None] | None = None) -> RunResult:
    """Run every task of one run of `dag` now, printing each task's state as it ends (and, with
    `echo_logs`, each task's log as it is written). `on_run` hears of the run before its first task,
    `on_event` of every task instance starting and ending (a live view follows the test with them)."""
    out = out or sys.stdout
    if log_folder is None:
        from nbflow.configuration import load_config
        log_folder = load_config().log_folder
    run = make_run_info(dag, logical_date, run_conf)
    out.write(f"testing DAG {dag.dag_id}, run {run.run_id}: {len(dag.task_dict)} task(s)\n")
    lines = TaskLines(dag, out, log_folder, run.run_id)
    if on_run is not None:
        on_run(run)

    def hear(event: TaskEvent) -> None:
        lines(event)
        if on_event is not None:
            on_event(event)

    result = run_dag_in_process(dag, run=run, log_folder=log_folder, on_event=hear, isolate=isolate,
                                echo=out if echo_logs else None, max_xcom_size=max_xcom_size)
    if result.state == DagRunState.SUCCESS:
        out.write(f"run {run.run_id}: success in {result.duration:.3f} s\n")
    else:
        why = f"task {result.failed_task} failed" if result.failed_task else (result.error or result.state)
        out.write(f"run {run.run_id}: {result.state}: {why}\n")
    out.flush()
    return result


__all__ = ["TaskLines", "test_dag"]
