"""Task instance and DAG run states and run types (Airflow's names): the one home of the state vocabulary.

String enums: a state read from the database as a plain string compares equal to its member. The
groups below are built from members, so a renamed or removed state cannot linger in one of them.
Store, runtime and interfaces all import from here (core layer).
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


class DagRunType(StrEnum):
    """How a DAG run came to exist; the prefix of generated run ids (`manual__2025-01-02T...`)."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"


class JobState(StrEnum):
    """States of a job (the row a scheduler keeps alive in the job table)."""

    RUNNING = "running"
    SUCCESS = "success"
    RESTARTING = "restarting"
    FAILED = "failed"


def _values(*members: StrEnum) -> frozenset[str]:
    # Plain strings, not members: the groups are bound into SQL (`state IN (...)`), and a driver
    # should see `str`, whatever it does with Enum subclasses.
    return frozenset(member.value for member in members)


_TI = TaskInstanceState

#: Every value a task instance's state column may hold (None: not yet scheduled).
TI_STATES: frozenset[str | None] = frozenset({None, *_values(*TaskInstanceState)})
RUN_STATES: frozenset[str] = _values(*DagRunState)
RUN_TYPES: frozenset[str] = _values(*DagRunType)

#: Final states of a task instance within a run (the run may end once every TI is in one).
TI_FINISHED_STATES: frozenset[str] = _values(_TI.SUCCESS, _TI.FAILED, _TI.SKIPPED, _TI.UPSTREAM_FAILED, _TI.REMOVED)
#: Airflow's `State.finished`, the name the in-process runner uses; the same set as TI_FINISHED_STATES.
FINISHED = TI_FINISHED_STATES
#: Finished states that make a leaf task fail its run.
FAILED_STATES: frozenset[str] = _values(_TI.FAILED, _TI.UPSTREAM_FAILED)
#: States that end an attempt: reaching one copies the attempt into task_instance_history.
ATTEMPT_END_STATES: frozenset[str] = _values(_TI.SUCCESS, _TI.FAILED, _TI.SKIPPED, _TI.UP_FOR_RETRY,
                                             _TI.UP_FOR_RESCHEDULE)
#: Airflow's `State.success_states`: the instance did not fail (depends_on_past, a task run's `succeeded`).
SUCCESS_STATES: frozenset[str] = _values(_TI.SUCCESS, _TI.SKIPPED)
#: States from which the scheduler (or `tasks run`) may queue an instance (None: no status yet).
QUEUEABLE_STATES: frozenset[str | None] = frozenset({None, *_values(_TI.SCHEDULED, _TI.UP_FOR_RETRY,
                                                                   _TI.UP_FOR_RESCHEDULE)})
#: States that wait for a time before they may be queued again (next_retry_at): a retry, a sensor's next poke.
TIMED_WAIT_STATES: frozenset[str] = _values(_TI.UP_FOR_RETRY, _TI.UP_FOR_RESCHEDULE)
#: States that count against a run's max_active_tasks.
TI_ACTIVE_STATES: frozenset[str] = _values(_TI.QUEUED, _TI.RUNNING)
#: States in which an attempt's process may still be alive (restarting: cleared while it ran).
LIVE_ATTEMPT_STATES: frozenset[str] = _values(_TI.RUNNING, _TI.RESTARTING)
#: States in which a task instance holds pool slots.
SLOT_HOLDING_STATES: frozenset[str] = _values(_TI.QUEUED, _TI.RUNNING)
#: States in which a task instance's process should be heartbeating.
HEARTBEAT_STATES: frozenset[str] = _values(_TI.RUNNING)
RUN_ACTIVE_STATES: frozenset[str] = _values(DagRunState.QUEUED, DagRunState.RUNNING)
RUN_FINISHED_STATES: frozenset[str] = _values(DagRunState.SUCCESS, DagRunState.FAILED)
