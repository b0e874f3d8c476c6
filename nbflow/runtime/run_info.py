"""Frozen records that cross layers while a DAG runs: the run, a task instance key, an attempt's outcome."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nbflow.store.keys import TIKey as TIKey  # one key type across store and runtime
from nbflow.utils.state import DagRunType


@dataclass(frozen=True, slots=True)
class DagRunInfo:
    """What a task sees of its DAG run (`context["dag_run"]`)."""

    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_type: str = DagRunType.MANUAL
    conf: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None

    @property
    def external_trigger(self) -> bool:
        return self.run_type == DagRunType.MANUAL

    @property
    def execution_date(self) -> datetime:  # Airflow 2 name
        return self.logical_date


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one attempt ended; the caller turns it into states (retry or not, skips downstream)."""

    state: str  # success | failed | skipped
    try_number: int
    duration: float
    error: str | None = None
    retryable: bool = True
    skip_task_ids: tuple[str, ...] = ()
    skip_ignores_trigger_rules: bool = False
    log_path: str | None = None
    reschedule_at: float | None = None  # up_for_reschedule: when the sensor pokes again (epoch seconds)
