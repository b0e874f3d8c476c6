"""SequentialExecutor: one attempt at a time, in this process (tests, debugging)."""
from __future__ import annotations

from nbflow.runtime.executors.base import BaseExecutor, executors
from nbflow.runtime.workload import ExecutorEvent, Workload


@executors.register("sequential")
class SequentialExecutor(BaseExecutor):
    """Runs each queued attempt at once, in the scheduler's process; parallelism is 1."""

    name = "sequential"

    def queue(self, workload: Workload) -> None:
        run = self.settings["run_workload"]  # the scheduler's callable: (Workload) -> exit code
        self._track(workload)
        try:
            code = run(workload)
            message = ""
        except Exception as err:  # noqa: BLE001 - reported as a dead attempt
            code, message = 1, f"{type(err).__name__}: {err}"
        self._report(ExecutorEvent(workload.key, workload.try_number, code, message))
