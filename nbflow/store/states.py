"""The states and run types the store records, as string enums (plain strings compare equal)."""
from __future__ import annotations

from enum import StrEnum

from nbflow.utils.state import DagRunState as DagRunState
from nbflow.utils.state import TaskInstanceState as TaskInstanceState


class DagRunType(StrEnum):
    """How a DAG run came to exist; the prefix of generated run ids (`manual__2025-01-02T...`)."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"


TI_STATES: frozenset[str | None] = frozenset({None, *TaskInstanceState})
RUN_STATES: frozenset[str] = frozenset(DagRunState)
RUN_TYPES: frozenset[str] = frozenset(DagRunType)

#: States that end an attempt: reaching one copies the attempt into task_instance_history.
ATTEMPT_END_STATES: frozenset[str] = frozenset({"success", "failed", "skipped", "up_for_retry",
                                                "up_for_reschedule"})
#: States in which a task instance holds pool slots.
SLOT_HOLDING_STATES: frozenset[str] = frozenset({"queued", "running"})
#: States in which a task instance's process should be heartbeating.
HEARTBEAT_STATES: frozenset[str] = frozenset({"running"})
#: Final states of a task instance within a run (the run may end once every TI is in one).
TI_FINISHED_STATES: frozenset[str] = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
RUN_ACTIVE_STATES: frozenset[str] = frozenset({"queued", "running"})
RUN_FINISHED_STATES: frozenset[str] = frozenset({"success", "failed"})
