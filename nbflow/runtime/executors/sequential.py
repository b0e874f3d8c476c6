"""SequentialExecutor: one attempt at a time, in this process (tests, debugging)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowConfigException
from nbflow.runtime.executors.base import BaseExecutor, ExecutorSettings, RunWorkload, executors
from nbflow.runtime.workload import ExecutorEvent, Workload

if TYPE_CHECKING:
    from nbflow.configuration import Config


@dataclass(frozen=True, slots=True)
class SequentialExecutorSettings(ExecutorSettings):
    """Always one at a time: `[core] parallelism` does not apply to an executor that runs in its caller."""

    parallelism: int = 1

    def __post_init__(self) -> None:
        if self.parallelism != 1:
            raise NbflowConfigException(f"the sequential executor runs one attempt at a time, not "
                                        f"{self.parallelism}; use executor 'local' for parallel attempts")


@executors.register("sequential")
class SequentialExecutor(BaseExecutor):
    """Runs each queued attempt at once, in the scheduler's process; parallelism is 1."""

    name = "sequential"

    @classmethod
    def settings_from_config(cls, config: "Config") -> SequentialExecutorSettings:
        return SequentialExecutorSettings()

    def __init__(self, settings: SequentialExecutorSettings, *, run_workload: RunWorkload | None = None) -> None:
        if run_workload is None:
            raise NbflowConfigException("the sequential executor runs attempts in its caller's process and needs "
                                        "run_workload, the scheduler's runner of one attempt")
        super().__init__(settings, run_workload=run_workload)
        self._run = run_workload

    def queue(self, workload: Workload) -> None:
        self._track(workload)
        try:
            code = self._run(workload)
            message = ""
        except Exception as err:  # noqa: BLE001 - reported as a dead attempt
            code, message = 1, f"{type(err).__name__}: {err}"
        self._report(ExecutorEvent(workload.key, workload.try_number, code, message))
