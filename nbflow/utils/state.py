"""Task instance and DAG run states (Airflow's names), shared by store, runtime and interfaces."""
from __future__ import annotations

from enum import Enum


class TaskInstanceState(str, Enum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    REMOVED = "removed"
    RESTARTING = "restarting"
    DEFERRED = "deferred"

    def __str__(self) -> str:
        return self.value


class DagRunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
FAILED_STATES = frozenset({"failed", "upstream_failed"})
