"""SequentialExecutor: one attempt at a time, each in a process of its own, never in the scheduler's.

Airflow's SequentialExecutor runs each attempt as a subprocess, one after the other. Here it is the
local executor's warm worker with one slot: the same spawned worker (so the scheduler may live in a
Jupyter kernel, which is never forked), the same forked attempt processes, process trees, heartbeats,
timeouts, masking and death notes, and a task that calls `os._exit` or segfaults ends its own process
only. What differs is the promise: never two attempts at once, whatever `[core] parallelism` says, and,
as before, `queue` returns once its attempt ended and the worker starts no downstream task itself, so
each scheduler turn runs at most one attempt and `Scheduler.run(num_runs=N)` stays predictable.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowConfigException
from nbflow.runtime.executors.base import RunWorkload, executors
from nbflow.runtime.executors.local import LocalExecutor, LocalExecutorSettings
from nbflow.runtime.workload import ExecutorEvent, Workload

if TYPE_CHECKING:
    from nbflow.configuration import Config


@dataclass(frozen=True, slots=True)
class SequentialExecutorSettings(LocalExecutorSettings):
    """Always one at a time: `[core] parallelism` does not apply; the worker's own keys do."""

    parallelism: int = 1
    dags_folder: Path = Path("dags")

    def __post_init__(self) -> None:
        if self.parallelism != 1:
            raise NbflowConfigException(f"the sequential executor runs one attempt at a time, not "
                                        f"{self.parallelism}; use executor 'local' for parallel attempts")


@executors.register("sequential")
class SequentialExecutor(LocalExecutor):
    """Runs queued attempts one at a time, each in a child of a spawned one-slot worker; parallelism is 1."""

    name = "sequential"
    queue_depth_factor = 1  # the next attempt is handed over once the current one ended
    followups = False
    settings: SequentialExecutorSettings

    @classmethod
    def settings_from_config(cls, config: "Config") -> SequentialExecutorSettings:
        return SequentialExecutorSettings(
            dags_folder=config.dags_folder,
            worker_start_timeout_sec=config.getfloat("local_executor", "worker_start_timeout_sec"),
        )

    def __init__(self, settings: SequentialExecutorSettings, *, run_workload: RunWorkload | None = None) -> None:
        super().__init__(settings, run_workload=run_workload)
        self._ended = threading.Condition()

    def queue(self, workload: Workload) -> None:
        """Hand the attempt to the worker and wait until it ended (or the worker died, which ends it too)."""
        super().queue(workload)
        with self._ended:
            self._ended.wait_for(lambda: not self._holds(workload))

    def _holds(self, workload: Workload) -> bool:
        with self._lock:
            return (workload.key, workload.try_number) in self._running

    def _report(self, event: ExecutorEvent) -> None:
        super()._report(event)
        with self._ended:
            self._ended.notify_all()
