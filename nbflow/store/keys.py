"""Values that name or describe task instances across layers: hashable, printable, picklable."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class TIKey:
    """Identifies one task instance: a task in one DAG run, with a map index for mapped tasks."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1

    def __str__(self) -> str:  # logs and errors read "etl.load[manual__2025-01-02]" or "...[3]"
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}[{self.run_id}]{suffix}"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What the store needs to create one task instance; built by the runtime from a task.

    `max_tries` is the task's `retries` (an attempt may be retried while try_number <= max_tries).
    """

    task_id: str
    map_index: int = -1
    max_tries: int = 0
    pool: str = "default_pool"
    pool_slots: int = 1
    priority_weight: int = 1
    operator: str | None = None
    queue: str = "default"
