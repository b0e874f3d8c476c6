"""The executor contract: take workloads, report ended attempts, wake the scheduler when one ends."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbflow.runtime.workload import ExecutorEvent, Workload
from nbflow.utils.registry import Registry

if TYPE_CHECKING:
    from nbflow.configuration import Config

RunWorkload = Callable[[Workload], int]
"""Runs one claimed attempt in this process and returns its exit code (the scheduler's own runner)."""


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """What every executor is built with; each executor extends it with the keys of its own section."""

    parallelism: int


class BaseExecutor:
    """Subclasses implement `start`, `queue` and `end`; finished attempts go through `_report`.

    Each subclass names its settings dataclass and reads it, once, in `settings_from_config`;
    `nbflow.runtime.executors.factory.build_executor` is the only place that builds one.
    """

    name = "base"

    def __init__(self, settings: ExecutorSettings, *, run_workload: RunWorkload | None = None) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism  # `run_workload` is kept by executors that run attempts in process
        self._events: deque[ExecutorEvent] = deque()
        self._running: dict[tuple[Any, int], Workload] = {}
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    @classmethod
    def settings_from_config(cls, config: "Config") -> ExecutorSettings:
        """This executor's settings, read once from its config section(s) where it is built."""
        raise NotImplementedError(f"executor {cls.name!r} does not say how to read its settings")

    def start(self) -> None:
        """Prepare workers; called once before the first `queue`."""

    def queue(self, workload: Workload) -> None:
        raise NotImplementedError

    def end(self, *, wait: bool = True) -> None:
        """Stop; with `wait`, let running attempts finish first."""

    @property
    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    # How many attempts may be handed over at once; the local worker takes several times its
    # parallelism so that it always has the next attempt at hand (it never runs more than
    # `parallelism` at a time).
    queue_depth_factor = 1

    def open_slots(self) -> int:
        return max(self.parallelism * self.queue_depth_factor - self.running_count, 0)

    def _track(self, workload: Workload) -> None:
        with self._lock:
            self._running[(workload.key, workload.try_number)] = workload

    def _report(self, event: ExecutorEvent) -> None:
        with self._lock:
            self._running.pop((event.key, event.try_number), None)
            self._events.append(event)
            backlog = len(self._running) - self.parallelism
        # An attempt that recorded its own result, while the executor still holds a backlog of at
        # least `parallelism` attempts, needs nothing from the scheduler yet: its turn can wait until
        # the backlog runs low (or the next heartbeat), so that a wide run's hundreds of endings
        # cost a turn per `parallelism` of them, not one each.
        if event.exit_code != 0 or backlog < self.parallelism:
            self.wakeup.set()

    def drain_events(self) -> list[ExecutorEvent]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def is_running(self, key: Any) -> bool:
        with self._lock:
            return any(k == key for k, _ in self._running)


executors: Registry[type[BaseExecutor]] = Registry("executor", entry_points="nbflow.executors")
