"""Task instance and DAG run states (Airflow's names), shared by store, runtime and interfaces.

String enums: a state read from the database as a plain string compares equal to its member.
"""
from __future__ import annotations

from enum import StrEnum


class TaskInstanceState(StrEnum):
    """States of a task instance; a new instance has state None (Airflow's "no status")."""

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


class DagRunState(StrEnum):
    """States of a DAG run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
FAILED_STATES = frozenset({"failed", "upstream_failed"})
