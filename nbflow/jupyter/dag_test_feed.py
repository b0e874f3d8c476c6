"""A `%dag test` run in the DagWidget: such a run is in no database, so its view is built from the
events the test's process reports (see `source_runner`), and its logs are read from their files."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_view import RunSummary, RunView, TaskView, read_log_tail
from nbflow.utils.state import DagRunState, TaskInstanceState


@dataclass
class DagTestFeed:
    """Task views by (task_id, map_index), updated by each event; `view` is the widget's reader."""

    dag_id: str
    task_ids: list[str]
    log_folder: Path
    run: RunSummary | None = None
    tasks: dict[tuple[str, int], TaskView] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hear(self, event: dict[str, Any]) -> None:
        """One event of the test's process (it reports them as they happen)."""
        with self._lock:
            if event["kind"] == "run":
                self.run = RunSummary(event["run_id"], DagRunState.RUNNING,
                                      datetime.fromisoformat(event["logical_date"]), "test")
                self.tasks = {(task_id, -1): TaskView(task_id, -1, None, 0, None, None, None)
                              for task_id in self.task_ids}
                return
            key = (event["task_id"], event["map_index"])
            before = self.tasks.pop(key, None)
            if key[1] >= 0:
                self.tasks.pop((key[0], -1), None)  # a mapped task shows its instances, not its template
            started = before.start_date if before and event["kind"] != "started" else datetime.now(timezone.utc)
            self.tasks[key] = TaskView(key[0], key[1], event["state"], event["try_number"], started,
                                       event.get("duration"), None)

    def finish(self, succeeded: bool) -> None:
        with self._lock:
            if self.run is not None:
                self.run = replace(self.run, state=DagRunState.SUCCESS if succeeded else DagRunState.FAILED)

    def view(self, widget: Any) -> RunView | None:
        """What the widget shows now; the log tail of its selected task (else the first that failed)."""
        with self._lock:
            run, tasks = self.run, tuple(sorted(self.tasks.values(), key=self._order))
        if run is None:
            return None
        chosen = widget.selected_task or next((t.task_id for t in tasks if t.state == TaskInstanceState.FAILED), None)
        log, log_try = "", None
        current = [t for t in tasks if t.task_id == chosen]
        if current:
            log_try = max(current[-1].try_number, 1)
            log = read_log_tail(attempt_log_path(self.log_folder, self.dag_id, run.run_id, current[-1].task_id,
                                                 log_try, current[-1].map_index))
        return RunView(self.dag_id, None, (run,), run.run_id, tasks, chosen, log_try, log)

    def _order(self, task: TaskView) -> tuple[int, int]:
        position = self.task_ids.index(task.task_id) if task.task_id in self.task_ids else len(self.task_ids)
        return position, task.map_index


__all__ = ["DagTestFeed"]
